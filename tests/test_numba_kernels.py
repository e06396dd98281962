"""The optional numba kernel (``pip install sksoftmax[fast]``, turned on by
``SKSOFTMAX_NUMBA=1``): the fused loss+gradient and probabilities equal the
NumPy path (``SKSOFTMAX_NUMBA=0`` or unset) to rounding and finite
differences, are taken only where they apply, do not depend on the thread
count, the memory layout or where the rows are cut, and the exponential is
exp to within an ulp."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import approx_fprime

numba = pytest.importorskip("numba")

# Compiling the kernels takes about a minute in a fresh checkout: CI runs
# these in its first job only (the min job deselects "slow"), and all on one
# pytest-xdist worker (--dist loadgroup), which compiles each kernel once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("numba")]

import sksoftmax._cpu_kernels as cpu_kernels  # noqa: E402
import sksoftmax._loss as loss_module  # noqa: E402
import sksoftmax._numba_kernels as nk  # noqa: E402
from sksoftmax._loss import LinearSoftmaxLoss  # noqa: E402


@pytest.fixture(autouse=True)
def _numba_on(monkeypatch):
    """The kernels are opt-in: every test here turns them on."""
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "1")


CASES = {
    "hard": dict(K=5),
    "hard-weights": dict(K=5, weighted=True),
    "soft": dict(K=4, soft=True),
    "soft-weights-smoothing": dict(K=4, soft=True, weighted=True, eps=0.1),
    "smoothing": dict(K=6, eps=0.2),
    "binary": dict(K=2, weighted=True),
    "binary-no-intercept": dict(K=2, fit_intercept=False),
    "no-intercept": dict(K=7, fit_intercept=False, weighted=True),
    "twenty": dict(K=20, soft=True),
}


def _problem(rng, c, dtype, n=1003, d=13):
    """Rows not a multiple of the 4-row tile nor of the 256-row flush."""
    X = (rng.standard_normal((n, d)) * 2).astype(dtype)
    K = c["K"]
    if c.get("soft"):
        target = rng.dirichlet(np.ones(K), n).astype(dtype)
    else:
        target = rng.integers(0, K, n)
    w = rng.random(n).astype(dtype) if c.get("weighted") else None
    loss = LinearSoftmaxLoss(
        K,
        d,
        fit_intercept=c.get("fit_intercept", True),
        alpha=0.03,
        label_smoothing=c.get("eps", 0.0),
    )
    coef = 0.5 * rng.standard_normal(loss.n_params)
    return loss, coef, X, target, w


def _few_classes(rng, K, n):
    """A 12-feature loss with K classes, its coefficients and n labels."""
    loss = LinearSoftmaxLoss(K, 12, alpha=0.01)
    return loss, rng.standard_normal(loss.n_params), rng.integers(0, K, n)


def _numpy_path(monkeypatch, loss, *args):
    with monkeypatch.context() as m:
        m.setenv("SKSOFTMAX_NUMBA", "0")
        return loss.loss_gradient(*args)


def _spy(monkeypatch):
    """Count the kernel's calls."""
    calls = []
    kernel = nk.loss_grad_rows

    def counted(*a):
        calls.append(a[-1] - a[-2])
        return kernel(*a)

    monkeypatch.setattr(nk, "loss_grad_rows", counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_kernel_equals_numpy_path(rng, monkeypatch, case, dtype):
    loss, coef, X, target, w = _problem(rng, CASES[case], dtype)
    calls = _spy(monkeypatch)
    J, g = loss.loss_gradient(coef, X, target, w)
    assert sum(calls) == X.shape[0]  # every row once, by the kernel
    J_ref, g_ref = _numpy_path(monkeypatch, loss, coef, X, target, w)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    assert_allclose(J, J_ref, rtol=rtol)
    assert_allclose(g, g_ref, rtol=rtol, atol=rtol * np.abs(g_ref).max())
    assert g.dtype == np.float64 and np.isfinite(J)


@pytest.mark.parametrize("case", ["hard-weights", "soft-weights-smoothing", "binary"])
def test_kernel_gradient_matches_finite_differences(rng, case):
    loss, coef, X, target, w = _problem(rng, CASES[case], np.float64, n=301, d=5)
    _, g = loss.loss_gradient(coef, X, target, w)
    fd = approx_fprime(coef, lambda c: loss.loss_gradient(c, X, target, w)[0], 1e-7)
    assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_result_does_not_depend_on_thread_count(rng, monkeypatch):
    """Many groups of rows; their sums are added in group order."""
    loss, coef, X, target, w = _problem(rng, CASES["hard-weights"], np.float32)
    monkeypatch.setattr(loss_module, "NUMBA_BLOCK_ROWS", 64)
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(cpu_kernels, "n_threads", lambda t=threads: t)
        results.append(loss.loss_gradient(coef, X, target, w))
    for J, g in results[1:]:
        assert J == results[0][0]
        np.testing.assert_array_equal(g, results[0][1])


@pytest.mark.parametrize("k", [1, 4])
def test_fortran_order_equals_the_c_ordered_result(rng, monkeypatch, k):
    """A DataFrame's Fortran-ordered values: the kernel reads them as their
    C-ordered transpose and gathers each tile of rows, so the results equal a
    C-ordered copy's bit for bit (loss, gradient, probabilities)."""
    Xc = rng.standard_normal((203, 12))
    X = np.asfortranarray(Xc)
    assert not X.flags.c_contiguous
    loss, coef, target = _few_classes(rng, max(k, 2), 203)
    calls = _spy(monkeypatch)
    J, g = loss.loss_gradient(coef, X, target)
    assert sum(calls) == 203
    J_c, g_c = loss.loss_gradient(coef, Xc, target)
    assert J == J_c
    np.testing.assert_array_equal(g, g_c)
    W, b = rng.standard_normal((k, 12)), rng.standard_normal(k)
    np.testing.assert_array_equal(
        cpu_kernels.predict_proba_numpy(X, W, b),
        cpu_kernels.predict_proba_numpy(Xc, W, b),
    )


def test_a_strided_view_takes_the_numpy_path(rng, monkeypatch):
    """Neither C- nor Fortran-ordered: no kernel call (each such layout would
    compile the kernel again), the NumPy path's result."""
    Xc = rng.standard_normal((203, 12))
    X = np.repeat(Xc, 2, axis=1)[:, ::2]
    assert not (X.flags.c_contiguous or X.flags.f_contiguous)
    loss, coef, target = _few_classes(rng, 3, 203)
    calls = _spy(monkeypatch)
    J, g = loss.loss_gradient(coef, X, target)
    assert calls == []
    J_ref, g_ref = _numpy_path(monkeypatch, loss, coef, Xc, target)
    assert_allclose(J, J_ref, rtol=1e-12)
    assert_allclose(g, g_ref, rtol=1e-12, atol=1e-14)


def test_float16_takes_the_numpy_path(rng, monkeypatch):
    X = rng.standard_normal((200, 12)).astype(np.float16)
    loss, coef, target = _few_classes(rng, 3, 200)
    calls = _spy(monkeypatch)
    J, g = loss.loss_gradient(coef, X, target)
    assert calls == []
    J_ref, g_ref = _numpy_path(monkeypatch, loss, coef, X, target, None)
    assert J == J_ref
    np.testing.assert_array_equal(g, g_ref)


def test_many_classes_take_the_numpy_path(rng, monkeypatch):
    loss = LinearSoftmaxLoss(300, 128)  # W of 300 x 128: above the cache bound
    X = rng.standard_normal((50, 128))
    calls = _spy(monkeypatch)
    loss.loss_gradient(np.zeros(loss.n_params), X, rng.integers(0, 300, 50))
    assert calls == []


def test_env_var_turns_the_kernel_on_and_off(rng, monkeypatch):
    """Opt-in: unset or 0 is the NumPy path, 1 the kernel."""
    loss, coef, X, target, w = _problem(rng, CASES["hard"], np.float64)
    calls = _spy(monkeypatch)
    monkeypatch.delenv("SKSOFTMAX_NUMBA")
    loss.loss_gradient(coef, X, target, w)
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "0")
    loss.loss_gradient(coef, X, target, w)
    assert calls == []
    monkeypatch.setenv("SKSOFTMAX_NUMBA", "1")
    loss.loss_gradient(coef, X, target, w)
    assert sum(calls) == X.shape[0]


