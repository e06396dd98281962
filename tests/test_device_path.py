"""The device path checked on the CPU: array_api_strict on its non-default
device stands in for a GPU. Host transfers are counted at the points where an
array leaves the device (``__float__``, ``__bool__``, DLPack, ...), per L-BFGS
evaluation, per Dask chunk and per minibatch; the working-memory accounting is
measured with tracemalloc; no axis-0 reduction over many rows is left. The
fused kernels' CUDA sources compile with nvcc and, through a small host shim
(a thread per lane, a barrier per warp shuffle), the softmax kernel runs on
the CPU against the generic path (the update kernels: test_fused_updates.py)."""

import shutil
import subprocess
import sys
import tracemalloc
import types

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import config_context

import sksoftmax._backend as backend
from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._calibration import fit_temperature
from sksoftmax._data.dask import chunk_partial_sums
from sksoftmax._loss import (
    GENERIC_NK_TEMPORARIES,
    LinearSoftmaxLoss,
    softmax_cross_entropy,
)
from sksoftmax._solvers.minibatch import validation_score

xps = pytest.importorskip("array_api_strict")

# Every way an array_api_strict array can leave its device for the host.
LEAVING = (
    "__float__",
    "__int__",
    "__bool__",
    "__index__",
    "__complex__",
    "__dlpack__",
    "__array__",
)


@pytest.fixture
def transfers(monkeypatch):
    """A list that gets one entry per device-to-host transfer."""
    seen = []
    Array = type(xps.asarray(0.0))
    for name in LEAVING:
        original = getattr(Array, name)

        def counted(self, *args, __original=original, __name=name, **kwargs):
            seen.append(__name)
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(Array, name, counted)
    return seen


def on_device1(a):
    return xps.asarray(a, device=xps.Device("device1"))


def problem(n=300, d=7, K=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, K, n)
    w = rng.uniform(0.5, 2.0, n).astype(dtype)
    return X, y, w


