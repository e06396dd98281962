"""A catalogue of wrong inputs: each raises a clear error naming the problem,
before any solver runs, and leaves an earlier fitted model as it was."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

import sksoftmax._training as training_module
from sksoftmax import SoftmaxRegressionClassifier

pd = pytest.importorskip("pandas")

N, D = 30, 3
_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, D))
Y = np.arange(N) % 3
SOFT = np.full((N, 3), 1 / 3)


def _with(a, index, value):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


def fit_data(X=X, y=Y, sample_weight=None, **params):
    """A call that fits a fresh estimator with ``params`` on the given data."""
    return lambda: SoftmaxRegressionClassifier(**params).fit(
        X, y, sample_weight=sample_weight
    )


def partial(X=X, y=Y, classes=None, sample_weight=None, **params):
    return lambda: SoftmaxRegressionClassifier(solver="sgd", **params).partial_fit(
        X, y, classes=classes, sample_weight=sample_weight
    )


def param(name, value):
    """An out-of-range parameter, with the message sklearn's validation gives."""
    return pytest.param(
        fit_data(**{name: value}),
        InvalidParameterError,
        f"The '{name}' parameter of SoftmaxRegressionClassifier must be",
        id=f"param-{name}={value!r}",
    )


# (call, error type, message fragment). Every call here fits; the solvers are
# replaced by functions that fail the test if they are reached.
FIT_CASES = [
    # X
    pytest.param(
        fit_data(X=_with(X, (0, 0), np.nan)),
        ValueError,
        "Input X contains NaN",
        id="X-nan",
    ),
    pytest.param(
        fit_data(X=_with(X, (1, 2), np.inf)),
        ValueError,
        "Input X contains infinity",
        id="X-inf",
    ),
    pytest.param(
        fit_data(X=_with(X, (1, 2), -np.inf)),
        ValueError,
        "Input X contains infinity",
        id="X-neg-inf",
    ),
    pytest.param(
        fit_data(X=np.empty((0, D)), y=[]),
        ValueError,
        r"Found array with 0 sample\(s\)",
        id="X-empty",
    ),
    pytest.param(
        fit_data(X=np.empty((N, 0))),
        ValueError,
        r"Found array with 0 feature\(s\)",
        id="X-no-features",
    ),
    pytest.param(
        fit_data(X=X[:, 0]), ValueError, "Expected 2D array, got 1D array", id="X-1d"
    ),
    pytest.param(
        fit_data(X=X.reshape(N, D, 1)), ValueError, "Found array with dim 3", id="X-3d"
    ),
    pytest.param(
        fit_data(X=np.full((N, D), "a")),
        ValueError,
        "could not convert string to float",
        id="X-strings",
    ),
    pytest.param(
        fit_data(X=np.full((N, D), object(), dtype=object)),
        TypeError,
        "must be a string or a real number",
        id="X-objects",
    ),
    pytest.param(
        fit_data(X=X + 1j), ValueError, "Complex data not supported", id="X-complex"
    ),
    pytest.param(
        fit_data(X=[[1.0, 2.0], [3.0]], y=[0, 1]),
        ValueError,
        "inhomogeneous shape",
        id="X-ragged",
    ),
    # y
    pytest.param(fit_data(y=None), ValueError, "requires y to be passed", id="y-none"),
    pytest.param(
        fit_data(y=_with(Y, 0, np.nan)), ValueError, "Input y contains NaN", id="y-nan"
    ),
    pytest.param(
        fit_data(y=Y[:-1]),
        ValueError,
        "inconsistent numbers of samples: \\[30, 29\\]",
        id="y-too-short",
    ),
    pytest.param(
        fit_data(y=np.zeros(N)), ValueError, "only one class", id="y-single-class"
    ),
    pytest.param(
        fit_data(y=np.linspace(0, 1, N)),
        ValueError,
        "Unknown label type: continuous",
        id="y-continuous",
    ),
    pytest.param(
        fit_data(y=np.array([1, "a"] * (N // 2), dtype=object)),
        ValueError,
        "Unknown label type",
        id="y-mixed-types",
    ),
    pytest.param(
        fit_data(y=np.full((N, 3), 0.4)),
        ValueError,
        "must be a probability distribution.*row sums in \\[1.2, 1.2\\]",
        id="soft-rows-not-summing-to-1",
    ),
    pytest.param(
        fit_data(y=np.tile([1.5, -0.5, 0.0], (N, 1))),
        ValueError,
        "non-negative and summing to 1.*minimum entry -0.5",
        id="soft-negative",
    ),
    pytest.param(
        fit_data(y=_with(SOFT, (2, 1), np.nan)),
        ValueError,
        "Input y contains NaN",
        id="soft-nan",
    ),
    pytest.param(
        fit_data(y=np.tile([1.0, 1.0, 0.0], (N, 1))),
        ValueError,
        "multi-label targets are not supported",
        id="y-multilabel",
    ),
    pytest.param(
        fit_data(y=np.full((N, 2), "a")),
        ValueError,
        "multi-output targets are not supported",
        id="y-multioutput",
    ),
    pytest.param(
        fit_data(y=np.ones((N, 1, 1))),
        ValueError,
        r"y must hold one label per sample .*shape \(30, 1, 1\)",
        id="y-3d",
    ),
    # sample_weight
    pytest.param(
        fit_data(sample_weight=_with(np.ones(N), 3, np.nan)),
        ValueError,
        "Input sample_weight contains NaN",
        id="sw-nan",
    ),
    pytest.param(
        fit_data(sample_weight=_with(np.ones(N), 3, np.inf)),
        ValueError,
        "Input sample_weight contains infinity",
        id="sw-inf",
    ),
    pytest.param(
        fit_data(sample_weight=_with(np.ones(N), 3, -1.0)),
        ValueError,
        "Negative values in data passed to `sample_weight`",
        id="sw-negative",
    ),
    pytest.param(
        fit_data(sample_weight=np.ones(N - 1)),
        ValueError,
        r"sample_weight.shape == \(29,\), expected \(30,\)",
        id="sw-wrong-length",
    ),
    pytest.param(
        fit_data(sample_weight=np.ones((N, 2))),
        ValueError,
        "Sample weights must be 1D array or scalar",
        id="sw-2d",
    ),
    pytest.param(
        fit_data(sample_weight=np.zeros(N)),
        ValueError,
        # scikit-learn >= 1.9 rejects it itself, older ones leave it to sksoftmax
        "at least one non-zero number|weights .*are all zero",
        id="sw-all-zero",
    ),
    # class_weight
    pytest.param(
        fit_data(class_weight={5: 1.0}),
        ValueError,
        r"class_weight has keys \[5\] that are not classes",
        id="cw-unknown",
    ),
    pytest.param(
        fit_data(class_weight={0: -1.0}),
        ValueError,
        "class_weight values must be finite and non-negative",
        id="cw-negative",
    ),
    pytest.param(
        fit_data(class_weight={1: np.nan}),
        ValueError,
        "class_weight values must be finite and non-negative",
        id="cw-nan",
    ),
    pytest.param(
        fit_data(class_weight={0: 0.0, 1: 0.0, 2: 0.0}),
        ValueError,
        "times class weights\\) are all zero",
        id="cw-all-zero",
    ),
    # parameters
    param("solver", "newton-cg"),
    param("C", 0.0),
    param("C", -1.0),
    param("C", np.nan),
    param("tol", -1e-4),
    param("max_iter", 0),
    param("max_iter", 2.5),
    param("batch_size", 0),
    param("batch_size", -5),
    param("learning_rate", "optimal"),
    param("learning_rate_init", 0.0),
    param("learning_rate_init", -0.1),
    param("power_t", -0.5),
    param("momentum", 1.5),
    param("momentum", -0.1),
    param("beta_1", 1.0),
    param("beta_2", 1.0),
    param("epsilon", 0.0),
    param("validation_fraction", 0.0),
    param("validation_fraction", 1.0),
    param("label_smoothing", 1.0),
    param("label_smoothing", -0.1),
    param("n_iter_no_change", 0),
    param("class_weight", "auto"),
    param("callback", 3),
    param("verbose", -1),
    param("fit_intercept", "yes"),
    pytest.param(
        fit_data(X=X[:8], y=Y[:8], solver="sgd", early_stopping=True),
        ValueError,
        r"leaves 1 validation sample\(s\)",
        id="early-stopping-too-few-validation-samples",
    ),
    # partial_fit
    pytest.param(
        partial(),
        ValueError,
        "classes must be passed on the first call to partial_fit",
        id="partial-fit-no-classes",
    ),
    pytest.param(
        partial(classes=[0, 1]),
        ValueError,
        r"labels \[2\] that are not in classes \[0, 1\]",
        id="partial-fit-unseen-label",
    ),
    pytest.param(
        partial(y=np.zeros(N), classes=[0]),
        ValueError,
        "classes must hold at least 2 classes",
        id="partial-fit-one-class",
    ),
    pytest.param(
        partial(y=SOFT, classes=[0, 1]),
        ValueError,
        "classes has 2 entries but y has 3 columns",
        id="partial-fit-soft-columns",
    ),
]


@pytest.fixture
def no_solver(monkeypatch):
    """Make reaching any solver fail the test: errors come before heavy work."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a solver ran although the input was invalid")

    monkeypatch.setattr(training_module, "minimize_lbfgs", forbidden)
    monkeypatch.setattr(training_module, "run_epochs", forbidden)


@pytest.mark.parametrize(("call", "error", "match"), FIT_CASES)
def test_fit_rejects_bad_input_before_solving(call, error, match, no_solver):
    with pytest.raises(error, match=match):
        call()


def test_no_solver_fixture_would_catch_a_solver_call(no_solver):
    # The guard itself works: a valid fit reaches the solver and fails.
    with pytest.raises(AssertionError, match="a solver ran"):
        SoftmaxRegressionClassifier().fit(X, Y)
    with pytest.raises(AssertionError, match="a solver ran"):
        SoftmaxRegressionClassifier(solver="adam").fit(X, Y)


def test_catalogue_size():
    # Issue 8 asks for at least 25 distinct wrong inputs.
    ids = [case.id for case in FIT_CASES] + [case.id for case in FITTED_CASES]
    assert len(set(ids)) == len(ids) >= 25


# ------------------------------------------------------- on a fitted model


@pytest.fixture(scope="module")
def fitted():
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    return {
        "array": SoftmaxRegressionClassifier().fit(X, Y),
        "frame": SoftmaxRegressionClassifier().fit(frame, Y),
        "sgd": SoftmaxRegressionClassifier(solver="sgd", random_state=0).partial_fit(
            X, Y, classes=[0, 1, 2]
        ),
    }


def _predict(kind, method, data):
    return lambda models: getattr(models[kind], method)(data)


FITTED_CASES = [
    pytest.param(
        _predict("array", "predict", X[:, :2]),
        ValueError,
        "X has 2 features, but SoftmaxRegressionClassifier is expecting 3",
        id="predict-too-few-features",
    ),
    pytest.param(
        _predict("array", "predict_proba", np.c_[X, X]),
        ValueError,
        "X has 6 features, but SoftmaxRegressionClassifier is expecting 3",
        id="predict-proba-too-many-features",
    ),
    pytest.param(
        _predict("array", "decision_function", _with(X, (0, 0), np.nan)),
        ValueError,
        "Input X contains NaN",
        id="predict-nan",
    ),
    pytest.param(
        _predict("array", "predict_log_proba", X[0]),
        ValueError,
        "Expected 2D array, got 1D array",
        id="predict-1d",
    ),
    pytest.param(
        _predict("frame", "predict", pd.DataFrame(X, columns=["a", "b", "d"])),
        ValueError,
        "feature names should match those that were passed during fit",
        id="predict-different-feature-names",
    ),
    pytest.param(
        _predict("frame", "predict", pd.DataFrame(X, columns=["c", "b", "a"])),
        ValueError,
        "Feature names must be in the same order as they were in fit",
        id="predict-reordered-feature-names",
    ),
    pytest.param(
        lambda m: m["sgd"].partial_fit(X, np.where(Y == 2, 7, Y)),
        ValueError,
        r"labels \[7\] that are not in classes \[0, 1, 2\]",
        id="partial-fit-later-unseen-label",
    ),
    pytest.param(
        lambda m: m["sgd"].partial_fit(X[:, :2], Y),
        ValueError,
        "X has 2 features, but SoftmaxRegressionClassifier is expecting 3",
        id="partial-fit-later-wrong-features",
    ),
    pytest.param(
        lambda m: m["sgd"].partial_fit(X, np.full((N, 4), 0.25)),
        ValueError,
        "y has 4 columns of class probabilities; the model was fitted with 3 classes",
        id="partial-fit-later-soft-columns",
    ),
    pytest.param(
        lambda m: m["array"].partial_fit(X, Y),
        AttributeError,
        "has no attribute 'partial_fit'",
        id="partial-fit-with-lbfgs",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), FITTED_CASES)
def test_fitted_model_rejects_bad_input(call, error, match, fitted, no_solver):
    before = {
        k: (m.coef_.copy(), m.intercept_.copy(), m.n_iter_) for k, m in fitted.items()
    }
    with pytest.raises(error, match=match):
        call(fitted)
    for k, m in fitted.items():  # nothing changed, including after partial_fit
        np.testing.assert_array_equal(m.coef_, before[k][0])
        np.testing.assert_array_equal(m.intercept_, before[k][1])
        assert m.n_iter_ == before[k][2]


@pytest.mark.parametrize(
    "method",
    ["predict", "predict_proba", "predict_log_proba", "decision_function", "score"],
)
def test_unfitted_model_raises_not_fitted(method):
    args = (X, Y) if method == "score" else (X,)
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        getattr(SoftmaxRegressionClassifier(), method)(*args)


def test_pandas_names_at_predict_but_not_at_fit_only_warns(fitted):
    # Not an error (scikit-learn warns): the names cannot be checked.
    with pytest.warns(UserWarning, match="fitted without feature names"):
        fitted["array"].predict(pd.DataFrame(X, columns=["a", "b", "c"]))


@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multiclass"])
@pytest.mark.parametrize(
    "value, column",
    [(np.nan, 0), (np.inf, 0), (-np.inf, 0), (np.inf, 2)],
    ids=["nan", "inf", "-inf", "inf-under-zero-weight"],
)
def test_predict_proba_rejects_non_finite_X_as_logistic_regression(
    n_classes, value, column
):
    """predict_proba checks X through its logits (one read of X fewer): every
    non-finite entry is still refused, with LogisticRegression's message,
    also where the logit alone would give finite probabilities (a binary
    model's -inf logit) or the weight is zero (0 * inf is NaN)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    X[:, 2] = 0.0  # a constant feature: its weight is zero at the optimum
    y = np.arange(60) % n_classes
    X[:, 0] += 2.0 * y
    ours = SoftmaxRegressionClassifier().fit(X, y)
    ref = LogisticRegression().fit(X, y)
    assert np.all(ours.coef_[:, 2] == 0.0)
    if n_classes == 2:  # -inf in column 0 makes the one logit -inf
        assert ours.coef_[0, 0] > 0
    bad = X.copy()
    bad[5, column] = value
    with pytest.raises(ValueError) as expected:
        ref.predict_proba(bad)
    message = str(expected.value).replace("LogisticRegression", "")
    with pytest.raises(ValueError) as got:
        ours.predict_proba(bad)
    assert str(got.value).replace("SoftmaxRegressionClassifier", "") == message
    assert ours.predict_proba(X).shape == (60, n_classes)