def test_out_of_range_codes_are_refused(rng):
    loss = LinearSoftmaxLoss(3, 4)
    X = rng.standard_normal((10, 4))
    with pytest.raises(ValueError, match=r"Class codes must lie in \[0, 3\)"):
        loss.loss_gradient(np.zeros(loss.n_params), X, np.full(10, 3))


def test_nan_in_X_gives_nan_loss(rng, monkeypatch):
    loss, coef, X, target, w = _problem(rng, CASES["hard"], np.float64)
    X[7, 3] = np.nan
    J, _ = loss.loss_gradient(coef, X, target, w)
    J_ref, _ = _numpy_path(monkeypatch, loss, coef, X, target, w)
    assert np.isnan(J) and np.isnan(J_ref)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorized_exp_within_an_ulp(dtype):
    lo = -708.0 if dtype == np.float64 else -87.3
    x = np.concatenate([-np.geomspace(1e-12, -lo, 20001), np.linspace(lo, 0, 20001)])
    x = x.astype(dtype)
    a, scratch = x.copy(), np.empty_like(x)
    (nk._vexp64 if dtype == np.float64 else nk._vexp32)(a, scratch)
    ref = np.exp(x.astype(np.float64))
    rel = np.abs(a - ref) / ref
    assert rel.max() < 1.5 * np.finfo(dtype).eps
    edge = np.array([0.0, np.nan, -np.inf, 2 * lo], dtype=dtype)
    (nk._vexp64 if dtype == np.float64 else nk._vexp32)(edge, np.empty_like(edge))
    assert edge[0] == 1.0 and np.isnan(edge[1])
    floor = np.exp(np.float64(lo)) * 1.01  # below lo: exp(lo) instead of ~0
    assert 0 < edge[2] <= floor and 0 < edge[3] <= floor


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 6], ids=["binary", "six"])
@pytest.mark.parametrize("intercept", [True, False])
def test_proba_kernel_equals_numpy_path(rng, monkeypatch, dtype, k, intercept):
    X = (3 * rng.standard_normal((1003, 11))).astype(dtype)
    W = rng.standard_normal((k, 11))
    b = rng.standard_normal(k) if intercept else None
    calls = []
    kernel = nk.proba_rows

    def counted(*a):
        calls.append(a[-1] - a[-2])
        return kernel(*a)

    monkeypatch.setattr(nk, "proba_rows", counted)
    P = cpu_kernels.predict_proba_numpy(X, W, b, temperature=1.7)
    assert sum(calls) == X.shape[0] and P.dtype == dtype
    with monkeypatch.context() as m:
        m.setenv("SKSOFTMAX_NUMBA", "0")
        P_ref = cpu_kernels.predict_proba_numpy(X, W, b, temperature=1.7)
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    assert_allclose(P, P_ref, rtol=rtol, atol=rtol)
    assert_allclose(P.sum(axis=1), 1.0, rtol=rtol)


def test_proba_kernel_reports_nonfinite_logits(rng):
    X = rng.standard_normal((100, 5))
    X[37, 2] = np.inf
    seen = []
    P = cpu_kernels.predict_proba_numpy(
        X, rng.standard_normal((3, 5)), None, on_nonfinite=lambda: seen.append(1)
    )
    assert seen == [1] and np.isfinite(np.delete(P, 37, axis=0)).all()


@pytest.mark.parametrize("k", [1, 5])
def test_proba_of_a_row_does_not_depend_on_where_rows_are_cut(rng, k):
    """Dask chunks, row groups: each row's logits go through the same code
    whatever its place in a tile (the last rows are padded, not done apart)."""
    X = rng.standard_normal((203, 17))
    W, b = rng.standard_normal((k, 17)), rng.standard_normal(k)
    whole = cpu_kernels.predict_proba_numpy(X, W, b)
    for cut in (1, 3, 50, 101, 197):
        parts = [
            cpu_kernels.predict_proba_numpy(X[:cut], W, b),
            cpu_kernels.predict_proba_numpy(X[cut:], W, b),
        ]
        np.testing.assert_array_equal(np.vstack(parts), whole)
