"""Elastic-net / L1 (``l1_ratio``) against LogisticRegression(solver="saga")."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._backend import get_namespace
from sksoftmax._compat import logistic_regression_elastic_net_params
from sksoftmax._penalty import soft_threshold
from sksoftmax._solvers import make_optimizer


def _standardized(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def objective(W, b, X, y, C, l1_ratio):
    """LogisticRegression's objective written out, for labels 0..K-1."""
    logits = X @ W.T + b
    if W.shape[0] == 1:
        logits = np.column_stack([np.zeros(X.shape[0]), logits])
    ce = logsumexp(logits, axis=1) - logits[np.arange(X.shape[0]), y]
    penalty = l1_ratio * np.abs(W).sum() + (1 - l1_ratio) / 2 * (W**2).sum()
    return ce.mean() + penalty / (C * X.shape[0])


@pytest.fixture(scope="module")
def saga_fits():
    """LogisticRegression(saga) at a tight tol, computed once per setting."""
    cache = {}

    def fit(name, C, l1_ratio):
        key = (name, C, l1_ratio)
        if key not in cache:
            X, y = _standardized(
                {"wine": load_wine, "breast_cancer": load_breast_cancer}[name]
            )
            ref = LogisticRegression(
                solver="saga",
                C=C,
                tol=1e-10,
                max_iter=100_000,
                **logistic_regression_elastic_net_params(l1_ratio),
            ).fit(X, y)
            cache[key] = (X, y, ref)
        return cache[key]

    return fit


def _assert_same_zero_pattern(coef, ref_coef, clear=1e-3):
    """Exact zeros where saga has exact zeros; non-zeros where saga's
    coefficient is clearly non-zero."""
    ref_zero = ref_coef == 0
    assert_array_equal(coef[ref_zero], 0.0)
    assert np.all(coef[np.abs(ref_coef) > clear] != 0)


@pytest.mark.parametrize(
    "name", ["wine", "breast_cancer"], ids=["multiclass", "binary"]
)
@pytest.mark.parametrize("C, l1_ratio", [(0.1, 0.5), (0.05, 1.0), (1.0, 0.5)])
def test_lbfgs_matches_saga(saga_fits, name, C, l1_ratio):
    X, y, ref = saga_fits(name, C, l1_ratio)
    clf = SoftmaxRegressionClassifier(
        C=C, l1_ratio=l1_ratio, tol=1e-10, max_iter=10_000
    ).fit(X, y)
    assert clf.coef_.shape == ref.coef_.shape
    J = objective(clf.coef_, clf.intercept_, X, y, C, l1_ratio)
    J_ref = objective(ref.coef_, ref.intercept_, X, y, C, l1_ratio)
    assert abs(J - J_ref) <= 1e-4 * J_ref
    assert (ref.coef_ == 0).sum() > 0  # the setting does produce zeros
    _assert_same_zero_pattern(clf.coef_, ref.coef_)
    # The objective reported is the full one, L1 term included.
    assert_allclose(clf.loss_curve_[-1], J, rtol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", learning_rate_init=0.05),
        dict(
            solver="sgd",
            learning_rate_init=0.05,
            nesterovs_momentum=False,
            n_iter_no_change=1000,
        ),
        dict(solver="adam", learning_rate_init=0.01),
    ],
    ids=["sgd-nesterov", "sgd-heavy-ball", "adam"],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_stochastic_solvers_give_exact_zeros_near_the_optimum(saga_fits, params):
    C, l1_ratio = 0.1, 0.5
    X, y, ref = saga_fits("wine", C, l1_ratio)
    clf = SoftmaxRegressionClassifier(
        C=C, l1_ratio=l1_ratio, max_iter=1000, tol=0, random_state=0, **params
    ).fit(X, y)
    J = objective(clf.coef_, clf.intercept_, X, y, C, l1_ratio)
    J_ref = objective(ref.coef_, ref.intercept_, X, y, C, l1_ratio)
    assert J <= J_ref * (1 + 1e-3)
    _assert_same_zero_pattern(clf.coef_, ref.coef_)


def test_minibatch_partial_fit_gives_exact_zeros(saga_fits):
    # Minibatch noise moves some coordinates off zero for a step now and then,
    # so only part of the zero pattern holds at any moment; the clearly
    # non-zero coefficients stay non-zero.
    C, l1_ratio, rounds = 0.05, 1.0, 10
    X, y, ref = saga_fits("wine", C, l1_ratio)
    clf = SoftmaxRegressionClassifier(
        C=C / rounds,
        l1_ratio=l1_ratio,
        solver="sgd",
        learning_rate_init=0.01,
        batch_size=32,
        random_state=0,
    )
    for _ in range(rounds):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert np.sum(clf.coef_ == 0) >= 10
    assert np.all(clf.coef_[np.abs(ref.coef_) > 0.1] != 0)


def test_l1_ratio_zero_is_the_l2_model():
    X, y = _standardized(load_wine)
    a = SoftmaxRegressionClassifier(C=0.3).fit(X, y)
    b = SoftmaxRegressionClassifier(C=0.3, l1_ratio=0.0).fit(X, y)
    assert_array_equal(a.coef_, b.coef_)


def test_sparse_X_gives_the_dense_model():
    X, y = _standardized(load_wine)
    kw = dict(C=0.1, l1_ratio=0.7, tol=1e-10, max_iter=10_000)
    dense = SoftmaxRegressionClassifier(**kw).fit(X, y)
    sparse = SoftmaxRegressionClassifier(**kw).fit(sp.csr_matrix(X), y)
    assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
    assert_array_equal(sparse.coef_ == 0, dense.coef_ == 0)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_l1_ratio_out_of_range_raises(bad):
    X, y = _standardized(load_wine)
    with pytest.raises(InvalidParameterError, match="'l1_ratio' parameter"):
        SoftmaxRegressionClassifier(l1_ratio=bad).fit(X, y)


def test_soft_threshold_and_prox_steps_on_array_api_strict():
    xp = pytest.importorskip("array_api_strict")
    W = xp.asarray([[-2.0, -0.5, 0.0, 0.3, 1.0]])
    out = soft_threshold(W, 0.5, xp)
    assert get_namespace(out) is get_namespace(W)
    assert_allclose(np.asarray(out), [[-1.5, 0.0, 0.0, 0.0, 0.5]])
    for solver in ("sgd", "adam"):
        opt = make_optimizer(solver, learning_rate_init=0.1, l1=1.0)
        grads = [xp.asarray([[0.5, -0.5, 0.2, 0.0, 0.0]])]
        (new,) = opt.update([xp.zeros_like(W)], grads, xp)
        # |gradient| < l1: every coordinate stays at exactly zero.
        assert_array_equal(np.asarray(new), 0.0)
