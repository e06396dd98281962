"""The NumPy fast path of the loss: gradients against finite differences,
the same numbers as the generic Array API path, blocks of rows, buffer reuse,
dtypes and the memory bound."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.optimize import check_grad
from sklearn import config_context

import sksoftmax._loss as loss_module
from sksoftmax._loss import LinearSoftmaxLoss, softmax_cross_entropy

array_api_strict = pytest.importorskip("array_api_strict")

CASES = [
    pytest.param(
        K,
        fit_intercept,
        eps,
        soft,
        weighted,
        sparse,
        id=f"K{K}-{'b' if fit_intercept else 'nob'}-eps{eps}-"
        f"{'soft' if soft else 'hard'}-{'w' if weighted else 'now'}-"
        f"{'csr' if sparse else 'dense'}",
    )
    for K in (2, 4)
    for fit_intercept in (True, False)
    for eps in (0.0, 0.1)
    for soft in (False, True)
    for weighted in (False, True)
    for sparse in (False, True)
]


def _problem(rng, K, soft, weighted, sparse, n=61, d=5):
    X = rng.standard_normal((n, d))
    if sparse:
        X[rng.random((n, d)) < 0.5] = 0.0
    target = rng.dirichlet(np.ones(K), n) if soft else rng.integers(0, K, n)
    w = rng.random(n) if weighted else None
    return (sp.csr_matrix(X) if sparse else X), X, target, w


@pytest.mark.parametrize("K, fit_intercept, eps, soft, weighted, sparse", CASES)
def test_gradient_and_generic_path(rng, K, fit_intercept, eps, soft, weighted, sparse):
    Xin, X, target, w = _problem(rng, K, soft, weighted, sparse)
    loss = LinearSoftmaxLoss(
        K, X.shape[1], fit_intercept=fit_intercept, alpha=0.3, label_smoothing=eps
    )
    coef = rng.standard_normal(loss.n_params)

    def f(c):
        return loss.loss_gradient(c, Xin, target, w)[0]

    def g(c):
        return loss.loss_gradient(c, Xin, target, w)[1]

    assert check_grad(f, g, coef) < 1e-5 * np.linalg.norm(g(coef))
    # The generic path (array_api_strict) gives the same numbers.
    xps = array_api_strict
    W, b = loss.unpack(xps.asarray(coef))
    J0, gW0, gb0 = loss.loss_gradient_arrays(
        W,
        b,
        xps.asarray(X),
        xps.asarray(target),
        None if w is None else xps.asarray(w),
        xp=xps,
    )
    J1, gW1, gb1 = loss.loss_gradient_arrays(*loss.unpack(coef), Xin, target, w)
    assert_allclose(float(J1), float(J0), rtol=1e-12)
    assert_allclose(gW1, np.asarray(gW0), rtol=1e-10, atol=1e-13)
    if fit_intercept:
        assert_allclose(gb1, np.asarray(gb0), rtol=1e-10, atol=1e-13)
    else:
        assert gb1 is None
    # Buffers are reused: evaluating again gives identical results.
    J2, grad2 = loss.loss_gradient(coef, Xin, target, w)
    assert J2 == f(coef)
    assert np.array_equal(grad2, g(coef))


@pytest.mark.parametrize("K", [2, 5])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_blocks_of_rows_match_one_block(rng, monkeypatch, K, soft):
    X, _, target, w = _problem(rng, K, soft, True, False, n=1000, d=7)
    coef = rng.standard_normal(K * 8 if K > 2 else 8)
    whole = LinearSoftmaxLoss(K, 7, alpha=0.01, label_smoothing=0.05)
    J, grad = whole.loss_gradient(coef, X, target, w)
    assert whole._block_rows(X) >= 1000
    monkeypatch.setattr(loss_module, "_MIN_BLOCK_ROWS", 1)
    monkeypatch.setattr(loss_module, "_CACHE_BYTES", 7 * 8 * 64)  # ~64 rows
    blocked = LinearSoftmaxLoss(K, 7, alpha=0.01, label_smoothing=0.05)
    assert 1 < blocked._block_rows(X) < 100
    Jb, gradb = blocked.loss_gradient(coef, X, target, w)
    assert_allclose(Jb, J, rtol=1e-12)
    assert_allclose(gradb, grad, rtol=1e-10, atol=1e-14)
    with config_context(working_memory=3 * K * 8 * 17 / 2**20):  # 17 rows
        chunked = LinearSoftmaxLoss(K, 7, alpha=0.01, label_smoothing=0.05)
        assert chunked._block_rows(X) == 17
        Jc, gradc = chunked.loss_gradient(coef, X, target, w)
    assert_allclose(Jc, J, rtol=1e-12)
    assert_allclose(gradc, grad, rtol=1e-10, atol=1e-14)


def test_changing_targets_and_sizes_reuse_the_loss(rng):
    """A minibatch solver passes a new target (and a new size) each call."""
    loss = LinearSoftmaxLoss(3, 4)
    coef = rng.standard_normal(loss.n_params)
    for n in (50, 20, 50, 80):
        X = rng.standard_normal((n, 4))
        y = rng.integers(0, 3, n)
        fresh = LinearSoftmaxLoss(3, 4).loss_gradient(coef, X, y)
        J, grad = loss.loss_gradient(coef, X, y)
        assert J == fresh[0]
        assert np.array_equal(grad, fresh[1])


def test_float32_stays_float32(rng):
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = rng.integers(0, 4, 300)
    loss = LinearSoftmaxLoss(4, 6, alpha=0.1)
    W, b = loss.unpack(rng.standard_normal(loss.n_params))
    J, gW, gb = loss.loss_gradient_arrays(
        W.astype(np.float32), b.astype(np.float32), X, y
    )
    assert gW.dtype == np.float32 and gb.dtype == np.float32
    J64, gW64, _ = loss.loss_gradient_arrays(W, b, X.astype(np.float64), y)
    assert_allclose(J, J64, rtol=1e-6)
    assert_allclose(gW, gW64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extra_memory_is_bounded(rng, dtype):
    """No copy of X: the evaluation needs at most 3 n K itemsize beyond X."""
    n, d, K = 20_000, 50, 10
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, K, n)
    loss = LinearSoftmaxLoss(K, d, alpha=1e-3)
    coef = np.zeros(loss.n_params)
    tracemalloc.start()
    try:
        loss.loss_gradient(coef, X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 3 * n * K * np.dtype(dtype).itemsize + 8 * 20 * loss.n_params
    assert peak < X.nbytes


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_raw_softmax_cross_entropy_numpy_matches_generic(rng, soft, eps):
    raw = rng.standard_normal((40, 6)) * 5
    target = rng.dirichlet(np.ones(6), 40) if soft else rng.integers(0, 6, 40)
    w = rng.random(40)
    xps = array_api_strict
    J0, G0 = softmax_cross_entropy(
        xps.asarray(raw), xps.asarray(target), xps.asarray(w), label_smoothing=eps
    )
    logits = raw.copy()
    J1, G1 = softmax_cross_entropy(logits, target, w, label_smoothing=eps)
    assert G1 is logits  # in place on NumPy
    assert_allclose(float(J1), float(J0), rtol=1e-12)
    assert_allclose(G1, np.asarray(G0), rtol=1e-10, atol=1e-14)


def test_one_loss_in_many_threads_and_pickled(rng):
    """Dask's threaded scheduler evaluates chunks of one loss concurrently;
    the distributed one pickles it. Buffers are per thread, never pickled."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    loss = LinearSoftmaxLoss(6, 30, alpha=0.01)
    coef = rng.standard_normal(loss.n_params)
    chunks = [
        (rng.standard_normal((n, 30)), rng.integers(0, 6, n))
        for n in (3000, 2000, 3500, 1000) * 4
    ]
    expected = [
        LinearSoftmaxLoss(6, 30, alpha=0.01).loss_gradient(coef, X, y)
        for X, y in chunks
    ]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: loss.loss_gradient(coef, *c), chunks))
    # Equal to rounding, not bit for bit: OpenBLAS's kernels on some CPUs
    # (seen on an AMD EPYC) round differently with the alignment of the
    # per-thread buffers. A buffer shared between threads would be off by far
    # more than this.
    for (J, g), (Je, ge) in zip(got, expected, strict=True):
        assert J == pytest.approx(Je, rel=1e-13)
        assert_allclose(g, ge, rtol=1e-12, atol=1e-14)
    clone = pickle.loads(pickle.dumps(loss))
    J, g = clone.loss_gradient(coef, *chunks[0])
    assert J == pytest.approx(expected[0][0], rel=1e-13)
    assert_allclose(g, expected[0][1], rtol=1e-12, atol=1e-14)
