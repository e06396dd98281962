"""Preconditioned L-BFGS: gradients in the scaled variables, the same optimum
as without preconditioning and as LogisticRegression, and composition with
every feature that reaches L-BFGS."""

import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._loss import LinearSoftmaxLoss
from sksoftmax._penalty import SplitL1Problem
from sksoftmax._precondition import (
    ColumnStats,
    Preconditioner,
    ScaledProblem,
    block_curvature,
    fit_preconditioner,
    merge_column_stats,
)


def unscaled(rng, n=300, d=5, k=3):
    """Features of scales 1e-3..1e3 with means far from zero, and labels
    that depend on them."""
    Z = rng.standard_normal((n, d))
    y = np.argmax(Z @ rng.standard_normal((d, k)) + rng.gumbel(size=(n, k)), axis=1)
    scales = np.logspace(-3, 3, d)
    return Z * scales + 10 * scales * rng.uniform(-5, 5, d), y


def J(clf, X, y, C=1.0, sample_weight=None):
    S = len(y) if sample_weight is None else sample_weight.sum()
    loss = LinearSoftmaxLoss(len(clf.classes_), X.shape[1], alpha=1.0 / (C * S))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    codes = np.searchsorted(clf.classes_, y)
    return loss.loss(coef, X, codes, sample_weight)


# -- the change of variables ---------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["b", "no-b"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_gradient_in_scaled_variables(rng, sparse, fit_intercept, n_classes):
    X, _ = unscaled(rng, n=60, d=4)
    X = X / np.abs(X).max(axis=0)  # finite differences need moderate sizes
    y = rng.integers(0, n_classes, 60)
    w = rng.uniform(0.5, 2.0, 60)
    if sparse:
        X = sp.csr_matrix(X * (rng.random(X.shape) < 0.5))
    loss = LinearSoftmaxLoss(
        n_classes, 4, fit_intercept=fit_intercept, alpha=0.05, label_smoothing=0.1
    )
    pre = fit_preconditioner(X, w, fit_intercept=fit_intercept, alpha=0.05)
    assert pre.centers == fit_intercept
    problem = ScaledProblem(loss, pre)
    z = rng.standard_normal(loss.n_params)
    err = scipy.optimize.check_grad(
        lambda v: problem.loss_gradient(v, X, y, w)[0],
        lambda v: problem.loss_gradient(v, X, y, w)[1],
        z,
    )
    assert err < 1e-6 * max(1.0, np.linalg.norm(problem.loss_gradient(z, X, y, w)[1]))
    # The same J at the mapped point: only the variables change.
    f, _ = problem.loss_gradient(z, X, y, w)
    assert_allclose(f, loss.loss(problem.to_original(z), X, y, w), rtol=1e-12)
    assert_allclose(problem.to_scaled(problem.to_original(z)), z, rtol=1e-10)


def test_gradient_of_the_scaled_l1_split(rng):
    X, y = unscaled(rng, n=50, d=4)
    X = X / np.abs(X).max(axis=0)
    loss = LinearSoftmaxLoss(3, 4, alpha=0.1)
    pre = fit_preconditioner(X, fit_intercept=True, alpha=0.1)
    problem = ScaledProblem(loss, pre)
    split = SplitL1Problem(problem, np.tile(0.2 / pre.scale, 3))
    z = np.abs(rng.standard_normal(2 * 12 + 3)) + 0.1
    err = scipy.optimize.check_grad(
        lambda v: split.loss_gradient(v, X, y)[0],
        lambda v: split.loss_gradient(v, X, y)[1],
        z,
    )
    assert err < 1e-6
    # At a split point (P N = 0) the scaled penalty is the original
    # l1 * ||W||_1.
    z = split.split(rng.standard_normal(15))
    W = problem.to_original(split.join(z))[:12]
    f = split.loss_gradient(z, X, y)[0]
    assert_allclose(
        f, loss.loss(problem.to_original(split.join(z)), X, y) + 0.2 * np.abs(W).sum()
    )


# -- the statistics ------------------------------------------------------------


