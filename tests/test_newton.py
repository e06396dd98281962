"""Newton's method: SoftmaxRegressionCV's solver for the folds' paths on small
data (``solver="auto"``). Its Hessian is checked against finite differences
of the gradient, its optimum against L-BFGS and scikit-learn's
LogisticRegression at a tight tol, and the CV's choice of it by the rule."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressionClassifier, SoftmaxRegressionCV
from sksoftmax._classifier import fit_warm_path
from sksoftmax._loss import LinearSoftmaxLoss
from sksoftmax._solvers._newton import newton_pays

TIGHT = dict(tol=1e-10, max_iter=10_000)


def _load(name):
    loader = {
        "iris": load_iris,
        "wine": load_wine,
        "breast_cancer": load_breast_cancer,
        "digits": load_digits,
    }[name]
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _problem(n_classes, sparse, soft, weighted, intercept, seed=0):
    rng = np.random.default_rng(seed)
    n, d = 60, 5
    X = rng.standard_normal((n, d))
    if sparse:
        X = sp.csr_matrix(X * (rng.random((n, d)) < 0.5))
    target = (
        rng.dirichlet(np.ones(n_classes), n) if soft else rng.integers(0, n_classes, n)
    )
    sw = rng.uniform(0.2, 2.0, n) if weighted else None
    loss = LinearSoftmaxLoss(n_classes, d, fit_intercept=intercept, alpha=0.05)
    coef = rng.standard_normal(loss.n_params) * 0.5
    return loss, coef, X, target, sw


@pytest.mark.parametrize(
    "n_classes, sparse, soft, weighted, intercept",
    [
        (3, False, False, True, True),
        (2, False, False, False, True),
        (4, True, True, True, False),
        (2, True, False, True, False),
        (3, True, False, False, True),
        (5, False, True, False, True),
    ],
)
def test_hessian_is_the_derivative_of_the_gradient(
    n_classes, sparse, soft, weighted, intercept
):
    loss, coef, X, target, sw = _problem(n_classes, sparse, soft, weighted, intercept)
    H = loss.hessian(coef, X, sw)
    assert H.shape == (loss.n_params, loss.n_params)
    assert_allclose(H, H.T, atol=1e-15)
    eps = 1e-6
    fd = np.empty_like(H)
    for i in range(coef.size):
        e = np.zeros_like(coef)
        e[i] = eps
        g_plus = loss.loss_gradient(coef + e, X, target, sw)[1]
        g_minus = loss.loss_gradient(coef - e, X, target, sw)[1]
        fd[:, i] = (g_plus - g_minus) / (2 * eps)
    assert_allclose(H, fd, atol=1e-8)


def test_hessian_in_float32_matches_float64():
    loss, coef, X, target, sw = _problem(3, False, False, True, True)
    H64 = loss.hessian(coef, X, sw)
    H32 = loss.hessian(coef, X.astype(np.float32), sw)
    assert H32.dtype == np.float64
    assert_allclose(H32, H64, rtol=1e-5, atol=1e-6)


def _newton_path(X, y, sw, Cs, **params):
    est = SoftmaxRegressionClassifier(**params)
    return [
        (fit.coef_.copy(), fit.intercept_.copy(), fit.n_iter_)
        for fit in fit_warm_path(est, X, y, sw, Cs, solver="newton")
    ]


def _lbfgs(X, y, sw, C, **params):
    return SoftmaxRegressionClassifier(C=C, **{**TIGHT, **params}).fit(
        X, y, sample_weight=sw
    )


def _objective(X, y, sw, C, coef, intercept, fit_intercept=True):
    """``(J, dJ/d[W, b])`` of the fit at ``C`` (the estimator's objective)."""
    n_classes = y.shape[1] if y.ndim == 2 else np.unique(y).shape[0]
    S = X.shape[0] if sw is None else sw.sum()
    loss = LinearSoftmaxLoss(
        n_classes, X.shape[1], fit_intercept=fit_intercept, alpha=1.0 / (C * S)
    )
    flat = np.concatenate([coef.ravel(), intercept if fit_intercept else []])
    target = y if y.ndim == 2 else np.searchsorted(np.unique(y), y)
    return loss.loss_gradient(flat, X, target, sw)


@pytest.mark.parametrize(
    "case", ["iris", "wine-weights", "binary", "no-intercept", "sparse", "soft"]
)
def test_newton_path_reaches_the_lbfgs_optimum(case):
    """At a tight tol every C of a Newton path meets the tol (L-BFGS-B stops
    on its relative-reduction rule near 1e-9 first), its J is no higher than
    L-BFGS's and the coefficients agree with L-BFGS's."""
    X, y = _load("wine" if case == "wine-weights" else "iris")
    rng = np.random.default_rng(0)
    sw, params = None, {}
    if case == "wine-weights":
        sw = rng.uniform(0.2, 3.0, y.shape[0])
    elif case == "binary":
        X, y = X[y > 0], y[y > 0]
    elif case == "no-intercept":
        params["fit_intercept"] = False
    elif case == "sparse":
        X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    elif case == "soft":
        y = rng.dirichlet(np.ones(3), y.shape[0])
    Cs = [0.01, 1.0, 100.0]
    path = _newton_path(X, y, sw, Cs, **TIGHT, **params)
    for C, (coef, intercept, n_iter) in zip(Cs, path, strict=True):
        ref = _lbfgs(X, y, sw, C, **params)
        J, g = _objective(X, y, sw, C, coef, intercept, **params)
        J_ref, _ = _objective(X, y, sw, C, ref.coef_, ref.intercept_, **params)
        assert np.abs(g).max() <= 1e-10
        assert J <= J_ref + 1e-15
        assert n_iter < ref.n_iter_
        scale = np.abs(ref.coef_).max()
        assert np.abs(coef - ref.coef_).max() <= 1e-5 * scale
        assert np.abs(intercept - ref.intercept_).max() <= 1e-5 * scale


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_newton_path_matches_logistic_regression(name):
    """An independent reference: scikit-learn's (multinomial) lbfgs fit."""
    X, y = _load(name)
    Cs = [0.1, 10.0]
    path = _newton_path(X, y, None, Cs, **TIGHT)
    for C, (coef, intercept, _) in zip(Cs, path, strict=True):
        ref = LogisticRegression(C=C, **TIGHT).fit(X, y)
        scale = np.abs(ref.coef_).max()
        assert np.abs(coef - ref.coef_).max() <= 1e-5 * scale
        assert np.abs(intercept - ref.intercept_).max() <= 1e-5 * scale


def test_newton_stops_at_tol_with_the_lbfgs_rule():
    """The default tol: the largest gradient entry at the result is at most
    tol, and J is no higher than L-BFGS's at the same tol."""
    X, y = _load("wine")
    coef, intercept, _ = _newton_path(X, y, None, [1.0])[0]
    loss = LinearSoftmaxLoss(3, X.shape[1], alpha=1.0 / X.shape[0])
    J, g = loss.loss_gradient(np.concatenate([coef.ravel(), intercept]), X, y)
    assert np.abs(g).max() <= 1e-4
    ref = SoftmaxRegressionClassifier(C=1.0).fit(X, y)
    J_ref = loss.loss(np.concatenate([ref.coef_.ravel(), ref.intercept_]), X, y)
    assert J <= J_ref + 1e-12


@pytest.mark.parametrize("C", [1.0, np.inf])
def test_newton_leaves_the_free_directions_alone(C):
    """Adding a constant to every class's intercept (and, with C=inf, to
    every class's weights of a feature) changes no probability: Newton does
    not move along it, as L-BFGS does not, so the logits do not depend on
    rounding. From zero, the intercepts (and weight columns) keep summing to 0."""
    X, y = _load("iris")
    X = X + np.random.default_rng(0).normal(scale=2.0, size=X.shape)  # overlap
    coef, intercept, _ = _newton_path(X, y, None, [C], **TIGHT)[0]
    assert abs(intercept.sum()) <= 1e-12 * np.abs(intercept).max()
    if C == np.inf:
        assert np.abs(coef.sum(axis=0)).max() <= 1e-12 * np.abs(coef).max()
    ref = _lbfgs(X, y, None, C)
    assert_allclose(coef, ref.coef_, rtol=1e-5, atol=1e-6)


def test_newton_warns_at_max_iter_and_obeys_the_callback():
    X, y = _load("wine")
    with pytest.warns(ConvergenceWarning, match="newton failed to converge after 1"):
        ((_, _, n_iter),) = _newton_path(X, y, None, [1.0], tol=1e-12, max_iter=1)
    assert n_iter == 1
    seen = []

    def stop_after_two(estimator, info):
        seen.append(info["iteration"])
        return len(seen) == 2

    est = SoftmaxRegressionClassifier(tol=1e-12, callback=stop_after_two)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a callback stop is no failure
        fitted = list(fit_warm_path(est, X, y, None, [1.0], solver="newton"))[-1]
    assert seen == [1, 2] and fitted.n_iter_ == 2


def test_newton_refuses_an_l1_term():
    X, y = _load("iris")
    est = SoftmaxRegressionClassifier(l1_ratio=0.5)
    with pytest.raises(NotImplementedError, match="no L1 term"):
        list(fit_warm_path(est, X, y, None, [1.0], solver="newton"))


def test_cv_auto_takes_newton_on_small_data_only():
    """``solver="auto"``: Newton's method for the folds' paths where the rule
    says it pays (iris), L-BFGS elsewhere (digits, and every l1_ratio > 0);
    the final model is always fitted by L-BFGS."""
    X, y = _load("iris")
    assert newton_pays(100, 3 * 5)
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [0.1, 10.0]
    auto = SoftmaxRegressionCV(Cs=Cs, cv=cv, l1_ratios=[0.0, 0.5]).fit(X, y)
    lbfgs = SoftmaxRegressionCV(Cs=Cs, cv=cv, l1_ratios=[0.0, 0.5], solver="lbfgs")
    lbfgs.fit(X, y)
    train = cv[0][0]
    newton = _newton_path(X[train], y[train], None, Cs)
    for i, (coef, intercept, n_iter) in enumerate(newton):
        W = np.column_stack([coef, intercept])
        assert_array_equal(auto.coefs_paths_[0, 0, i], W)
        assert auto.n_iter_[0, 0, i] == n_iter
    # the l1_ratio=0.5 paths are L-BFGS's, bit for bit
    assert_array_equal(auto.coefs_paths_[:, 1], lbfgs.coefs_paths_[:, 1])
    assert auto.n_iter_[:, 0].sum() < lbfgs.n_iter_[:, 0].sum()
    assert auto.estimator_.solver == "lbfgs"

    X, y = _load("digits")
    assert not newton_pays(X.shape[0] * 2 // 3, 10 * (X.shape[1] + 1))
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    auto = SoftmaxRegressionCV(Cs=[1.0], cv=cv).fit(X, y)
    lbfgs = SoftmaxRegressionCV(Cs=[1.0], cv=cv, solver="lbfgs").fit(X, y)
    assert_array_equal(auto.coefs_paths_, lbfgs.coefs_paths_)


def test_cv_auto_picks_the_same_C_as_lbfgs():
    X, y = _load("wine")
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    auto = SoftmaxRegressionCV(Cs=6, cv=cv, **TIGHT).fit(X, y)
    lbfgs = SoftmaxRegressionCV(Cs=6, cv=cv, solver="lbfgs", **TIGHT).fit(X, y)
    # L-BFGS-B's own stop near max |gradient| 1e-9 leaves its large-C fits
    # (weak directions) about 1e-5 away: Newton's meet tol=1e-10.
    assert auto.C_ == lbfgs.C_
    assert_allclose(auto.scores_, lbfgs.scores_, rtol=1e-4)
    assert_allclose(auto.coef_, lbfgs.coef_, rtol=1e-4, atol=1e-6)
