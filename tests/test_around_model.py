"""What users expect around the model: soft-label scoring and scorers, a NumPy
copy of a fitted estimator, the temperature-bound warning, the doc link,
py.typed, a readable help() and skops persistence."""

import importlib.metadata
import importlib.util
import pydoc
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomllib
from numpy.testing import assert_allclose
from scipy.special import log_softmax
from sklearn.datasets import make_classification
from sklearn.metrics import get_scorer, log_loss
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sksoftmax
import sksoftmax._docs
from sksoftmax import (
    SoftmaxRegressionClassifier,
    SoftmaxRegressionCV,
    TemperatureBoundWarning,
    to_numpy_estimator,
)
from sksoftmax._backend import is_foreign_array
from sksoftmax.metrics import (
    cross_entropy,
    neg_cross_entropy_scorer,
    soft_accuracy_score,
)

ROOT = Path(__file__).resolve().parents[1]


def _data(n_classes=3, n_samples=240, seed=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        flip_y=0.1,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    Y = 0.6 * np.eye(n_classes)[y] + 0.4 * rng.dirichlet(np.ones(n_classes), len(y))
    return StandardScaler().fit_transform(X), y, Y


# ------------------------------------------------------------ soft-label scores


def test_score_on_soft_labels_is_the_target_mass_of_the_prediction():
    X, y, Y = _data()
    clf = SoftmaxRegressionClassifier().fit(X, Y)
    pred = clf.predict(X)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    expected = np.sum(w * Y[np.arange(len(y)), pred]) / w.sum()
    assert clf.score(X, Y, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    # one-hot rows: the ordinary accuracy
    hard = SoftmaxRegressionClassifier().fit(X, y)
    assert hard.score(X, np.eye(3)[y]) == pytest.approx(hard.score(X, y))


def test_soft_accuracy_with_string_labels_and_errors():
    Y = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert soft_accuracy_score(Y, ["b", "b"], labels=["a", "b"]) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="not among the classes"):
        soft_accuracy_score(Y, ["a", "c"], labels=["a", "b"])
    with pytest.raises(ValueError, match="probability distribution"):
        soft_accuracy_score([[0.5, 0.6], [1.0, 0.0]], [0, 1])


def test_cross_entropy_matches_log_loss_and_its_definition():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), 50)
    y = rng.integers(0, 4, 50)
    w = rng.uniform(0.1, 1.0, 50)
    assert cross_entropy(y, P, sample_weight=w) == pytest.approx(
        log_loss(y, P, sample_weight=w), rel=1e-12
    )
    Y = rng.dirichlet(np.ones(4), 50)
    manual = -np.sum(w * np.sum(Y * np.log(P), axis=1)) / w.sum()
    assert cross_entropy(Y, P, sample_weight=w) == pytest.approx(manual, rel=1e-12)
    with pytest.raises(ValueError, match="3 columns of class probabilities"):
        cross_entropy(Y[:, :3] / Y[:, :3].sum(1, keepdims=True), P)


def test_scorer_equals_neg_log_loss_on_labels_and_cross_entropy_on_soft():
    X, y, Y = _data()
    labels = np.array(["x", "y", "z"])[y]
    clf = SoftmaxRegressionClassifier().fit(X, labels)
    assert neg_cross_entropy_scorer(clf, X, labels) == pytest.approx(
        get_scorer("neg_log_loss")(clf, X, labels), rel=1e-10
    )
    soft = SoftmaxRegressionClassifier().fit(X, Y)
    logp = log_softmax(soft.decision_function(X), axis=1)
    assert neg_cross_entropy_scorer(soft, X, Y) == pytest.approx(
        np.mean(np.sum(Y * logp, axis=1)), rel=1e-10
    )