def test_column_stats_match_numpy_and_merge_over_chunks(rng):
    X, _ = unscaled(rng, n=500, d=6)
    w = rng.uniform(0, 3, 500)
    whole = ColumnStats().update(X, w)
    parts = [
        ColumnStats().update(X[i : i + 70], w[i : i + 70]) for i in range(0, 500, 70)
    ]
    merged = merge_column_stats(*parts)
    mean = np.average(X, axis=0, weights=w)
    var = np.average((X - mean) ** 2, axis=0, weights=w)
    for stats in (whole, merged):
        assert_allclose(stats.mean, mean, rtol=1e-12)
        assert_allclose(stats.m2 / stats.n, var, rtol=1e-9)
    pre = merged.preconditioner(center=True)
    assert_allclose(pre.scale, np.sqrt(var), rtol=1e-9)
    # Sparse input: the same statistics (centered implicitly, X stays sparse).
    sparse = ColumnStats().update(sp.csr_matrix(X), w).preconditioner(center=True)
    assert_allclose(sparse.scale, pre.scale, rtol=1e-6)
    assert_allclose(sparse.mean, pre.mean, rtol=1e-12)
    rms = ColumnStats().update(sp.csr_matrix(X), w).preconditioner(center=False)
    assert_allclose(rms.scale, np.sqrt(np.average(X**2, axis=0, weights=w)))


def test_column_stats_on_array_api_strict(rng):
    xp = pytest.importorskip("array_api_strict")
    X, _ = unscaled(rng, n=100, d=4)
    got = ColumnStats().update(xp.asarray(X)).preconditioner(center=True, alpha=0.01)
    ref = ColumnStats().update(X).preconditioner(center=True, alpha=0.01)
    assert_allclose(got.scale, ref.scale, rtol=1e-12)
    assert_allclose(got.mean, ref.mean, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constant_features_get_a_finite_scale(rng, alpha, dtype):
    X = np.column_stack(
        [np.full(50, 7.3), np.zeros(50), rng.standard_normal(50)]
    ).astype(dtype)
    pre = fit_preconditioner(X, fit_intercept=True, alpha=alpha)
    assert np.all(np.isfinite(pre.scale)) and np.all(pre.scale > 0)
    expected = 1.0 if alpha == 0 else np.sqrt(25 * alpha)  # documented
    assert_allclose(pre.scale[:2], expected)
    y = (X[:, 2] > 0).astype(int)
    clf = SoftmaxRegressionClassifier(tol=1e-8, C=10.0).fit(X, y)
    ref = SoftmaxRegressionClassifier(tol=1e-8, C=10.0, precondition=False).fit(X, y)
    # float32 fits stop at its rounding floor, short of tol=1e-8, each on its
    # own path: up to 1e-4 apart (by machine), where float64 agrees to 1e-6.
    atol = 1e-6 if dtype == np.float64 else 3e-4
    assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=atol)


def test_block_curvature_against_the_eigenvalues(rng):
    X, _ = unscaled(rng, n=200, d=5)
    w = rng.uniform(0.0, 2.0, 200)
    w[:10] = 0.0
    X[0] *= 100  # an outlier of zero weight does not count
    pre = fit_preconditioner(X, w, fit_intercept=True)
    Z = (X - pre.mean) / pre.scale
    lam, max_row_sq, mean_l1 = block_curvature(X, pre, w, n_iter=200)
    M = (Z * w[:, None]).T @ Z / w.sum()
    assert_allclose(lam, np.linalg.eigvalsh(M)[-1], rtol=1e-6)
    assert_allclose(max_row_sq, np.max((Z**2).sum(axis=1)[w > 0]), rtol=1e-10)
    assert_allclose(mean_l1, np.abs(Z).sum(axis=1) @ w / w.sum(), rtol=1e-10)
    X[rng.random(X.shape) < 0.5] = 0.0  # sparse input, centered implicitly
    Xs = sp.csr_matrix(X)
    for Xk, wk in ((Xs, None), (Xs.tocsc(), w)):
        pre_s = fit_preconditioner(Xk, wk, fit_intercept=True)
        Zs = (X - pre_s.mean) / pre_s.scale
        wz = np.ones(200) if wk is None else wk
        lam_s, row_s, l1_s = block_curvature(Xk, pre_s, wk, n_iter=200)
        M = (Zs * wz[:, None]).T @ Zs / wz.sum()
        assert_allclose(lam_s, np.linalg.eigvalsh(M)[-1], rtol=1e-6)
        assert_allclose(row_s, np.max((Zs**2).sum(axis=1)[wz > 0]), rtol=1e-10)
        assert_allclose(l1_s, np.abs(Zs).sum(axis=1) @ wz / wz.sum(), rtol=1e-10)