@pytest.mark.parametrize("K", [2, 4], ids=["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("working_memory", [1024, 0.005], ids=["one-chunk", "chunks"])
def test_one_transfer_per_evaluation(transfers, K, weighted, working_memory):
    X, y, w = problem(K=K)
    loss = LinearSoftmaxLoss(K, X.shape[1], alpha=0.01, label_smoothing=0.1)
    coef = np.random.default_rng(1).standard_normal(loss.n_params) * 0.1
    sw = w if weighted else None
    with config_context(working_memory=working_memory):
        assert loss._chunk_rows(X) < X.shape[0] or working_memory > 1
        J_ref, g_ref = loss.loss_gradient(coef, X, y, sw)
        Xd, yd = on_device1(X), on_device1(y)
        swd = None if sw is None else on_device1(sw)
        del transfers[:]
        J, g = loss.loss_gradient(coef, Xd, yd, swd)
    assert len(transfers) == 1, transfers
    assert isinstance(J, float) and g.dtype == np.float64
    assert_allclose(J, J_ref, rtol=1e-12)
    assert_allclose(g, g_ref, rtol=1e-10, atol=1e-14)


def test_one_transfer_per_dask_chunk(transfers):
    X, y, w = problem(K=5)
    loss = LinearSoftmaxLoss(5, X.shape[1], alpha=0.0)
    coef = np.random.default_rng(2).standard_normal(loss.n_params) * 0.1
    ref = chunk_partial_sums(coef, (X, y, w), loss)
    del transfers[:]
    got = chunk_partial_sums(coef, (on_device1(X), on_device1(y), on_device1(w)), loss)
    assert len(transfers) == 1, transfers
    assert got.dtype == np.float64 and got.shape == ref.shape
    assert_allclose(got, ref, rtol=1e-12)
    # The last entry is the chunk's weight, the first the weighted CE sum.
    assert got[-1] == pytest.approx(w.sum())


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_no_transfer_per_minibatch(transfers, solver):
    """Transfers in a fit do not grow with the number of minibatches."""
    X, y, _ = problem(n=256)
    Xd, yd = on_device1(X), on_device1(y)
    counts = {}
    for batch_size in (256, 16):  # 1 and 16 minibatches per epoch
        est = SoftmaxRegressionClassifier(
            solver=solver,
            batch_size=batch_size,
            max_iter=3,
            tol=0,
            n_iter_no_change=100,
            learning_rate_init=0.01,
            random_state=0,
        )
        del transfers[:]
        with pytest.warns(Warning):  # max_iter reached
            est.fit(Xd, yd)
        counts[batch_size] = len(transfers)
        assert est.n_iter_ == 3
    assert counts[16] == counts[256], counts


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_preconditioner_is_copied_to_the_device_once(monkeypatch, solver):
    """The scales and means of the change of variables reach the device once
    per fit, not once per minibatch (host-to-device copies)."""
    import sksoftmax._precondition as precondition

    copies = []
    original = precondition.asarray_like

    def counted(a, like, **kwargs):
        copies.append(np.shape(a))
        return original(a, like, **kwargs)

    monkeypatch.setattr(precondition, "asarray_like", counted)
    X, y, _ = problem(n=256)
    Xd, yd = on_device1(X), on_device1(y)
    counts = {}
    for batch_size in (256, 16):  # 1 and 16 minibatches per epoch
        del copies[:]
        with pytest.warns(Warning):  # max_iter reached
            SoftmaxRegressionClassifier(
                solver=solver, batch_size=batch_size, max_iter=3, random_state=0
            ).fit(Xd, yd)
        counts[batch_size] = len(copies)
    assert 0 < counts[16] == counts[256], counts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_accumulated_in_float64(dtype):
    """float32 data: the loss is summed in float64 as on the CPU, the
    gradients stay float32."""
    X, y, w = problem(n=2000, K=6, dtype=dtype)
    loss = LinearSoftmaxLoss(6, X.shape[1], alpha=0.01)
    W = np.random.default_rng(3).standard_normal((6, X.shape[1])).astype(dtype)
    b = np.zeros(6, dtype=dtype)
    J_np, gW_np, _ = loss.loss_gradient_arrays(W, b, X, y, w)
    J, gW, gb = loss.loss_gradient_arrays(
        on_device1(W), on_device1(b), on_device1(X), on_device1(y), on_device1(w)
    )
    assert J.dtype == xps.float64 and J.device == xps.Device("device1")
    assert gW.dtype == gb.dtype == xps.asarray(X).dtype
    assert float(J) == pytest.approx(
        float(J_np), rel=1e-6 if dtype == np.float32 else 1e-12
    )
    # The float64 reference of the same float32 numbers.
    J64, _, _ = loss.loss_gradient_arrays(
        W.astype(np.float64), b.astype(np.float64), X.astype(np.float64), y, w
    )
    assert float(J) == pytest.approx(float(J64), rel=1e-6)


def test_device_without_float64_accumulates_in_its_default():
    X, y, _ = problem(n=50, dtype=np.float32)
    dev = xps.Device("no_float64")
    loss = LinearSoftmaxLoss(4, X.shape[1])
    W = xps.zeros((4, X.shape[1]), dtype=xps.float32, device=dev)
    J, gW, _ = loss.loss_gradient_arrays(
        W,
        xps.zeros(4, dtype=xps.float32, device=dev),
        xps.asarray(X, device=dev),
        xps.asarray(y, device=dev),
    )
    assert J.dtype == xps.float32
    assert float(J) == pytest.approx(np.log(4), rel=1e-6)


# -- the working-memory budget -------------------------------------------------


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("K", [2, 40], ids=["binary", "40-classes"])
@pytest.mark.parametrize("soft", [False, True], ids=["codes", "soft"])
def test_chunks_hold_what_the_budget_counts(K, soft):
    """The array-API path's peak memory above its inputs stays within the
    working-memory budget it sizes its chunks by, and without chunks it would
    not: the accounting counts what the path really holds."""
    n, d = 6000, 3
    X, y, w = problem(n=n, d=d, K=K)
    target = np.eye(K)[y] * 0.8 + 0.2 / K if soft else y
    loss = LinearSoftmaxLoss(K, d, alpha=0.1, label_smoothing=0.05)
    args = [
        on_device1(a)
        for a in (np.ones((loss.n_logits, d)) * 0.1, np.zeros(loss.n_logits))
    ]
    data = [on_device1(X), on_device1(target), on_device1(w)]

    def evaluate():
        loss.loss_gradient_arrays(*args, *data)

    budget_mib = 0.25
    with config_context(working_memory=budget_mib):
        rows = loss._chunk_rows(X)
        peak = _peak_bytes(evaluate)
    assert rows < n / 2
    assert peak <= budget_mib * 2**20 * 1.05, (peak, rows)
    # Honest, not inflated: the peak uses a good part of the budget ...
    assert peak >= 0.4 * budget_mib * 2**20, (peak, rows)
    # ... and one chunk of all rows would exceed it.
    with config_context(working_memory=1024):
        assert _peak_bytes(evaluate) > budget_mib * 2**20
    assert GENERIC_NK_TEMPORARIES >= 3


# -- no axis-0 reduction over many rows ------------------------------------------


@pytest.fixture
def axis0_reductions(monkeypatch):
    """Records every sum/mean/max/min over axis 0 of a 2-D array."""
    seen = []
    for name in ("sum", "mean", "max", "min", "prod"):
        original = getattr(xps, name)

        def recorded(x, /, *args, __original=original, __name=name, **kwargs):
            axis = kwargs.get("axis", args[0] if args else None)
            if x.ndim == 2 and axis in (0, -2, (0,), (-2,)):
                seen.append((__name, x.shape))
            return __original(x, *args, **kwargs)

        monkeypatch.setattr(xps, name, recorded)
    return seen


@pytest.mark.parametrize("soft", [False, True], ids=["codes", "soft"])
def test_generic_paths_reduce_columns_as_products(axis0_reductions, soft):
    X, y, w = problem(n=500, K=5)
    target = np.eye(5)[y] if soft else y
    loss = LinearSoftmaxLoss(5, X.shape[1], label_smoothing=0.1)
    Xd, td, wd = on_device1(X), on_device1(target), on_device1(w)
    W = on_device1(np.full((5, X.shape[1]), 0.1))
    b = on_device1(np.zeros(5))
    loss.loss_gradient_arrays(W, b, Xd, td, wd)
    softmax_cross_entropy(loss.logits(Xd, W, b), td, wd)
    validation_score(loss, [np.full((5, X.shape[1]), 0.1), np.zeros(5)], Xd, td)
    fit_temperature(loss.logits(Xd, W, b), td, wd)
    assert axis0_reductions == []


def test_column_sums_is_the_product_form(axis0_reductions):
    G = np.random.default_rng(0).standard_normal((1000, 3))
    got = backend.column_sums(on_device1(G), xps)
    assert axis0_reductions == []
    assert got.device == xps.Device("device1")
    assert_allclose(np.from_dlpack(got), G.sum(axis=0))


# -- placement ---------------------------------------------------------------------


def test_on_device_is_a_null_context_off_cupy():
    for a in (None, np.ones(3), on_device1(np.ones(3))):
        with backend.on_device(a) as entered:
            assert entered is None


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in ``cupy`` module: a current device and seeded generators."""
    made = []

    class RandomState:
        def __init__(self, seed):
            self.seed = seed
            made.append(self)

        def permutation(self, n):
            return np.random.RandomState(self.seed).permutation(n)

    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0))
    module.random = types.SimpleNamespace(RandomState=RandomState)
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setattr(
        backend, "_DEVICE_GENERATORS", type(backend._DEVICE_GENERATORS)()
    )
    return made


def test_one_device_generator_per_host_generator(fake_cupy):
    rng = np.random.RandomState(0)
    gens = [backend.device_generator(rng, None) for _ in range(5)]  # 5 epochs
    assert len(fake_cupy) == 1 and all(g is gens[0] for g in gens)
    # The same seed from the same host state: reproducible fits.
    again = backend.device_generator(np.random.RandomState(0), None)
    assert len(fake_cupy) == 2 and again.seed == gens[0].seed
    # A bounded cache: old fits' generators are dropped.
    for seed in range(20):
        backend.device_generator(np.random.RandomState(seed), None)
    assert len(backend._DEVICE_GENERATORS) <= backend._MAX_DEVICE_GENERATORS


# -- the CUDA sources compile -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc (no GPU needed)")
def test_cuda_sources_compile(tmp_path):
    from sksoftmax._cupy_kernels import kernel_sources

    sources = kernel_sources()
    # The fused softmax step and the fused SGD/Adam updates, in both dtypes.
    units = {
        "softmax32": sources["softmax_ce_grad_float32"],
        "softmax64": sources["softmax_ce_grad_float64"],
        "updates32": sources["updates_float32"],
        "updates64": sources["updates_float64"],
    }
    paths = []
    for name, code in units.items():
        paths.append(tmp_path / f"{name}.cu")
        paths[-1].write_text(code)
    proc = subprocess.run(
        ["nvcc", "-c", "-arch=sm_90", "-odir", str(tmp_path), *map(str, paths)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert all((tmp_path / f"{name}.o").exists() for name in units)


def test_lanes_per_row():
    from sksoftmax._cupy_kernels import lanes_per_row

    assert [lanes_per_row(K) for K in (2, 4, 5, 10, 64, 1000)] == [1, 1, 2, 4, 16, 32]


def test_compute_target_context_is_null_off_cupy():
    for X in (np.ones((3, 2)), on_device1(np.ones((3, 2)))):
        with backend.ComputeTarget(None, X).context() as entered:
            assert entered is None


# -- the fused softmax kernel's CUDA source, run on the CPU ----------------------

# Each lane of a row is a host thread; a warp shuffle is a write to a shared
# slot, a barrier, a read of the partner's slot and a barrier. Enough to run
# the kernel's own source (lane partition, reductions, arithmetic) exactly.
_HOST_SHIM = r"""
#include <math.h>
#include <string.h>
#include <barrier>
#include <thread>
#include <vector>
struct Dim { long long x; };
static thread_local Dim threadIdx;
static const Dim blockIdx{0}, blockDim{1};
static std::barrier<>* lanes_barrier;
static double lane_slots[32];
template <class V> V __shfl_xor_sync(unsigned, V v, int off, int width) {
    int lane = (int)(threadIdx.x % width);
    lane_slots[lane] = (double)v;
    lanes_barrier->arrive_and_wait();
    V other = (V)lane_slots[lane ^ off];
    lanes_barrier->arrive_and_wait();
    return other;
}
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
#define __global__
#define __restrict__
"""

_HOST_DRIVER = r"""
extern "C" void run_rows(T* Z, const long long* y, const T* w, double* ce,
                         long long n, int K, int has_w, double eps, int L) {
    std::barrier<> bar(L);
    lanes_barrier = &bar;
    for (long long row = 0; row < n; ++row) {
        std::vector<std::thread> lanes;
        for (int lane = 0; lane < L; ++lane)
            lanes.emplace_back([=] {
                threadIdx.x = row * L + lane;
                softmax_ce_grad(Z, y, w, ce, n, K, has_w, eps, L);
            });
        for (auto& t : lanes) t.join();
    }
}
"""


@pytest.fixture(scope="module")
def host_kernel(tmp_path_factory):
    """The CUDA source of the fused kernel compiled for the host, per dtype."""
    import ctypes

    from sksoftmax._cupy_kernels import kernel_sources

    if shutil.which("g++") is None:
        pytest.skip("needs g++ (C++20) to run the kernel source on the CPU")
    out = {}
    tmp = tmp_path_factory.mktemp("host_kernel")
    for name in ("float32", "float64"):
        src = tmp / f"k_{name}.cpp"
        code = kernel_sources()[f"softmax_ce_grad_{name}"]
        src.write_text(_HOST_SHIM + code + _HOST_DRIVER)
        lib = tmp / f"k_{name}.so"
        proc = subprocess.run(
            [
                "g++",
                "-std=c++20",
                "-O1",
                "-shared",
                "-fPIC",
                "-pthread",
                str(src),
                "-o",
                str(lib),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 and "barrier" in proc.stderr:
            pytest.skip(f"the host compiler lacks C++20 <barrier>: {proc.stderr}")
        assert proc.returncode == 0, proc.stderr
        out[name] = ctypes.CDLL(str(lib))
    return out


def _run_host_kernel(lib, Z, y, w, eps, L):
    import ctypes

    n, K = Z.shape
    Z = np.ascontiguousarray(Z)
    y = np.ascontiguousarray(y, dtype=np.int64)
    ce = np.full(n, np.nan)
    wp = Z if w is None else np.ascontiguousarray(w, dtype=Z.dtype)
    ptr = ctypes.c_void_p
    lib.run_rows(
        ptr(Z.ctypes.data),
        ptr(y.ctypes.data),
        ptr(wp.ctypes.data),
        ptr(ce.ctypes.data),
        ctypes.c_longlong(n),
        ctypes.c_int(K),
        ctypes.c_int(w is not None),
        ctypes.c_double(eps),
        ctypes.c_int(L),
    )
    return ce, Z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "K,L", [(2, None), (3, None), (10, None), (10, 1), (33, None), (100, 32), (7, 8)]
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("eps", [0.0, 0.1], ids=["hard", "smoothed"])
def test_fused_kernel_source_matches_the_generic_path(
    host_kernel, dtype, K, L, weighted, eps
):
    from array_api_compat import numpy as xnp

    from sksoftmax._cupy_kernels import lanes_per_row
    from sksoftmax._loss import _softmax_ce_generic

    rng = np.random.default_rng(K)
    n = 37
    Z = (rng.standard_normal((n, K)) * 4).astype(dtype)
    y = rng.integers(0, K, n)
    w = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    L = lanes_per_row(K) if L is None else L
    ce, G = _run_host_kernel(host_kernel[np.dtype(dtype).name], Z.copy(), y, w, eps, L)
    ref_loss, ref_G = _softmax_ce_generic(
        Z.astype(np.float64), y, None if w is None else w.astype(np.float64), eps, xnp
    )
    tol = 2e-6 if dtype == np.float32 else 1e-12
    assert not np.isnan(ce).any()
    assert_allclose(G, ref_G, rtol=0, atol=tol * 4)
    assert ce.sum() == pytest.approx(float(ref_loss), rel=tol)


@pytest.fixture
def cupy_on_host(monkeypatch, host_kernel):
    """A stand-in ``cupy`` module over NumPy whose RawKernel runs the kernel
    source compiled for the host: the Python side of the CuPy path (launch
    arguments and their C types, grid, buffers) runs as it would on a GPU."""
    import ctypes

    import sksoftmax._cupy_kernels as kernels

    launches = []

    class RawKernel:
        def __init__(self, code, name):
            assert name == "softmax_ce_grad"
            self.lib = host_kernel[
                "float32" if "typedef float T" in code else "float64"
            ]

        def __call__(self, grid, block, args):
            ctype = {
                np.dtype(np.int64): ctypes.c_longlong,
                np.dtype(np.int32): ctypes.c_int,
                np.dtype(np.float64): ctypes.c_double,
            }
            cargs = [
                ctypes.c_void_p(a.ctypes.data)
                if isinstance(a, np.ndarray)
                else ctype[a.dtype](a)
                for a in args
            ]
            n, L = int(args[4]), int(args[8])
            assert grid[0] * block[0] >= n * L
            launches.append((grid, block))
            self.lib.run_rows(*cargs)

    module = types.ModuleType("cupy")
    for name in ("ascontiguousarray", "empty", "ones", "sum", "matmul", "int64"):
        setattr(module, name, getattr(np, name))
    module.float64 = np.float64
    module.RawKernel = RawKernel
    module.ndarray = type("ndarray", (), {})  # no real array is one of these
    module.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0))
    monkeypatch.setitem(sys.modules, "cupy", module)
    kernels._softmax_kernel.cache_clear()
    monkeypatch.setattr(kernels, "_buffers", type(kernels._buffers)())
    yield launches
    kernels._softmax_kernel.cache_clear()


@pytest.mark.parametrize("K", [2, 3, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_branch_of_the_loss_on_a_host_stand_in(cupy_on_host, K, dtype):
    X, y, w = problem(n=90, d=5, K=K, dtype=dtype)
    loss = LinearSoftmaxLoss(K, 5, label_smoothing=0.05)
    rng = np.random.default_rng(4)
    W = rng.standard_normal((loss.n_logits, 5)).astype(dtype)
    b = rng.standard_normal(loss.n_logits).astype(dtype)
    cupy_ns = sys.modules["cupy"]  # the stand-in, named cupy
    for batch in (X[:64], X[64:]):  # two minibatches share one buffer
        m = batch.shape[0]
        rows = slice(0, m) if m == 64 else slice(64, 90)
        lc, gW, gb = loss._chunk_sums(W, b, batch, y[rows], w[rows], cupy_ns)
        ref = loss._chunk_sums(
            on_device1(W),
            on_device1(b),
            on_device1(batch),
            on_device1(y[rows]),
            on_device1(w[rows]),
            xps,
        )
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert float(lc) == pytest.approx(float(ref[0]), rel=tol)
        assert_allclose(gW, np.from_dlpack(ref[1]), rtol=tol, atol=tol)
        assert_allclose(gb, np.from_dlpack(ref[2]), rtol=tol, atol=tol)
    assert len(cupy_on_host) == 2
