"""The estimator inside scikit-learn's tools, with pandas and odd labels, its
training hooks (verbose, callback, warm_start, warnings) and numerical
extremes. Where a reference exists it is LogisticRegression."""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.special
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine, make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sksoftmax import SoftmaxRegressionClassifier

TIGHT = dict(tol=1e-10, max_iter=10_000)
SOLVERS = ["lbfgs", "sgd", "adam"]
# Settings under which the stochastic solvers do well on standardized wine.
FAST = {
    "lbfgs": {},
    "sgd": dict(solver="sgd", learning_rate_init=0.05, max_iter=30, random_state=0),
    "adam": dict(solver="adam", learning_rate_init=0.05, max_iter=30, random_state=0),
}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """pip's numpy and scipy OpenBLAS pools fight over 2 shared cores in
    LogisticRegression's L-BFGS; one thread keeps the module fast."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def wine_std(wine):
    X, y = wine
    return StandardScaler().fit_transform(X), y


def quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


# ------------------------------------------------------ scikit-learn tools


def test_pipeline_with_standard_scaler_matches_logistic_regression(wine):
    X, y = wine  # raw features: the scaler matters
    ours = make_pipeline(StandardScaler(), SoftmaxRegressionClassifier(**TIGHT))
    ref = make_pipeline(StandardScaler(), LogisticRegression(**TIGHT))
    ours.fit(X, y)
    ref.fit(X, y)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.score(X, y) == ref.score(X, y)


def test_grid_search_over_C_and_solver_in_parallel(wine_std):
    X, y = wine_std
    grid = {"C": [0.05, 1.0], "solver": ["lbfgs", "sgd"]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(
        # A tight tol: L-BFGS candidates end at the optimum, which
        # LogisticRegression (on another path) reaches too.
        SoftmaxRegressionClassifier(
            learning_rate_init=0.05, max_iter=40, random_state=0, tol=1e-10
        ),
        grid,
        cv=cv,
        n_jobs=2,
        scoring="neg_log_loss",
        error_score="raise",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["C"] in grid["C"]
    assert search.best_params_["solver"] in grid["solver"]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # The L-BFGS candidates score exactly as LogisticRegression on the same folds.
    for params, score in zip(
        search.cv_results_["params"],
        search.cv_results_["mean_test_score"],
        strict=False,
    ):
        if params["solver"] == "lbfgs":
            ref = cross_val_score(
                LogisticRegression(C=params["C"], tol=1e-10, max_iter=1000),
                X,
                y,
                cv=cv,
                scoring="neg_log_loss",
            ).mean()
            assert score == pytest.approx(ref, rel=1e-3)
    # refit=True: the best model is fitted on all the data
    assert search.best_estimator_.predict_proba(X).shape == (len(y), 3)


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_cross_val_score_matches_logistic_regression(wine_std, scoring):
    X, y = wine_std
    cv = StratifiedKFold(5, shuffle=True, random_state=1)
    ours = cross_val_score(
        SoftmaxRegressionClassifier(C=0.5, **TIGHT), X, y, cv=cv, scoring=scoring
    )
    ref = cross_val_score(
        LogisticRegression(C=0.5, **TIGHT), X, y, cv=cv, scoring=scoring
    )
    assert ours.shape == (5,)
    assert_allclose(ours, ref, rtol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_clone_is_unfitted_with_same_params_and_refits_alike(wine_std, solver):
    X, y = wine_std
    est = quiet_fit(SoftmaxRegressionClassifier(C=0.3, **FAST[solver]), X, y)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "coef_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    quiet_fit(twin, X, y)
    # deterministic: L-BFGS, and a fixed random_state for SGD/Adam
    assert_array_equal(twin.coef_, est.coef_)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pickle_round_trip(wine_std, solver):
    X, y = wine_std
    est = quiet_fit(SoftmaxRegressionClassifier(**FAST[solver]), X, y)
    back = pickle.loads(pickle.dumps(est))
    assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert_array_equal(back.predict(X), est.predict(X))
    assert_array_equal(back.classes_, est.classes_)
    assert back.n_iter_ == est.n_iter_ and back.loss_curve_ == est.loss_curve_


# --------------------------------------------------------- inputs, labels


def test_pandas_dataframe_sets_feature_names(wine_std):
    pd = pytest.importorskip("pandas")
    X, y = wine_std
    columns = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    est = SoftmaxRegressionClassifier(tol=1e-10).fit(df, pd.Series(y))
    assert_array_equal(est.feature_names_in_, columns)
    assert est.n_features_in_ == X.shape[1]
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        assert_array_equal(est.predict_proba(df), est.predict_proba(X))
    ref = LogisticRegression(tol=1e-10, max_iter=1000).fit(df, y)
    assert_allclose(est.predict_proba(df), ref.predict_proba(df), atol=1e-4)
    # NumPy input sets no names
    assert not hasattr(SoftmaxRegressionClassifier().fit(X, y), "feature_names_in_")
    # and reordered columns are refused, as scikit-learn does
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[columns[::-1]])


LABELS = {
    "strings": np.array(["setosa", "versicolor", "virginica"]),
    "bool": np.array([False, True]),
    "negative-ints": np.array([-7, -1, 4]),
    "integral-floats": np.array([-1.0, 3.0]),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_label_types(kind):
    X, codes = load_iris(return_X_y=True)
    labels = LABELS[kind]
    if len(labels) == 2:
        codes = (codes == 2).astype(int)  # virginica against the rest
    y = labels[codes]
    est = SoftmaxRegressionClassifier(**TIGHT).fit(X, y)
    ref = LogisticRegression(**TIGHT).fit(X, y)
    assert_array_equal(est.classes_, np.unique(y))
    assert est.classes_.dtype == y.dtype
    pred = est.predict(X)
    assert pred.dtype == y.dtype
    assert set(pred.tolist()) <= set(labels.tolist())
    assert_array_equal(pred, ref.predict(X))
    assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    assert est.score(X, y) == ref.score(X, y) > 0.9
    if len(labels) == 2:
        assert est.coef_.shape == (1, 4) and est.decision_function(X).ndim == 1


# ------------------------------------------------------------ training hooks


@pytest.mark.parametrize("solver", SOLVERS)
def test_verbose_prints_one_line_per_iteration_and_the_stop_reason(
    wine_std, solver, capsys
):
    X, y = wine_std
    est = quiet_fit(SoftmaxRegressionClassifier(verbose=1, **FAST[solver]), X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert est.n_iter_ > 1
    assert len(lines) == est.n_iter_ + 1 == len(est.loss_curve_) + 1
    unit = "Iteration" if solver == "lbfgs" else "Epoch"
    max_iter = est.max_iter
    for i, (line, J) in enumerate(zip(lines, est.loss_curve_, strict=False), start=1):
        assert re.fullmatch(
            rf"{unit} {i}/{max_iter}: objective {J:.8g}(, [a-z |]+ [-+.e0-9]+)*"
            r", \d+\.\d\d s",
            line,
        ), line
        assert "learning rate" not in line and "step" not in line  # verbose=2
    if solver == "lbfgs":  # the largest entry of the gradient of J, as tol
        assert all("max |gradient| " in line for line in lines[:-1])
    reason = lines[-1]
    assert reason.startswith(f"Stopped after {est.n_iter_} {unit.lower()}s: ")
    if solver == "lbfgs":
        assert "converged" in reason
    else:
        assert "no improvement" in reason or "max_iter" in reason
    quiet_fit(SoftmaxRegressionClassifier(verbose=0, **FAST[solver]), X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_verbose_2_adds_the_step_and_early_stopping_the_score(wine_std, solver, capsys):
    X, y = wine_std
    params = dict(FAST[solver], verbose=2, early_stopping=True)
    quiet_fit(SoftmaxRegressionClassifier(**params), X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert all("learning rate" in line for line in lines[:-1])
    assert all("validation score" in line for line in lines[:-1])


def test_verbose_names_the_stop_reason(wine_std, capsys):
    X, y = wine_std
    quiet_fit(SoftmaxRegressionClassifier(verbose=1, max_iter=2), X, y)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Stopped after 2 iterations: max_iter=2 reached."
    )
    SoftmaxRegressionClassifier(
        verbose=1, callback=lambda est, info: info["iteration"] == 2
    ).fit(X, y)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Stopped after 2 iterations: stopped by the callback."
    )
    clf = SoftmaxRegressionClassifier(solver="sgd", verbose=1, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))
    clf.partial_fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("Epoch 2: objective ")  # no /max_iter in partial_fit
    assert out[3] == "Stopped after 1 epoch: one pass over the chunk."
    clf = SoftmaxRegressionClassifier(
        solver="sgd",
        verbose=1,
        learning_rate_init=1e4,
        momentum=0.99,
        precondition=False,
        average=False,
        max_iter=50,
        random_state=0,
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            clf.fit(X * 1e3, y)
        except FloatingPointError:
            pass  # a non-finite model is refused; the reason was printed first
    assert capsys.readouterr().out.splitlines()[-1].endswith(": diverged.")


@pytest.mark.parametrize("solver", SOLVERS)
def test_callback_receives_info_and_can_stop(wine_std, solver):
    X, y = wine_std
    seen = []

    def callback(estimator, info):
        seen.append((estimator, dict(info)))
        return info["iteration"] >= 3

    est = SoftmaxRegressionClassifier(callback=callback, **FAST[solver])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop is no failure
        est.fit(X, y)
    assert len(seen) == 3 and est.n_iter_ == 3
    assert all(e is est for e, _ in seen)
    infos = [info for _, info in seen]
    assert [info["iteration"] for info in infos] == [1, 2, 3]
    assert [info["objective"] for info in infos] == est.loss_curve_
    assert all(info["elapsed"] >= 0 for info in infos)
    assert infos[0]["elapsed"] <= infos[-1]["elapsed"]
    # an unstopped fit runs longer
    assert quiet_fit(SoftmaxRegressionClassifier(**FAST[solver]), X, y).n_iter_ > 3


def test_warm_start_lbfgs_starts_from_previous_solution(wine_std):
    X, y = wine_std
    est = SoftmaxRegressionClassifier(C=1.0, warm_start=True, **TIGHT).fit(X, y)
    cold_iters = est.n_iter_
    est.fit(X, y)  # already at the optimum
    assert est.n_iter_ <= 1 < cold_iters
    est.set_params(C=2.0).fit(X, y)
    cold = SoftmaxRegressionClassifier(C=2.0, **TIGHT).fit(X, y)
    assert est.n_iter_ < cold.n_iter_
    assert_allclose(est.coef_, cold.coef_, rtol=1e-4, atol=1e-5)
    # without warm_start a refit starts over
    again = SoftmaxRegressionClassifier(C=1.0, **TIGHT).fit(X, y)
    assert again.fit(X, y).n_iter_ == cold_iters


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_stochastic_continues(wine_std, solver):
    X, y = wine_std
    params = dict(FAST[solver], max_iter=10)
    est = quiet_fit(SoftmaxRegressionClassifier(warm_start=True, **params), X, y)
    first = list(est.loss_curve_)
    quiet_fit(est, X, y)
    cold = quiet_fit(SoftmaxRegressionClassifier(**params), X, y)
    # The refit's first epoch starts near where the first fit ended, far
    # below a cold start's first epoch.
    assert est.loss_curve_[0] < 0.5 * cold.loss_curve_[0]
    assert est.loss_curve_[0] <= 1.2 * first[-1]


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_when_max_iter_is_hit(wine_std, solver):
    X, y = wine_std
    params = dict(FAST[solver], max_iter=2)
    with pytest.warns(ConvergenceWarning, match=r"max_iter|maximum iterations"):
        est = SoftmaxRegressionClassifier(**params).fit(X, y)
    assert est.n_iter_ == 2


def test_no_convergence_warning_when_converged(wine_std):
    X, y = wine_std
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = SoftmaxRegressionClassifier(max_iter=1000).fit(X, y)
    assert est.n_iter_ < 1000


# ------------------------------------------------------- numerical extremes


@pytest.mark.parametrize("max_iter", [5, 300])
@pytest.mark.parametrize("solver", SOLVERS)
def test_separable_data_without_penalty_stays_finite(solver, max_iter):
    X, y = make_blobs(
        n_samples=120,
        centers=[[-5, 0], [5, 0], [0, 8]],
        cluster_std=0.5,
        random_state=0,
    )
    est = SoftmaxRegressionClassifier(
        C=np.inf,
        solver=solver,
        max_iter=max_iter,
        learning_rate_init=0.1,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.fit(X, y)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in record)
    if est.n_iter_ >= max_iter:
        assert warned, "max_iter was reached without a ConvergenceWarning"
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    proba = est.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(est.predict_log_proba(X)))
    assert est.score(X, y) == 1.0


@pytest.mark.parametrize(
    "dtype,scale",
    [(np.float64, 1e6), (np.float64, 1e290), (np.float32, 3e3)],
    ids=["float64-1e6", "float64-1e290", "float32-3e3"],
)
def test_huge_logits_give_finite_probabilities(wine_std, dtype, scale):
    X, y = wine_std
    X = X.astype(dtype)
    est = SoftmaxRegressionClassifier().fit(X, y)
    Xbig = (X * dtype(scale)).astype(dtype)
    logits = Xbig.astype(np.float64) @ est.coef_.T.astype(np.float64)
    assert np.abs(logits).max() > (1e4 if dtype == np.float32 else scale)
    proba = est.predict_proba(Xbig)
    log_proba = est.predict_log_proba(Xbig)
    assert proba.dtype == dtype and log_proba.dtype == dtype
    assert np.all(np.isfinite(proba)) and np.all(np.isfinite(log_proba))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(log_proba <= 0)
    assert_array_equal(np.argmax(proba, axis=1), np.argmax(log_proba, axis=1))
    assert_array_equal(est.predict(Xbig), est.classes_[np.argmax(proba, axis=1)])
    if dtype == np.float64:  # against SciPy on independently computed logits
        ref = logits + est.intercept_
        assert_allclose(log_proba, scipy.special.log_softmax(ref, axis=1), rtol=1e-6)
        assert_allclose(proba, scipy.special.softmax(ref, axis=1), atol=1e-12)