def test_identity_preconditioner_changes_nothing(rng):
    pre = Preconditioner.identity(3)
    W, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    V, c = pre.to_scaled(W, b)
    assert_array_equal(V, W)
    assert_array_equal(c, b)


# -- the estimator ---------------------------------------------------------------


def test_unscaled_data_converges_at_the_default_max_iter(rng):
    X, y = unscaled(rng, n=400, d=6)
    ref = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=500)
    ref.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = SoftmaxRegressionClassifier().fit(X, y)
    J_ref = J(ref, X, y)
    assert (J(clf, X, y) - J_ref) / J_ref < 1e-6
    # Without the change of variables, the default budget is far from enough.
    with pytest.warns(ConvergenceWarning):
        old = SoftmaxRegressionClassifier(precondition=False).fit(X, y)
    assert (J(old, X, y) - J_ref) / J_ref > 1e-3


def test_x_is_neither_copied_into_nor_modified(rng):
    X, y = unscaled(rng)
    before = X.copy()
    SoftmaxRegressionClassifier().fit(X, y)
    assert_array_equal(X, before)


def test_tol_is_measured_on_the_original_gradient(rng):
    X, y = unscaled(rng, n=300, d=4)
    X = X / np.abs(X).max(axis=0) * [1.0, 10.0, 100.0, 0.1]
    for tol in (1e-3, 1e-5):
        clf = SoftmaxRegressionClassifier(tol=tol, max_iter=10_000).fit(X, y)
        loss = LinearSoftmaxLoss(3, 4, alpha=1.0 / 300)
        g = loss.gradient(np.concatenate([clf.coef_.ravel(), clf.intercept_]), X, y)
        assert np.max(np.abs(g)) <= tol


def test_warm_start_from_the_optimum_stays_there(rng):
    """tol=1e-6 is below this data's float64 floor (features of scale 1e3 far
    from zero): the first fit stops there (max |gradient| about 2e-4), and
    the second may take one more iteration. It does not raise J and does not
    move the model: the probabilities stay within 1e-6; coef_ may slide a
    few 1e-6 relative along the flat trade-off between the weights of
    features far from zero and the intercepts."""
    X, y = unscaled(rng)
    clf = SoftmaxRegressionClassifier(tol=1e-6, warm_start=True, max_iter=1000)
    clf.fit(X, y)
    coef, J_first, P_first = clf.coef_.copy(), J(clf, X, y), clf.predict_proba(X)
    clf.fit(X, y)
    assert clf.n_iter_ <= 1
    assert J(clf, X, y) <= J_first * (1 + 1e-14)
    assert_allclose(clf.predict_proba(X), P_first, atol=1e-6)
    assert_allclose(clf.coef_, coef, rtol=1e-5, atol=1e-9)


