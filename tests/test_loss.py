"""The objective J and its gradient, checked against finite differences and an
independent NumPy/SciPy formula.

The reference J is written out here from DESIGN.md with
``scipy.special.logsumexp``; it shares no code with ``sksoftmax._loss``.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.optimize import approx_fprime, check_grad
from scipy.special import logsumexp
from scipy.special import softmax as sp_softmax
from sklearn import config_context

from sksoftmax._loss import LinearSoftmaxLoss, softmax_cross_entropy

N_SAMPLES, N_FEATURES = 40, 5


# --------------------------------------------------------------- reference


def reference_target(target, n_classes, eps):
    """Dense (n, K) target distribution, label smoothing applied."""
    if target.ndim == 1:
        T = np.eye(n_classes)[target]
    else:
        T = np.asarray(target, dtype=np.float64)
    return (1 - eps) * T + eps / n_classes


def reference_objective(
    coef, X, target, sample_weight, *, n_classes, fit_intercept, alpha, eps=0.0
):
    """J(W, b) = (1/S) sum_i s_i CE_i + alpha/2 ||W||^2, written from DESIGN.md.

    ``coef`` is ``[W.ravel(), b]`` with W of shape (k, d), k = 1 for binary
    (one logit for class 1 against a zero logit for class 0).
    """
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    k = 1 if n_classes == 2 else n_classes
    W = coef[: k * d].reshape(k, d)
    b = coef[k * d :] if fit_intercept else np.zeros(k)
    logits = X @ W.T + b
    if n_classes == 2:
        logits = np.hstack([np.zeros((X.shape[0], 1)), logits])
    T = reference_target(target, n_classes, eps)
    ce = logsumexp(logits, axis=1) - np.sum(T * logits, axis=1)
    s = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    return np.sum(s * ce) / np.sum(s) + 0.5 * alpha * np.sum(W * W)


# ------------------------------------------------------------------ cases


def make_case(
    n_classes,
    *,
    fit_intercept=True,
    weighted=False,
    eps=0.0,
    soft=False,
    alpha=0.3,
    seed=0,
):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    if soft:
        target = rng.dirichlet(np.ones(n_classes), size=N_SAMPLES)
    else:
        target = np.arange(N_SAMPLES) % n_classes  # every class present
        rng.shuffle(target)
    sw = rng.uniform(0.1, 3.0, size=N_SAMPLES) if weighted else None
    loss = LinearSoftmaxLoss(
        n_classes,
        N_FEATURES,
        fit_intercept=fit_intercept,
        alpha=alpha,
        label_smoothing=eps,
    )
    # A point away from 0 so that every term of the gradient is exercised.
    coef = rng.normal(scale=0.5, size=loss.n_params)
    return loss, coef, X, target, sw


CASES = {
    "binary": dict(n_classes=2),
    "multiclass": dict(n_classes=4),
    "binary-no-intercept": dict(n_classes=2, fit_intercept=False),
    "multiclass-no-intercept": dict(n_classes=4, fit_intercept=False),
    "binary-weighted": dict(n_classes=2, weighted=True),
    "multiclass-weighted": dict(n_classes=4, weighted=True),
    "binary-smoothing": dict(n_classes=2, eps=0.2),
    "multiclass-smoothing-weighted": dict(n_classes=4, eps=0.1, weighted=True),
    "binary-soft": dict(n_classes=2, soft=True),
    "multiclass-soft-weighted": dict(n_classes=4, soft=True, weighted=True),
    "multiclass-soft-smoothing": dict(n_classes=3, soft=True, eps=0.3),
    "binary-C=inf": dict(n_classes=2, alpha=0.0),
    "multiclass-C=inf": dict(n_classes=4, alpha=0.0),
    "multiclass-C=inf-no-intercept-weighted": dict(
        n_classes=3, alpha=0.0, fit_intercept=False, weighted=True
    ),
}


@pytest.fixture(params=list(CASES.values()), ids=list(CASES))
def case(request):
    return request.param


def _reference(case, loss, coef, X, target, sw):
    return reference_objective(
        coef,
        X,
        target,
        sw,
        n_classes=case["n_classes"],
        fit_intercept=case.get("fit_intercept", True),
        alpha=loss.alpha,
        eps=case.get("eps", 0.0),
    )


# ------------------------------------------------------------------ tests


def test_value_matches_independent_formula(case):
    loss, coef, X, target, sw = make_case(**case)
    expected = _reference(case, loss, coef, X, target, sw)
    assert_allclose(loss.loss(coef, X, target, sw), expected, rtol=1e-12)


def test_gradient_matches_finite_differences(case):
    loss, coef, X, target, sw = make_case(**case)
    grad = loss.gradient(coef, X, target, sw)
    err = check_grad(loss.loss, loss.gradient, coef, X, target, sw)
    assert err < 1e-6 * max(1.0, np.linalg.norm(grad))
    # Differentiate the independent formula as well, so a consistent error in
    # both the loss and its gradient would still be caught.
    numeric = approx_fprime(
        coef, lambda c: _reference(case, loss, c, X, target, sw), 1e-7
    )
    assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_loss_gradient_and_loss_and_gradient_agree(case):
    loss, coef, X, target, sw = make_case(**case)
    value, grad = loss.loss_gradient(coef, X, target, sw)
    assert isinstance(value, float)
    assert grad.shape == (loss.n_params,) and grad.dtype == np.float64
    assert value == loss.loss(coef, X, target, sw)
    np.testing.assert_array_equal(grad, loss.gradient(coef, X, target, sw))


def test_binary_gradient_has_one_logit_row():
    loss, coef, X, target, sw = make_case(2)
    assert loss.n_params == N_FEATURES + 1
    W, b = loss.unpack(coef)
    assert W.shape == (1, N_FEATURES) and b.shape == (1,)


def test_penalty_does_not_touch_the_intercept():
    # Only the penalty depends on alpha: changing it shifts the W part of the
    # gradient by alpha * W and leaves the intercept part unchanged.
    loss_a, coef, X, target, sw = make_case(3, alpha=0.0)
    loss_b = LinearSoftmaxLoss(3, N_FEATURES, alpha=5.0)
    ga = loss_a.gradient(coef, X, target)
    gb = loss_b.gradient(coef, X, target)
    k, d = 3, N_FEATURES
    W = coef[: k * d]
    assert_allclose(gb[: k * d] - ga[: k * d], 5.0 * W, rtol=1e-10, atol=1e-12)
    assert_allclose(gb[k * d :], ga[k * d :], rtol=1e-12)


@pytest.mark.parametrize("working_memory", [1e-4, 5e-4], ids=["1-row", "few-rows"])
def test_row_chunks_give_the_unchunked_result(case, working_memory):
    loss, coef, X, target, sw = make_case(**case)
    J_full, g_full = loss.loss_gradient(coef, X, target, sw)
    with config_context(working_memory=working_memory):
        rows = loss._chunk_rows(X)
        assert rows < N_SAMPLES // 2, "the chunking was not exercised"
        J_chunk, g_chunk = loss.loss_gradient(coef, X, target, sw)
    assert_allclose(J_chunk, J_full, rtol=1e-12)
    assert_allclose(g_chunk, g_full, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_X_equals_dense_X(case, fmt):
    loss, coef, X, target, sw = make_case(**case)
    X[np.abs(X) < 0.8] = 0.0  # make it actually sparse (about 60% zeros)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    J_dense, g_dense = loss.loss_gradient(coef, X, target, sw)
    J_sparse, g_sparse = loss.loss_gradient(coef, Xs, target, sw)
    assert_allclose(J_sparse, J_dense, rtol=1e-12)
    assert_allclose(g_sparse, g_dense, rtol=1e-10, atol=1e-14)
    with config_context(working_memory=1e-4):
        J_chunk, g_chunk = loss.loss_gradient(coef, Xs, target, sw)
    assert_allclose(J_chunk, J_dense, rtol=1e-12)
    assert_allclose(g_chunk, g_dense, rtol=1e-10, atol=1e-14)


def test_array_api_strict_X_equals_numpy_X(case):
    xp = pytest.importorskip("array_api_strict")
    loss, coef, X, target, sw = make_case(**case)
    J_np, g_np = loss.loss_gradient(coef, X, target, sw)
    J_xp, g_xp = loss.loss_gradient(
        coef, xp.asarray(X), xp.asarray(target), None if sw is None else xp.asarray(sw)
    )
    assert_allclose(J_xp, J_np, rtol=1e-12)
    assert_allclose(g_xp, g_np, rtol=1e-10, atol=1e-14)


def test_soft_one_hot_target_equals_class_codes():
    loss, coef, X, codes, sw = make_case(4, weighted=True)
    onehot = np.eye(4)[codes]
    J1, g1 = loss.loss_gradient(coef, X, codes, sw)
    J2, g2 = loss.loss_gradient(coef, X, onehot, sw)
    assert_allclose(J2, J1, rtol=1e-13)
    assert_allclose(g2, g1, rtol=1e-12, atol=1e-15)


def test_sample_weight_equals_repetition():
    loss, coef, X, target, _ = make_case(3)
    sw = np.arange(N_SAMPLES) % 3  # 0, 1 or 2 copies of each sample
    Xr, tr = np.repeat(X, sw, axis=0), np.repeat(target, sw)
    J1, g1 = loss.loss_gradient(coef, X, target, sw.astype(float))
    J2, g2 = loss.loss_gradient(coef, Xr, tr)
    assert_allclose(J1, J2, rtol=1e-12)
    assert_allclose(g1, g2, rtol=1e-10, atol=1e-14)


def test_gradient_vanishes_at_logistic_regression_optimum():
    # An independent optimum: LogisticRegression at C minimizes the same J.
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=200) > 0).astype(int)
    y[:70] = rng.integers(0, 3, size=70)  # three classes, overlapping
    C = 0.7
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    loss = LinearSoftmaxLoss(3, 4, alpha=1.0 / (C * len(y)))
    coef = np.concatenate([lr.coef_.ravel(), lr.intercept_])
    grad = loss.gradient(coef, X, y)
    assert np.abs(grad).max() < 1e-6
    # ... while a perturbed point has a clearly non-zero gradient.
    step = np.random.default_rng(4).normal(scale=0.05, size=coef.shape)
    assert np.abs(loss.gradient(coef + step, X, y)).max() > 1e-3


# ------------------------------------------------- raw softmax cross-entropy


def _raw_case(n, K, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, K))
    codes = rng.integers(0, K, size=n)
    w = rng.uniform(0.0, 2.0, size=n)
    return logits, codes, w


@pytest.mark.parametrize("target_kind", ["codes", "soft"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("eps", [0.0, 0.25], ids=["no-smoothing", "smoothing"])
def test_softmax_cross_entropy_raw(target_kind, weighted, eps):
    K = 5
    logits, codes, w = _raw_case(30, K)
    if target_kind == "codes":
        target = codes
    else:
        target = np.random.default_rng(1).dirichlet(np.ones(K), size=30)
    weights = w if weighted else None
    T = reference_target(target, K, eps)
    s = w if weighted else np.ones(30)
    expected_grad = (sp_softmax(logits, axis=1) - T) * s[:, None]
    expected_loss = np.sum(s * (logsumexp(logits, axis=1) - np.sum(T * logits, axis=1)))

    value, grad = softmax_cross_entropy(
        logits.copy(), target, weights, label_smoothing=eps
    )
    assert_allclose(float(value), expected_loss, rtol=1e-12)
    assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-15)


def test_softmax_cross_entropy_gradient_is_derivative_of_loss():
    logits, codes, w = _raw_case(6, 4)

    def f(flat):
        # copy: on NumPy the function overwrites its logits with the gradient
        return float(
            softmax_cross_entropy(flat.reshape(logits.shape).copy(), codes, w)[0]
        )

    _, grad = softmax_cross_entropy(logits.copy(), codes, w)
    numeric = approx_fprime(logits.ravel(), f, 1e-7)
    assert_allclose(grad.ravel(), numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("target_kind", ["codes", "soft"])
def test_softmax_cross_entropy_array_api_strict_matches_numpy(target_kind):
    xp = pytest.importorskip("array_api_strict")
    K = 4
    logits, codes, w = _raw_case(20, K)
    target = codes if target_kind == "codes" else np.eye(K)[codes] * 0.5 + 0.5 / K
    T = reference_target(target, K, 0.1)
    expected_grad = (sp_softmax(logits, axis=1) - T) * w[:, None]
    value, grad = softmax_cross_entropy(
        xp.asarray(logits), xp.asarray(target), xp.asarray(w), label_smoothing=0.1
    )
    assert type(grad).__module__.startswith("array_api_strict")
    expected_loss = np.sum(w * (logsumexp(logits, axis=1) - np.sum(T * logits, axis=1)))
    assert_allclose(float(value), expected_loss, rtol=1e-12)
    assert_allclose(np.from_dlpack(grad), expected_grad, rtol=1e-10, atol=1e-15)


def test_softmax_cross_entropy_huge_logits_are_finite():
    logits = np.array([[1e300, -1e300, 0.0], [-1e300, -1e300, 1e300]])
    value, grad = softmax_cross_entropy(logits.copy(), np.array([1, 2]))
    # Row 0 puts all mass on class 0 but the target is class 1: CE = 2e300;
    # row 1 puts all mass on its target: CE = 0.
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert_allclose(float(value), 2e300, rtol=1e-12)
    assert_allclose(grad, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-15)
