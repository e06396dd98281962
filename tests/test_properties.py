"""Property-based tests (hypothesis) on generated data sets and parameters.

Two profiles: "ci" (the default, fast and derandomized) and "thorough"
(many more examples), chosen with SKSOFTMAX_HYPOTHESIS_PROFILE=thorough.
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax.functional import log_softmax, logsumexp, softmax

_SLOW_OK = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
]
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=_SLOW_OK,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=_SLOW_OK,
    print_blob=True,
)
settings.load_profile(os.environ.get("SKSOFTMAX_HYPOTHESIS_PROFILE", "ci"))

SOLVERS = ["lbfgs", "sgd", "adam"]
LABEL_KINDS = ["int", "negative-int", "str", "float", "bool"]


# ----------------------------------------------------------------- strategies


def _labels(codes, kind, n_classes):
    if kind == "int":
        names = np.arange(n_classes) * 3
    elif kind == "negative-int":
        names = -np.arange(n_classes) - 5
    elif kind == "str":
        names = np.array([f"class-{k}" for k in range(n_classes)])
    elif kind == "float":
        names = np.arange(n_classes) * 2.0 + 0.0  # integral floats: not "continuous"
    else:
        names = np.array([False, True])
    return names[codes]


@st.composite
def datasets(
    draw, dtypes=(np.float64, np.float32), weights=True, min_samples=2, max_classes=5
):
    """(X, y, sample_weight): X on a 0.01 grid in [-3, 3], every class present."""
    n_classes = draw(st.integers(2, max_classes))
    n = draw(st.integers(max(n_classes, min_samples), 40))
    d = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from(dtypes))
    X = draw(arrays(np.int64, (n, d), elements=st.integers(-300, 300))) / 100
    codes = draw(arrays(np.int64, n, elements=st.integers(0, n_classes - 1)))
    codes[:n_classes] = np.arange(n_classes)
    kind = draw(st.sampled_from(LABEL_KINDS if n_classes == 2 else LABEL_KINDS[:-1]))
    sw = None
    if weights and draw(st.booleans()):
        sw = draw(arrays(np.float64, n, elements=st.floats(0, 5, width=32)))
        # Each class keeps some weight: a class of weight 0 has no optimum
        # (its unpenalized intercept runs to -inf).
        sw[:n_classes] = np.maximum(sw[:n_classes], 0.5)
    return X.astype(dtype), _labels(codes, kind, n_classes), sw


def _estimator(solver, **params):
    if solver != "lbfgs":
        params = {
            "learning_rate_init": 0.05,
            "max_iter": 20,
            "random_state": 0,
            **params,
        }
    return SoftmaxRegressionClassifier(solver=solver, **params)


def _fit(est, X, y, sample_weight=None):
    """Fit; any warning but a ConvergenceWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        # A drawn batch_size above the training rows is clipped with a warning.
        warnings.filterwarnings("ignore", message="batch_size=.* is clipped")
        return est.fit(X, y, sample_weight=sample_weight)


def _codes(est, labels):
    return np.searchsorted(est.classes_, labels)


# ------------------------------------------------------------ fitted outputs


@given(data=datasets(), solver=st.sampled_from(SOLVERS))
def test_predict_proba_rows_are_distributions(data, solver):
    X, y, sw = data
    est = _fit(_estimator(solver), X, y, sw)
    P = est.predict_proba(X)
    assert P.dtype == X.dtype
    assert np.all(P >= 0)
    K = len(est.classes_)
    assert_allclose(P.sum(axis=1), 1, rtol=0, atol=K * np.finfo(X.dtype).eps)


