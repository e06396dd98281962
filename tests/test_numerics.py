"""Numerical torture: extreme scales, huge logits, many classes, degenerate
and imbalanced data, separable data without penalty. Each ends with finite
parameters and probabilities (or a documented warning/error)."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax.functional import (
    cross_entropy,
    entropy,
    log_softmax,
    logsumexp,
    softmax,
)

SOLVERS = ["lbfgs", "sgd", "adam"]
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]


def _est(solver, **params):
    if solver != "lbfgs":
        params = {"learning_rate_init": 0.01, "random_state": 0, **params}
    return SoftmaxRegressionClassifier(solver=solver, **params)


def _fit(est, X, y, **kwargs):
    """Fit, tolerating only the documented warnings; return the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y, **kwargs)
    allowed = (ConvergenceWarning, UserWarning)  # UserWarning: sklearn's class count
    unexpected = [w for w in caught if not issubclass(w.category, allowed)]
    assert not unexpected, [str(w.message) for w in unexpected]
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def assert_sane(est, X, dtype):
    """Finite parameters and outputs in the data's dtype, with no overflow or
    invalid operation while predicting; rows of probabilities sum to one."""
    assert est.coef_.dtype == dtype and est.intercept_.dtype == dtype
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P = est.predict_proba(X)
        L = est.predict_log_proba(X)
        D = est.decision_function(X)
        labels = est.predict(X)
    for out in (P, L, D):
        assert out.dtype == dtype
        assert np.all(np.isfinite(out))
    K = len(est.classes_)
    assert P.shape == (X.shape[0], K)
    assert np.all(P >= 0)
    assert_allclose(P.sum(axis=1), 1, rtol=0, atol=K * np.finfo(dtype).eps)
    assert np.all(L <= 0)
    assert np.all(np.isin(labels, est.classes_))
    return P


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(
        300, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0
    )
    return X, y


# ------------------------------------------------------------------- scaling


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_features_scaled_by_large_and_small_factors(blobs, scale, solver, dtype):
    X, y = blobs
    Xs = (X * scale).astype(dtype)
    est = _est(solver, max_iter=30)
    _fit(est, Xs, y)
    assert_sane(est, Xs, dtype)


@pytest.mark.parametrize("precondition", [True, False])
@pytest.mark.parametrize("solver", SOLVERS)
def test_features_near_float64_overflow(blobs, solver, precondition):
    # Features of order 1e150. In preconditioned variables they look
    # standardized and the fit is ordinary; without, logits of order
    # 1e150 * |W| make lbfgs's first trial step overflow, which it reports
    # with a ConvergenceWarning (status ABNORMAL) instead of silently.
    X, y = blobs
    Xs = X * 1e150
    est = _est(solver, max_iter=10, precondition=precondition)
    with np.errstate(all="ignore"):  # overflow inside the solver's trial steps
        caught = _fit(est, Xs, y)
    abnormal = any("abnormally" in str(w.message) for w in caught)
    if solver == "lbfgs":
        assert abnormal == (not precondition)
    with np.errstate(under="ignore"):
        assert_sane(est, Xs, np.float64)


# -------------------------------------------------------------- huge logits


@pytest.mark.parametrize(
    ("dtype", "size"),
    [(np.float32, 1e4), (np.float64, 1e300)],
    ids=["float32-1e4", "float64-1e300"],
)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_huge_logits_give_finite_outputs(blobs, dtype, size, n_classes):
    X, y = blobs
    X = X.astype(dtype)
    est = SoftmaxRegressionClassifier().fit(X, y % n_classes)
    raw = np.abs(est.decision_function(X)).max()
    est.coef_ = (est.coef_ * (size / raw)).astype(dtype)
    est.intercept_ = (est.intercept_ * (size / raw)).astype(dtype)
    D = est.decision_function(X)
    assert np.abs(D).max() > size / 10  # the logits really are huge
    P = assert_sane(est, X, dtype)
    codes = np.searchsorted(est.classes_, est.predict(X))
    assert_array_equal(P.argmax(axis=1), codes)
    # Where the top logit leads by far, the rows saturate to exactly one-hot.
    full = np.c_[np.zeros(len(D)), D] if D.ndim == 1 else D
    top2 = np.sort(full, axis=1)[:, -2:]
    far = top2[:, 1] - top2[:, 0] > 200
    assert far.sum() > len(X) / 2
    assert np.all(P[far].max(axis=1) == 1)
    assert np.all(est.predict_log_proba(X)[far].max(axis=1) == 0)