CASES = {
    "weights": dict(sample_weight=True),
    "class-weight": dict(params=dict(class_weight="balanced")),
    "label-smoothing": dict(params=dict(label_smoothing=0.1)),
    "soft-labels": dict(soft=True),
    "elastic-net": dict(params=dict(l1_ratio=0.5, C=0.5)),
    "no-intercept": dict(params=dict(fit_intercept=False)),
    "binary": dict(binary=True),
    "sparse": dict(sparse=True),
    "sparse-elastic-net": dict(sparse=True, params=dict(l1_ratio=0.7)),
    "float32": dict(dtype=np.float32),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_same_optimum_with_and_without_preconditioning(rng, case):
    spec = CASES[case]
    X, y = unscaled(rng, n=200, d=4)
    X = (X - X.mean(axis=0)) / X.std(axis=0) * [1.0, 3.0, 0.3, 2.0] + [5, -3, 1, 0]
    if spec.get("binary"):
        y = (y > 0).astype(int)
    if spec.get("sparse"):
        X = sp.csr_matrix(X * (rng.random(X.shape) < 0.4))
    if "dtype" in spec:
        X = X.astype(spec["dtype"])
    if spec.get("soft"):
        y = rng.dirichlet(np.ones(3), size=200)
    fit_params = {}
    if spec.get("sample_weight"):
        fit_params["sample_weight"] = rng.uniform(0.1, 3.0, 200)
    params = dict(tol=1e-10, max_iter=5000, **spec.get("params", {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        got = SoftmaxRegressionClassifier(**params).fit(X, y, **fit_params)
        ref = SoftmaxRegressionClassifier(precondition=False, **params)
        ref.fit(X, y, **fit_params)
    # Both stop at L-BFGS-B's relative-reduction floor (see the tol
    # docstring), a few 1e-6 apart in float64; float32 gradients are coarser.
    tol = 5e-3 if "dtype" in spec else 2e-5
    assert got.coef_.dtype == X.dtype
    assert_allclose(got.coef_, ref.coef_, rtol=tol, atol=tol)
    # A common shift of all intercepts leaves J unchanged (softmax); with the
    # L1 split's bounds the two paths may end at different shifts.
    shift = 0.0 if got.intercept_.size == 1 else got.intercept_.mean()
    ref_shift = 0.0 if ref.intercept_.size == 1 else ref.intercept_.mean()
    assert_allclose(got.intercept_ - shift, ref.intercept_ - ref_shift, atol=tol)
    assert_allclose(got.predict_proba(X), ref.predict_proba(X), atol=tol)
    if "l1_ratio" in spec.get("params", {}):
        assert_array_equal(got.coef_ == 0, ref.coef_ == 0)
        assert np.any(got.coef_ == 0)


def test_array_api_strict_matches_numpy(rng):
    # sksoftmax fits Array API input without scikit-learn's dispatch (which
    # the oldest supported SciPy lacks).
    xp = pytest.importorskip("array_api_strict")
    from sksoftmax._backend import to_numpy

    X, y = unscaled(rng, n=200, d=4)
    ref = SoftmaxRegressionClassifier(tol=1e-8).fit(X, y)
    got = SoftmaxRegressionClassifier(tol=1e-8).fit(xp.asarray(X), xp.asarray(y))
    assert_allclose(to_numpy(got.coef_), ref.coef_, rtol=1e-6, atol=1e-9)


def test_a_stall_before_tol_is_restarted(rng):
    """L-BFGS-B can stop on its relative-reduction rule with the gradient far
    above tol (seen with the L1 split's bounds on this sparse problem: at
    iteration 20, max |gradient| 3e-3 and J 2e-5 above the optimum, reported
    as converged). The fit starts again from there and reaches the optimum."""
    X, y = unscaled(rng, n=200, d=4)
    X = (X - X.mean(axis=0)) / X.std(axis=0) * [1.0, 3.0, 0.3, 2.0] + [5, -3, 1, 0]
    X = sp.csr_matrix(X * (rng.random(X.shape) < 0.4))
    l1_ratio, alpha = 0.7, 1.0 / 200
    loss = LinearSoftmaxLoss(3, 4, alpha=(1 - l1_ratio) * alpha)

    def objective(est):
        coef = np.concatenate([est.coef_.ravel(), est.intercept_])
        return loss.loss(coef, X, y) + l1_ratio * alpha * np.abs(est.coef_).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        got = SoftmaxRegressionClassifier(l1_ratio=l1_ratio).fit(X, y)
    ref = SoftmaxRegressionClassifier(
        l1_ratio=l1_ratio, precondition=False, tol=1e-10, max_iter=5000
    ).fit(X, y)
    assert objective(got) / objective(ref) - 1 < 1e-7


def test_lbfgs_scales_weigh_the_penalty_against_a_typical_curvature():
    """Raw digits (pixel counts, rarely lit pixels of tiny variance):
    L-BFGS's scales weigh the L2 strength against curvature 1/25 per logit,
    which brings it within 1e-8 of the optimum in 340 iterations; against
    the bound 1/4 (as SGD and Adam keep) it took 743."""
    X, y = load_digits(return_X_y=True)
    ref = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=100)
    ref.fit(X, y)
    J_star = J(ref, X, y)
    clf = SoftmaxRegressionClassifier(tol=1e-10, max_iter=600).fit(X, y)
    assert J(clf, X, y) <= J_star * (1 + 1e-8)
    reached = np.flatnonzero(np.array(clf.loss_curve_) <= J_star * (1 + 1e-8))
    assert reached.size and reached[0] + 1 <= 400