@given(data=datasets(), solver=st.sampled_from(SOLVERS))
def test_argmax_of_predict_proba_is_predict(data, solver):
    X, y, sw = data
    est = _fit(_estimator(solver), X, y, sw)
    P = est.predict_proba(X)
    predicted = est.predict(X)
    assert np.all(np.isin(predicted, est.classes_))
    rows = np.arange(len(X))
    # The predicted class has the largest probability (ties within rounding)...
    tol = 4 * np.finfo(X.dtype).eps
    assert np.all(P[rows, _codes(est, predicted)] >= P.max(axis=1) - tol)
    # ...and is exactly argmax where the top two probabilities clearly differ.
    top2 = np.sort(P, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > tol
    assert_array_equal(est.classes_[P.argmax(axis=1)][clear], predicted[clear])


@given(data=datasets(), solver=st.sampled_from(SOLVERS))
def test_exp_of_predict_log_proba_is_predict_proba(data, solver):
    X, y, sw = data
    est = _fit(_estimator(solver), X, y, sw)
    P = est.predict_proba(X)
    L = est.predict_log_proba(X)
    assert L.dtype == X.dtype
    assert np.all(np.isfinite(L)) and np.all(L <= 0)
    finfo = np.finfo(X.dtype)
    rtol = 1e-4 if X.dtype == np.float32 else 1e-11
    assert_allclose(np.exp(L), P, rtol=rtol, atol=1e3 * finfo.smallest_normal)


# ------------------------------------------------------- softmax invariance


@st.composite
def logits_and_shift(draw, integer):
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    n, K = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    if integer:  # small integers: x + c is exact in either dtype
        logits = draw(arrays(np.int64, (n, K), elements=st.integers(-1000, 1000)))
        c = draw(st.integers(-1000, 1000))
    else:
        logits = draw(arrays(np.float64, (n, K), elements=st.floats(-100, 100)))
        c = draw(st.floats(-1e3, 1e3))
    row = draw(st.integers(0, n - 1))
    return logits.astype(dtype), dtype(c), row


@given(case=logits_and_shift(integer=True))
def test_softmax_ignores_a_row_constant_exactly(case):
    logits, c, row = case
    shifted = logits.copy()
    shifted[row] += c
    assert_array_equal(softmax(shifted, axis=1), softmax(logits, axis=1))
    assert_array_equal(log_softmax(shifted, axis=1), log_softmax(logits, axis=1))
    expected = logsumexp(logits, axis=1)
    expected[row] += c
    assert_allclose(
        logsumexp(shifted, axis=1), expected, rtol=4 * np.finfo(logits.dtype).eps
    )


@given(case=logits_and_shift(integer=False))
def test_softmax_ignores_a_row_constant(case):
    logits, c, row = case
    shifted = logits.copy()
    shifted[row] += c
    # Rounding x + c loses |c| * eps absolutely; softmax turns it relative.
    err = 8 * np.finfo(logits.dtype).eps * (abs(float(c)) + 100)
    P, Ps = softmax(logits, axis=1), softmax(shifted, axis=1)
    assert_allclose(Ps, P, rtol=err, atol=np.finfo(logits.dtype).smallest_normal * 1e3)
    assert_allclose(Ps.sum(axis=1), 1, rtol=0, atol=64 * np.finfo(logits.dtype).eps)
    others = np.arange(len(logits)) != row
    assert_array_equal(Ps[others], P[others])


# ---------------------------------------------------- invariances of the fit


def _tight(**params):
    return SoftmaxRegressionClassifier(tol=1e-10, max_iter=1000, **params)


def _assert_same_optimum(a, b, X):
    """Two tight lbfgs fits of the same objective reach the same optimum.

    The optimal values agree closely. Probabilities and parameters agree only
    up to the solver's accuracy, which the flat directions of generated data
    (near-identical rows, a constant column against the unpenalized
    intercept, a large C) limit: 1.0e-5 in a probability and 1.2e-4 of the
    parameters' scale seen in the thorough profile.
    """
    assert_allclose(a.best_loss_, b.best_loss_, rtol=1e-9)
    assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=0, atol=1e-4)
    scale = max(1.0, np.abs(a.coef_).max(), np.abs(a.intercept_).max())
    assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-3 * scale)
    assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=1e-3 * scale)