@pytest.mark.parametrize(
    ("dtype", "size"),
    [(np.float32, 1e4), (np.float64, 1e300)],
    ids=["float32-1e4", "float64-1e300"],
)
def test_functional_ops_on_huge_logits(dtype, size):
    logits = np.array(
        [[size, 0, -size], [-size, -size, -size], [size, size, 0]], dtype=dtype
    )
    T = np.array([[0, 1, 0], [1, 0, 0], [0.5, 0.5, 0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P = softmax(logits, axis=1)
        L = log_softmax(logits, axis=1)
        lse = logsumexp(logits, axis=1)
        ce = cross_entropy(T, logits, axis=1)
        H = entropy(P, axis=1)
    for out in (P, L, lse, ce, H):
        assert np.all(np.isfinite(out))
        assert out.dtype == dtype
    assert_allclose(P, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], rtol=1e-6)
    assert_allclose(lse, [size, -size + np.log(3), size + np.log(2)], rtol=1e-6)
    # logsumexp(o) - t.o cancels: the error is relative to the logits' size.
    cancel = 4 * np.finfo(dtype).eps * size
    assert_allclose(ce, [size, np.log(3), np.log(2)], rtol=1e-6, atol=cancel)
    assert_allclose(L[0], [0, -size, -2 * size], rtol=1e-6)


# ------------------------------------------------------------ many classes


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_thousand_classes_one_sample_each(solver, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 8)).astype(dtype)
    y = np.arange(1000)
    est = _est(solver, max_iter=15 if solver == "lbfgs" else 3)
    _fit(est, X, y)
    P = assert_sane(est, X, dtype)
    assert est.coef_.shape == (1000, 8)
    # Training moves each sample's own class above the uniform 1/1000.
    assert np.median(P[y, y]) > 1e-3


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_more_classes_than_samples_partial_fit(solver, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3)).astype(dtype)
    y = np.array([0, 3, 7, 11, 19])
    est = _est(solver, learning_rate_init=0.1)
    est.partial_fit(X, y, classes=np.arange(20))
    P = assert_sane(est, X, dtype)
    assert P.shape == (5, 20)
    unseen = np.setdiff1d(np.arange(20), y)
    # One pass raises the seen classes' scores above every unseen class's.
    assert np.all(P[:, y].max(axis=1) > P[:, unseen].max(axis=1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_more_classes_than_samples_soft_labels(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 2)).astype(dtype)
    Y = rng.dirichlet(np.ones(8), size=3).astype(dtype)
    est = SoftmaxRegressionClassifier(C=1.0)
    _fit(est, X, Y)
    P = assert_sane(est, X, dtype)
    assert P.shape == (3, 8)


# -------------------------------------------------------- degenerate data


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_constant_and_all_zero_features(blobs, solver, dtype):
    X, y = blobs
    X = np.c_[np.zeros(len(X)), X, np.full(len(X), 7.0)].astype(dtype)
    est = _est(solver, max_iter=30)
    _fit(est, X, y)
    assert_sane(est, X, dtype)
    # A zero column never receives a gradient: its weights stay exactly zero.
    assert np.all(est.coef_[:, 0] == 0)
    assert np.any(est.coef_[:, -1] != 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_all_zero_X(solver, dtype, fit_intercept):
    X = np.zeros((40, 3), dtype=dtype)
    y = np.repeat([0, 1, 2], [20, 12, 8])
    est = _est(
        solver,
        fit_intercept=fit_intercept,
        tol=1e-8,
        max_iter=200,
        learning_rate_init=0.05,
    )
    _fit(est, X, y)
    P = assert_sane(est, X, dtype)
    assert np.all(est.coef_ == 0)
    if not fit_intercept:
        assert np.all(P == P[0]) and np.allclose(P, 1 / 3)
    elif solver == "lbfgs":  # the intercept alone fits the class frequencies
        assert_allclose(P[0], [0.5, 0.3, 0.2], atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_duplicate_rows_with_conflicting_labels(solver, dtype):
    # Four distinct rows (one-hot groups), each repeated with mixed labels:
    # without a penalty the optimum predicts each group's label frequencies.
    X = np.repeat(np.eye(4), 10, axis=0).astype(dtype)
    frequency_of_1 = np.array([0.5, 0.2, 0.9, 0.6])
    y = np.concatenate([(np.arange(10) < 10 * f).astype(int) for f in frequency_of_1])
    est = _est(
        solver,
        C=np.inf,
        tol=1e-10,
        max_iter=2000 if solver == "lbfgs" else 300,
        learning_rate_init=0.05,
    )
    _fit(est, X, y)
    P = assert_sane(est, X, dtype)
    expected = np.repeat(frequency_of_1, 10)
    atol = 1e-3 if solver == "lbfgs" else 0.05
    assert_allclose(P[:, 1], expected, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_imbalance_one_to_ten_thousand(solver, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_001, 2))
    X[0] += 4.0
    X = X.astype(dtype)
    y = np.zeros(10_001, dtype=int)
    y[0] = 1
    p_minority = {}
    for class_weight in (None, "balanced"):
        est = _est(
            solver, class_weight=class_weight, max_iter=100 if solver == "lbfgs" else 5
        )
        _fit(est, X, y)
        assert_sane(est, X[:200], dtype)
        p_minority[class_weight] = est.predict_proba(X[:1])[0, 1]
    # Balancing gives the lone sample as much weight as all the others.
    assert p_minority["balanced"] > p_minority[None]
    if solver == "lbfgs":
        assert p_minority["balanced"] > 0.5
        assert p_minority[None] < 0.5


# ---------------------------------------------------------- separable data


def _separable(dtype, n_classes):
    rng = np.random.default_rng(0)
    centers = 6 * np.eye(n_classes, 3)
    y = np.arange(60) % n_classes
    return (centers[y] + rng.normal(scale=0.5, size=(60, 3))).astype(dtype), y


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_separable_without_penalty_warns_when_max_iter_reached(
    solver, dtype, n_classes
):
    X, y = _separable(dtype, n_classes)
    est = _est(solver, C=np.inf, max_iter=3, learning_rate_init=0.1)
    caught = _fit(est, X, y)
    assert est.n_iter_ == 3
    assert any("converge" in str(w.message) for w in caught)
    assert_sane(est, X, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_separable_without_penalty_long_run_stays_finite(solver, dtype, n_classes):
    X, y = _separable(dtype, n_classes)
    max_iter = 500 if solver == "lbfgs" else 200
    est = _est(solver, C=np.inf, tol=1e-12, max_iter=max_iter, learning_rate_init=0.1)
    caught = _fit(est, X, y)
    P = assert_sane(est, X, dtype)
    assert_array_equal(est.predict(X), y)
    # Without a penalty the weights of separable data grow for ever; the
    # iterate average of SGD/Adam trails them a little (0.986 here).
    assert P[np.arange(len(y)), y].min() > (0.99 if solver == "lbfgs" else 0.98)
    if est.n_iter_ == max_iter:  # a ConvergenceWarning whenever max_iter is hit
        assert caught