def test_model_selection_on_soft_labels():
    X, y, Y = _data()
    # stratify on the most probable class: splitters need one label per row
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, Y.argmax(1)))
    default = cross_val_score(SoftmaxRegressionClassifier(), X, Y, cv=cv)
    assert np.all(np.isfinite(default)) and np.all((default > 0) & (default <= 1))
    res = cross_validate(
        SoftmaxRegressionClassifier(), X, Y, cv=cv, scoring=neg_cross_entropy_scorer
    )
    for (train, test), got in zip(cv, res["test_score"], strict=True):
        m = SoftmaxRegressionClassifier().fit(X[train], Y[train])
        assert got == pytest.approx(-cross_entropy(Y[test], m.predict_proba(X[test])))
    search = GridSearchCV(
        SoftmaxRegressionClassifier(),
        {"C": [0.01, 1.0]},
        cv=cv,
        scoring=neg_cross_entropy_scorer,
    ).fit(X, Y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_["C"] == 1.0


# ------------------------------------------------------- NumPy copy of a model


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_to_numpy_estimator_from_array_api_strict(solver):
    xps = pytest.importorskip("array_api_strict")
    X, y, _ = _data()
    clf = SoftmaxRegressionClassifier(
        solver=solver, learning_rate_init=0.05, max_iter=20, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached (SGD)
        clf.fit(xps.asarray(X), xps.asarray(y))
    host = to_numpy_estimator(clf)
    assert is_foreign_array(clf.coef_)  # the original is unchanged

    def arrays(obj, depth=0):
        if depth > 4:
            return
        if is_foreign_array(obj) or isinstance(obj, np.ndarray):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from arrays(v, depth + 1)
        elif isinstance(obj, list | tuple):
            for v in obj:
                yield from arrays(v, depth + 1)
        elif hasattr(obj, "__dict__"):
            yield from arrays(vars(obj), depth + 1)

    found = list(arrays(vars(host)))
    assert found and not any(is_foreign_array(a) for a in found)
    assert_allclose(host.coef_, np.asarray(clf.coef_))
    assert_allclose(
        host.predict_proba(X), np.asarray(clf.predict_proba(xps.asarray(X)))
    )


def test_to_numpy_estimator_reaches_into_pipelines():
    xps = pytest.importorskip("array_api_strict")
    X, y, _ = _data()
    pipe = make_pipeline(SoftmaxRegressionClassifier()).fit(
        xps.asarray(X), xps.asarray(y)
    )
    host = to_numpy_estimator(pipe)
    assert isinstance(host[-1].coef_, np.ndarray)
    assert is_foreign_array(pipe[-1].coef_)


# ------------------------------------------------------- temperature at a bound


def test_calibrating_on_separated_data_warns_and_says_what_to_do():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-3, 0.3, (40, 2)), rng.normal(3, 0.3, (40, 2))]
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    clf = SoftmaxRegressionClassifier().fit(X, y)
    with pytest.warns(TemperatureBoundWarning, match="lower bound") as record:
        clf.calibrate_temperature(X, y)
    assert "held-out data" in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller's line
    assert clf.temperature_ == pytest.approx(np.exp(-10))


def test_calibrating_on_unrelated_labels_warns_at_the_upper_bound():
    X, y, _ = _data(n_classes=2)
    clf = SoftmaxRegressionClassifier(C=100.0).fit(X, y)
    flipped = 1 - clf.predict(X)  # every label the opposite of the prediction
    with pytest.warns(TemperatureBoundWarning, match="upper bound"):
        clf.calibrate_temperature(X, flipped)


def test_calibrating_normal_data_does_not_warn():
    X, y, _ = _data()
    clf = SoftmaxRegressionClassifier(C=1e4).fit(X[:160], y[:160])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TemperatureBoundWarning)
        clf.calibrate_temperature(X[160:], y[160:])


# ------------------------------------------------- docs, typing, persistence


def test_html_repr_links_to_the_project_docs():
    """The "?" link is pyproject's [project.urls] Documentation, as the
    installed metadata declares it (the only copy of the URL)."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        docs = tomllib.load(f)["project"]["urls"]["Documentation"]
    installed = importlib.metadata.metadata("sksoftmax").get_all("Project-URL")
    assert f"Documentation, {docs}" in (installed or []), (
        "the installed metadata of sksoftmax is not this pyproject.toml's: "
        "reinstall it (pip install -e .)"
    )
    for est in (SoftmaxRegressionClassifier(), SoftmaxRegressionCV()):
        link = est._get_doc_link()
        assert link == f"{docs}#{type(est).__name__.lower()}"
        assert link in est._repr_html_()
    readme = (ROOT / "README.md").read_text()
    assert "### SoftmaxRegressionClassifier" in readme
    assert "### SoftmaxRegressionCV" in readme


def test_no_doc_link_without_installed_metadata(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(sksoftmax._docs.metadata, "metadata", missing)
    sksoftmax._docs.docs_url.cache_clear()
    try:
        est = SoftmaxRegressionClassifier()
        assert est._get_doc_link() == ""
        assert "SoftmaxRegressionClassifier" in est._repr_html_()
    finally:
        sksoftmax._docs.docs_url.cache_clear()


def test_py_typed_is_shipped():
    assert (Path(sksoftmax.__file__).parent / "py.typed").is_file()
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["sksoftmax"]


@pytest.mark.parametrize("cls", [SoftmaxRegressionClassifier, SoftmaxRegressionCV])
def test_help_first_screen_is_plain_text(cls):
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext).splitlines()
    first_screen = "\n".join(text[:24])
    assert "regression" in first_screen and "Parameters" in first_screen
    assert "math::" not in first_screen and "\\frac" not in first_screen


def test_skops_round_trip_trusting_the_listed_types(tmp_path):
    sio = pytest.importorskip("skops.io")
    spec = importlib.util.spec_from_file_location(
        "save_load_skops", ROOT / "examples" / "save_load_skops.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    X, y, _ = _data()
    model = make_pipeline(
        StandardScaler(),
        SoftmaxRegressionClassifier(solver="adam", max_iter=5, random_state=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        model.fit(X, y)
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    assert set(sio.get_untrusted_types(file=path)) <= set(example.TRUSTED)
    loaded = sio.load(path, trusted=example.TRUSTED)
    assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=0)
    # the loaded optimizer state continues training as the original would
    loaded[-1].partial_fit(loaded[0].transform(X), y)