@given(
    data=datasets(dtypes=(np.float64,)),
    C=st.floats(0.1, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_lbfgs_is_invariant_to_row_order(data, C, seed):
    X, y, sw = data
    perm = np.random.default_rng(seed).permutation(len(X))
    a = _fit(_tight(C=C), X, y, sw)
    b = _fit(_tight(C=C), X[perm], y[perm], None if sw is None else sw[perm])
    assert_array_equal(a.classes_, b.classes_)
    _assert_same_optimum(a, b, X)


@given(
    data=datasets(dtypes=(np.float64,), weights=False),
    solver=st.sampled_from(SOLVERS),
    seed=st.integers(0, 2**32 - 1),
    as_strings=st.booleans(),
)
def test_relabelling_classes_permutes_outputs(data, solver, seed, as_strings):
    X, y, _ = data
    classes = np.unique(y)
    K = len(classes)
    new_names = np.random.default_rng(seed).permutation(K) * 10 + 1
    if as_strings:
        new_names = np.array([f"label {v:03d}" for v in new_names])
    relabelled = new_names[np.searchsorted(classes, y)]
    params = {"tol": 1e-10, "max_iter": 5000} if solver == "lbfgs" else {}
    a = _fit(_estimator(solver, **params), X, y)
    b = _fit(_estimator(solver, **params), X, relabelled)
    assert_array_equal(np.sort(b.classes_), np.sort(new_names))
    columns = np.searchsorted(b.classes_, new_names)  # b's column of each a-class
    Pa, Pb = a.predict_proba(X), b.predict_proba(X)
    assert_allclose(Pb[:, columns], Pa, rtol=0, atol=1e-5)
    top2 = np.sort(Pa, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    mapped = new_names[np.searchsorted(classes, a.predict(X))]
    assert_array_equal(b.predict(X)[clear], mapped[clear])


def _objective(est, X, y, sw, C):
    """J of DESIGN.md for the fitted parameters, evaluated in float64."""
    model = SoftmaxRegressionClassifier()
    model.__dict__.update(est.__dict__)
    model.coef_ = est.coef_.astype(np.float64)
    model.intercept_ = est.intercept_.astype(np.float64)
    ce = -model.predict_log_proba(X)[np.arange(len(X)), _codes(model, y)]
    s = np.ones(len(X)) if sw is None else sw
    return (s @ ce + np.sum(model.coef_**2) / (2 * C)) / s.sum()


@given(data=datasets(dtypes=(np.float64,)), C=st.floats(0.05, 2))
def test_float32_and_float64_fits_agree(data, C):
    X, y, sw = data
    est64 = _fit(_tight(C=C), X, y, sw)
    est32 = _fit(
        SoftmaxRegressionClassifier(C=C, tol=1e-6, max_iter=1000),
        X.astype(np.float32),
        y,
        sw,
    )
    assert est32.coef_.dtype == np.float32
    diff = np.abs(est32.predict_proba(X.astype(np.float32)) - est64.predict_proba(X))
    # Within 1e-3 on average; single entries at worst a few 1e-3: L-BFGS on a
    # float32 objective stops once a step gains less than its resolution
    # (~1e-7 of J), and on flat generated problems (near-identical rows, a
    # constant column against the intercept) that leaves J up to ~2e-5 above
    # the optimum and a probability up to ~2.2e-3 off (the worst seen in the
    # thorough profile; over 1e-3 in ~0.5% of random examples).
    assert diff.mean() <= 1e-3
    assert diff.max() <= 5e-3
    # The float32 parameters are a near-optimal solution of the float64
    # problem (the parameters themselves may differ more along flat directions).
    J64 = _objective(est64, X, y, sw, C)
    J32 = _objective(est32, X, y, sw, C)
    assert J32 >= J64 - 1e-12 * J64
    assert J32 - J64 <= 2e-4 * J64


@given(
    data=datasets(dtypes=(np.float64,), weights=False),
    C=st.floats(0.1, 10),
    counts=st.lists(st.integers(0, 4), min_size=40, max_size=40),
)
def test_integer_weight_equals_repeating_rows(data, C, counts):
    X, y, _ = data
    k = np.array(counts[: len(X)])
    classes, first = np.unique(y, return_index=True)
    k[first] = np.maximum(k[first], 1)  # every class keeps a sample
    weighted = _fit(_tight(C=C), X, y, sample_weight=k.astype(float))
    repeated = _fit(_tight(C=C), np.repeat(X, k, axis=0), np.repeat(y, k))
    assert_array_equal(weighted.classes_, repeated.classes_)
    _assert_same_optimum(weighted, repeated, X)


# ------------------------------------------------------ any valid parameters


@st.composite
def valid_params(draw):
    """Any valid combination, with SGD's step kept where it cannot blow up:
    learning_rate_init / (C * n_samples) <= 0.1 (see the note on divergence)."""
    p = {
        "solver": draw(st.sampled_from(SOLVERS)),
        "C": draw(st.one_of(st.floats(0.05, 1e3), st.just(np.inf))),
        "fit_intercept": draw(st.booleans()),
        "tol": draw(st.sampled_from([0.0, 1e-8, 1e-4, 1e-2, 1.0])),
        "max_iter": draw(st.integers(1, 20)),
        "class_weight": draw(st.sampled_from([None, "balanced", "dict"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5, 0.99])),
        "batch_size": draw(st.one_of(st.just("auto"), st.integers(1, 50))),
        "learning_rate": draw(st.sampled_from(["constant", "invscaling", "adaptive"])),
        "learning_rate_init": draw(st.floats(1e-5, 0.1)),
        "power_t": draw(st.floats(0, 2)),
        "momentum": draw(st.floats(0, 1)),
        "nesterovs_momentum": draw(st.booleans()),
        "beta_1": draw(st.floats(0, 0.999)),
        "beta_2": draw(st.floats(0, 0.9999)),
        "epsilon": draw(st.floats(1e-12, 1e-2)),
        "shuffle": draw(st.booleans()),
        "early_stopping": draw(st.booleans()),
        "validation_fraction": draw(st.floats(0.1, 0.9)),
        "n_iter_no_change": draw(st.integers(1, 10)),
        "random_state": draw(st.one_of(st.none(), st.integers(0, 1000))),
        "warm_start": draw(st.booleans()),
    }
    return p


@given(data=datasets(min_samples=20), params=valid_params())
def test_any_valid_parameters_fit_a_small_data_set(data, params):
    X, y, sw = data
    if params["class_weight"] == "dict":
        classes = np.unique(y)
        params["class_weight"] = {classes[0]: 2.0, classes[-1]: 0.5}
    est = SoftmaxRegressionClassifier(**params)
    _fit(est, X, y, sw)
    _fit(est, X, y, sw)  # again: warm_start reuses the first solution
    # partial_fit refuses "balanced" (a chunk does not know the stream's counts)
    # and early stopping (as MLPClassifier's does).
    if (
        params["solver"] != "lbfgs"
        and params["class_weight"] != "balanced"
        and not params["early_stopping"]
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est.partial_fit(X, y, sample_weight=sw)
    assert est.coef_.dtype == X.dtype
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    P = est.predict_proba(X)
    assert np.all(np.isfinite(P)) and np.all(P >= 0)
    assert_allclose(P.sum(axis=1), 1, rtol=0, atol=8 * np.finfo(X.dtype).eps)
    assert np.all(np.isin(est.predict(X), est.classes_))
    # n_iter_ may be 0: lbfgs stops at once when the start is optimal.
    assert len(est.loss_curve_) == est.n_iter_
    assert np.isfinite(est.best_loss_)


def test_profiles_are_registered():
    assert (
        settings.get_profile("ci").max_examples
        < settings.get_profile("thorough").max_examples
    )
    expected = os.environ.get("SKSOFTMAX_HYPOTHESIS_PROFILE", "ci")
    assert settings().max_examples == settings.get_profile(expected).max_examples


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_label_kinds_round_trip(kind):
    # The label kinds the strategies draw from all fit and predict as given.
    n_classes = 2 if kind == "bool" else 3
    codes = np.arange(12) % n_classes
    y = _labels(codes, kind, n_classes)
    X = np.c_[codes, -codes].astype(float) + np.linspace(0, 0.1, 12)[:, None]
    est = _fit(SoftmaxRegressionClassifier(C=100.0), X, y)
    assert_array_equal(est.predict(X), y)
    assert est.predict(X).dtype == y.dtype
