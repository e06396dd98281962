"""Row blocks on worker threads: the blocked, threaded NumPy evaluation equals
a plain one-shot evaluation written here from the formulas, ``predict_proba``'s
blocked kernel equals a plain softmax, and the thread count follows the
user's BLAS setting and leaves it as it was."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax
from threadpoolctl import threadpool_limits

import sksoftmax._cpu_kernels as kernels
import sksoftmax._loss as loss_module
from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._loss import LinearSoftmaxLoss


def plain_loss_gradient(coef, X, target, w, K, fit_intercept, alpha, eps):
    """J and its gradient in one shot on all rows, in float64."""
    k = 1 if K == 2 else K
    d = X.shape[1]
    W = coef[: k * d].reshape(k, d)
    b = coef[k * d :] if fit_intercept else np.zeros(k)
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    logits = X @ W.T + b
    if K == 2:
        logits = np.hstack([np.zeros((X.shape[0], 1)), logits])
    T = np.eye(K)[target] if target.ndim == 1 else target
    T = (1 - eps) * T + eps / K
    s = np.ones(X.shape[0]) if w is None else w
    S = s.sum()
    J = (s * -(T * sp_log_softmax(logits, axis=1)).sum(axis=1)).sum() / S
    J += 0.5 * alpha * (W * W).sum()
    G = (sp_softmax(logits, axis=1) - T) * s[:, None] / S
    G = G[:, 1:] if K == 2 else G
    gW = G.T @ X + alpha * W
    grad = np.concatenate(
        [gW.ravel(), G.sum(axis=0)] if fit_intercept else [gW.ravel()]
    )
    return J, grad


def _many_blocks(monkeypatch, threads):
    """Blocks of about 40 rows, spread over ``threads`` worker threads."""
    monkeypatch.setattr(loss_module, "_MIN_BLOCK_ROWS", 1)
    monkeypatch.setattr(loss_module, "_CACHE_BYTES", 40 * 8 * 12)
    monkeypatch.setattr(kernels, "n_threads", lambda: threads)


CASES = {
    "dense": dict(K=5),
    "csr": dict(K=5, sparse=True),
    "weights": dict(K=5, weighted=True),
    "soft": dict(K=5, soft=True),
    "smoothing": dict(K=5, eps=0.1),
    "binary": dict(K=2, weighted=True),
    "many-classes": dict(K=60),
    "no-intercept": dict(K=5, fit_intercept=False, soft=True, weighted=True),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_threaded_blocks_equal_one_plain_evaluation(rng, monkeypatch, case):
    c = dict(
        dict(sparse=False, weighted=False, soft=False, eps=0.0, fit_intercept=True),
        **CASES[case],
    )
    K, n, d = c["K"], 1003, 10
    X = rng.standard_normal((n, d))
    if c["sparse"]:
        X[rng.random((n, d)) < 0.7] = 0.0
        X = sp.csr_matrix(X)
    target = rng.dirichlet(np.ones(K), n) if c["soft"] else rng.integers(0, K, n)
    w = rng.random(n) if c["weighted"] else None
    kw = dict(fit_intercept=c["fit_intercept"], alpha=0.02, label_smoothing=c["eps"])
    coef = rng.standard_normal(LinearSoftmaxLoss(K, d, **kw).n_params)
    J_ref, g_ref = plain_loss_gradient(
        coef, X, target, w, K, c["fit_intercept"], 0.02, c["eps"]
    )
    results = []
    for threads in (1, 2, 3):
        _many_blocks(monkeypatch, threads)
        loss = LinearSoftmaxLoss(K, d, **kw)
        assert loss._block_rows(X) < n // 8 or c["sparse"]
        results.append(loss.loss_gradient(coef, X, target, w))
    for J, g in results:
        assert_allclose(J, J_ref, rtol=1e-12)
        assert_allclose(g, g_ref, rtol=1e-12, atol=1e-15)
    # Partial sums are added in a fixed order: the thread count changes nothing.
    for J, g in results[1:]:
        assert J == results[0][0] and np.array_equal(g, results[0][1])


def test_float32_blocks_stay_float32_and_match_float64(rng, monkeypatch):
    n, d, K = 2000, 12, 7
    X = rng.standard_normal((n, d))
    y = rng.integers(0, K, n)
    loss = LinearSoftmaxLoss(K, d, alpha=0.01)
    W, b = loss.unpack(rng.standard_normal(loss.n_params) * 0.3)
    _many_blocks(monkeypatch, 2)
    J32, gW32, gb32 = loss.loss_gradient_arrays(
        W.astype(np.float32), b.astype(np.float32), X.astype(np.float32), y
    )
    J64, gW64, gb64 = loss.loss_gradient_arrays(W, b, X, y)
    assert gW32.dtype == np.float32 and gb32.dtype == np.float32
    assert isinstance(J32, np.float64)  # the loss sum is accumulated in float64
    assert_allclose(J32, J64, rtol=1e-6)
    assert_allclose(gW32, gW64, rtol=1e-4, atol=1e-6)
    assert_allclose(gb32, gb64, rtol=1e-4, atol=1e-6)


def test_thread_count_follows_blas_limits_and_is_restored():
    with threadpool_limits(1, user_api="blas"):
        assert kernels.n_threads() == 1
    with threadpool_limits(2, user_api="blas"):
        before = kernels._current_blas_threads()
        assert kernels.n_threads() == min(2, before)
        seen = kernels.map_groups(
            lambda g: kernels._current_blas_threads(), [[0], [1], [2]], threads=2
        )
        assert seen == [1, 1, 1]  # one BLAS thread inside each worker
        assert kernels._current_blas_threads() == before


def test_blas_setting_is_restored_when_a_block_fails():
    with threadpool_limits(2, user_api="blas"):
        before = kernels._current_blas_threads()

        def fail(group):
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            kernels.map_groups(fail, [[0], [1]], threads=2)
        assert kernels._current_blas_threads() == before


def test_block_groups_cover_the_rows_once():
    for n, step in ((1, 5), (10, 3), (1000, 7), (64, 64)):
        groups = kernels.block_groups(n, step)
        flat = [r for g in groups for r in g]
        assert flat[0][0] == 0 and flat[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(flat[:-1], flat[1:], strict=True))
        assert 1 <= len(groups) <= kernels._GROUPS


@pytest.mark.parametrize("k", [1, 3, 40])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_proba_numpy_equals_softmax(rng, monkeypatch, k, dtype):
    monkeypatch.setattr(kernels, "L2_BLOCK_BYTES", 50 * 8 * 20)
    monkeypatch.setattr(kernels, "n_threads", lambda: 2)
    X = rng.standard_normal((999, 8)).astype(dtype)
    W = (2 * rng.standard_normal((k, 8))).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    P = kernels.predict_proba_numpy(X, W, b, temperature=1.7)
    logits = (X.astype(np.float64) @ W.T.astype(np.float64) + b) / 1.7
    if k == 1:
        logits = np.hstack([np.zeros((999, 1)), logits])
    assert P.dtype == dtype and P.shape == (999, max(k, 2))
    assert_allclose(
        P,
        sp_softmax(logits, axis=1),
        rtol=1e-4 if dtype == np.float32 else 1e-12,
        atol=1e-7 if dtype == np.float32 else 1e-15,
    )


@pytest.mark.parametrize("n_classes", [2, 4])
def test_predict_proba_of_the_estimator_uses_the_same_numbers(rng, n_classes):
    X = rng.standard_normal((300, 5))
    y = rng.integers(0, n_classes, 300)
    est = SoftmaxRegressionClassifier().fit(X, y)
    logits = est.decision_function(X)
    logits = np.column_stack([np.zeros(300), logits]) if n_classes == 2 else logits
    assert_allclose(est.predict_proba(X), sp_softmax(logits, axis=1), rtol=1e-12)


def test_joblib_workers_get_their_share_of_threads():
    """GridSearchCV(n_jobs=2) runs fits in loky workers whose BLAS joblib
    limits to cpu_count // n_jobs: the block threads follow that limit."""
    from joblib import Parallel, cpu_count, delayed

    counts = Parallel(n_jobs=2)(delayed(kernels.n_threads)() for _ in range(2))
    assert all(1 <= c <= max(1, cpu_count() // 2) for c in counts)


def test_a_small_single_block_runs_on_one_blas_thread():
    with threadpool_limits(2, user_api="blas"):
        before = kernels._current_blas_threads()
        held = kernels.map_groups(
            lambda g: kernels._current_blas_threads(), [[0]], small=True
        )
        free = kernels.map_groups(lambda g: kernels._current_blas_threads(), [[0]])
        assert held == [1] and free == [before]
        assert kernels._current_blas_threads() == before


def test_asking_for_numba_without_it_warns_and_takes_the_numpy_path(monkeypatch):
    """SKSOFTMAX_NUMBA=1 where the kernels cannot be imported: a warning that
    says how to install them, and the NumPy path (never a silent no-op)."""
    import sys

    import sksoftmax
    from sksoftmax import _cpu_kernels
    from sksoftmax._loss import LinearSoftmaxLoss

    # as if numba were absent, also after another test imported the kernels
    monkeypatch.setitem(sys.modules, "sksoftmax._numba_kernels", None)
    monkeypatch.delattr(sksoftmax, "_numba_kernels", raising=False)
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "1")
    _cpu_kernels._import_numba_kernels.cache_clear()
    try:
        X = np.random.default_rng(0).standard_normal((20, 3))
        loss = LinearSoftmaxLoss(3, 3)
        with pytest.warns(UserWarning, match=r"pip install 'sksoftmax\[fast\]'"):
            assert _cpu_kernels.numba_kernels_for(X, 3) is None
        J, g = loss.loss_gradient(np.zeros(loss.n_params), X, np.arange(20) % 3)
        assert J == pytest.approx(np.log(3))
    finally:
        _cpu_kernels._import_numba_kernels.cache_clear()
