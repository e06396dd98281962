"""The fused CuPy update kernels run on the CPU against the NumPy update of
``sksoftmax._solvers.optimizers`` (the reference).

The kernels' own CUDA source is compiled for the host with a small shim (a
loop over the launch's threads; arguments passed as CuDA's ``kernelParams``,
one pointer per argument) and called through a stand-in ``cupy`` module, so
that the optimizer's CuPy branch, the wrapper's argument list (pointers,
C types of the scalars, grid) and the kernel body all run as on a GPU. Every
launch writes into padded copies of the arrays, and the padding is checked:
no thread writes past its array. The parameters and state are NumPy arrays
of a subclass that records every NumPy operation on them: a fused step makes
one launch and no other array operation."""

import ctypes
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import sksoftmax._cupy_kernels as kernels
from sksoftmax._solvers.optimizers import make_optimizer

_SHIM = r"""
#include <math.h>
#include <cstddef>
#include <type_traits>
#include <utility>
struct Dim { long long x; };
static Dim threadIdx{0};
static const Dim blockIdx{0}, blockDim{1};
#define __global__
#define __device__
#define __forceinline__ inline
"""

# cuLaunchKernel's convention: params[i] points at the i-th argument, whose
# type the kernel's signature gives.
_DRIVER = r"""
template <class... A, std::size_t... I>
static void call(void (*k)(A...), void** p, std::index_sequence<I...>) {
    k(*static_cast<std::remove_cv_t<A>*>(p[I])...);
}
template <class... A>
static void launch(void (*k)(A...), long long threads, void** p) {
    for (long long t = 0; t < threads; ++t) {
        threadIdx.x = t;
        call(k, p, std::index_sequence_for<A...>{});
    }
}
extern "C" void run_sgd_update(long long threads, void** p) {
    launch(sgd_update, threads, p);
}
extern "C" void run_adam_update(long long threads, void** p) {
    launch(adam_update, threads, p);
}
"""

_PAD = 600  # more than a block of threads past the end of any array
_SENTINEL = 1234.5


@pytest.fixture(scope="module")
def host_updates(tmp_path_factory):
    """The update kernels' typed CUDA sources compiled for the host:
    ``{source text: ctypes library}``."""
    if shutil.which("g++") is None:
        pytest.skip("needs g++ (C++17) to run the kernel source on the CPU")
    tmp = tmp_path_factory.mktemp("host_updates")
    libs = {}
    for name in ("float32", "float64"):
        code = kernels.kernel_sources()[f"updates_{name}"]
        src, lib = tmp / f"updates_{name}.cpp", tmp / f"updates_{name}.so"
        src.write_text(_SHIM + code + _DRIVER)
        proc = subprocess.run(
            ["g++", "-std=c++17", "-O1", "-shared", "-fPIC", str(src), "-o", str(lib)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        libs[code] = ctypes.CDLL(str(lib))
    return libs


class DeviceArray(np.ndarray):
    """A NumPy array standing for a CuPy one: every ufunc or NumPy function
    applied to it is recorded in ``ops``."""

    ops = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        DeviceArray.ops.append(ufunc.__name__)
        inputs = [np.asarray(a) if isinstance(a, DeviceArray) else a for a in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(a) for a in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        DeviceArray.ops.append(func.__name__)
        return super().__array_function__(func, types_, args, kwargs)


def on_device(a):
    return np.array(a).view(DeviceArray)


_CTYPES = {
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
    np.dtype(np.int64): ctypes.c_longlong,
    np.dtype(np.int32): ctypes.c_int,
}


@pytest.fixture
def cupy_updates(monkeypatch, host_updates):
    """A stand-in ``cupy`` whose RawKernel runs the host-compiled source; it
    records each launch as ``(kernel name, threads, n_entries)``."""
    record = types.SimpleNamespace(launches=[])

    class RawKernel:
        def __init__(self, code, name):
            self.run = getattr(host_updates[code], f"run_{name}")
            self.name = name

        def __call__(self, grid, block, args):
            threads = grid[0] * block[0]
            padded, keep = {}, []
            params = (ctypes.c_void_p * len(args))()
            for i, a in enumerate(args):
                if isinstance(a, np.ndarray):
                    assert a.flags.c_contiguous
                    if id(a) not in padded:
                        flat = a.view(np.ndarray).reshape(-1)
                        buf = np.full(flat.size + _PAD, _SENTINEL, dtype=a.dtype)
                        buf[: flat.size] = flat
                        padded[id(a)] = (flat, buf)
                    value = ctypes.c_void_p(padded[id(a)][1].ctypes.data)
                else:  # a Python number would reach CUDA as a double or long
                    value = _CTYPES[np.asarray(a).dtype](a)
                keep.append(value)
                params[i] = ctypes.cast(ctypes.pointer(value), ctypes.c_void_p)
            self.run(ctypes.c_longlong(threads), params)
            for flat, buf in padded.values():
                assert (buf[flat.size :] == _SENTINEL).all(), "a write past an array"
                flat[:] = buf[: flat.size]
            first = 8 if self.name == "sgd_update" else 10  # nW, nb after the arrays
            n_entries = int(args[first]) + int(args[first + 1])
            assert threads >= n_entries
            record.launches.append((self.name, threads, n_entries))

    def plain(fn):
        def wrapped(a, *args, **kwargs):
            base = a.view(np.ndarray) if isinstance(a, np.ndarray) else a
            out = fn(base, *args, **kwargs)
            return out.view(DeviceArray) if isinstance(a, DeviceArray) else out

        return wrapped

    module = types.ModuleType("cupy")
    module.RawKernel = RawKernel
    module.asarray = np.asarray
    module.ascontiguousarray = plain(np.ascontiguousarray)
    module.empty_like = plain(np.empty_like)
    module.zeros_like = plain(np.zeros_like)
    module.float32, module.float64 = np.float32, np.float64
    module.ndarray = type("ndarray", (), {})  # no real array is one of these
    module.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0))
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setattr(DeviceArray, "ops", [])
    kernels._update_kernel.cache_clear()
    record.xp = module
    yield record
    kernels._update_kernel.cache_clear()


def _state_arrays(opt):
    """Moments (SGD: velocities; Adam: first, then second) and average."""
    moments = opt.state["moments"]
    if isinstance(moments, tuple):
        moments = [*moments[0], *moments[1]]
    return [*moments, *(opt.state.get("average") or [])]


# (id, solver, options): momentum, Nesterov, prox terms (per-feature "pf"),
# averaging, each alone and together.
d = 7
_PF = np.linspace(0.05, 0.6, d)
CASES = [
    ("sgd-nesterov", "sgd", {}),
    ("sgd-heavy-ball", "sgd", {"nesterovs_momentum": False}),
    ("sgd-momentum0", "sgd", {"momentum": 0.0}),
    ("sgd-l1", "sgd", {"l1": 0.3}),
    ("sgd-l2", "sgd", {"l2": 2.0}),
    ("sgd-l1-l2-pf", "sgd", {"l1": _PF, "l2": 3 * _PF}),
    ("sgd-l1-pf-heavy-ball", "sgd", {"l1": _PF, "nesterovs_momentum": False}),
    ("sgd-average", "sgd", {"average": True}),
    ("sgd-all", "sgd", {"l1": _PF, "l2": 0.5, "average": True}),
    ("adam", "adam", {}),
    ("adam-l1", "adam", {"l1": 1.0}),
    ("adam-l2-pf", "adam", {"l2": 50 * _PF}),
    ("adam-all", "adam", {"l1": 2 * _PF, "l2": _PF, "average": True}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,intercept", [(3, True), (3, False), (1, True)])
@pytest.mark.parametrize(
    "solver,options", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_fused_update_matches_the_numpy_update(
    cupy_updates, solver, options, k, intercept, dtype
):
    rng = np.random.default_rng(2 * k + intercept)
    lr = 0.1 if solver == "sgd" else 0.05
    # Small entries, so that the L1 terms below zero some of them.
    params = [(0.2 * rng.standard_normal((k, d))).astype(dtype)]
    if intercept:
        params.append(rng.standard_normal(k).astype(dtype))
    ref = make_optimizer(solver, learning_rate_init=lr, **options)
    fused = make_optimizer(solver, learning_rate_init=lr, **options)
    ref_params = [p.copy() for p in params]
    dev_params = [on_device(p) for p in params]
    tol = (
        dict(rtol=2e-6, atol=2e-6)
        if dtype == np.float32
        else dict(rtol=1e-13, atol=1e-14)
    )
    zeros_seen = 0
    for step in range(5):  # the state carries from step to step
        grads = [(0.5 * rng.standard_normal(p.shape)).astype(dtype) for p in params]
        ref_params = ref.update(ref_params, grads, np)
        ops_before = len(DeviceArray.ops)
        out = fused.update(dev_params, [on_device(g) for g in grads], cupy_updates.xp)
        assert out is dev_params  # in place, the same list
        assert DeviceArray.ops[ops_before:] == []  # no array operation but...
        assert len(cupy_updates.launches) == step + 1  # ...one launch
        assert cupy_updates.launches[-1][2] == sum(p.size for p in params)
        for got, want in zip(dev_params, ref_params, strict=True):
            assert got.dtype == dtype
            assert_allclose(np.asarray(got), want, **tol)
        got_state, want_state = _state_arrays(fused), _state_arrays(ref)
        assert len(got_state) == len(want_state)
        for got, want in zip(got_state, want_state, strict=True):
            assert got.dtype == dtype
            assert_allclose(np.asarray(got), want, **tol)
        assert fused.state["t"] == ref.state["t"]
        assert fused.state.get("n_averaged") == ref.state.get("n_averaged")
        # Exact zeros of the L1 term, at the same places.
        assert_array_equal(np.asarray(dev_params[0]) == 0, ref_params[0] == 0)
        zeros_seen += int((ref_params[0] == 0).sum())
    assert (zeros_seen > 0) == ("l1" in options)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_the_intercept_gets_no_proximal_step(cupy_updates, solver):
    """An L1 weight that zeroes every entry of W leaves b alone."""
    rng = np.random.default_rng(0)
    params = [on_device(rng.standard_normal((3, d))), on_device(np.ones(3))]
    opt = make_optimizer(solver, learning_rate_init=0.1, l1=1e6)
    grads = [on_device(np.zeros((3, d))), on_device(np.ones(3))]
    opt.update(params, grads, cupy_updates.xp)
    assert (np.asarray(params[0]) == 0).all()
    assert (np.asarray(params[1]) < 1).all()


def test_state_handed_in_is_copied_before_the_fused_update(cupy_updates):
    """partial_fit's stored state changes only when a fit succeeds."""
    rng = np.random.default_rng(1)
    params = [on_device(rng.standard_normal((2, d)))]
    velocity = on_device(rng.standard_normal((2, d)))
    average = on_device(rng.standard_normal((2, d)))
    kept = velocity.copy(), average.copy()
    state = {
        "lr": 0.1,
        "t": 3,
        "moments": [velocity],
        "samples_seen": 30,
        "average": [average],
        "n_averaged": 3,
    }
    opt = make_optimizer("sgd", learning_rate_init=0.1, average=True, state=state)
    opt.update(params, [on_device(np.ones((2, d)))], cupy_updates.xp)
    assert_array_equal(velocity, kept[0])
    assert_array_equal(average, kept[1])
    assert opt.state["moments"][0] is not velocity
    assert not np.array_equal(opt.state["average"][0], kept[1])


def test_penalty_weights_are_uploaded_once_per_fit(cupy_updates, monkeypatch):
    uploads = []
    real = kernels.device_weights
    monkeypatch.setattr(
        kernels, "device_weights", lambda w, W: uploads.append(1) or real(w, W)
    )
    opt = make_optimizer("adam", learning_rate_init=0.1, l1=_PF, l2=0.5)
    params = [on_device(np.ones((2, d))), on_device(np.ones(2))]
    for _ in range(4):
        grads = [on_device(np.ones((2, d))), on_device(np.ones(2))]
        opt.update(params, grads, cupy_updates.xp)
    assert len(uploads) == 2  # L1 and L2, on the first step only
    assert len(cupy_updates.launches) == 4
    # A pickled optimizer (a Dask task) leaves its device copies behind.
    import pickle

    assert pickle.loads(pickle.dumps(opt))._device_weights == {}


def test_fused_update_refuses_mismatched_arrays(cupy_updates):
    W, v = on_device(np.ones((2, 3))), on_device(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="does not match its parameter"):
        kernels.sgd_update(
            [W],
            [v],
            [on_device(np.ones((2, 3), np.float32))],
            lr=0.1,
            momentum=0.9,
            nesterov=True,
        )
    with pytest.raises(ValueError, match="C-contiguous state arrays"):
        kernels.sgd_update(
            [W],
            [on_device(np.zeros((3, 2))).T],
            [on_device(np.ones((2, 3)))],
            lr=0.1,
            momentum=0.9,
            nesterov=True,
        )
    with pytest.raises(ValueError, match="needs the average arrays"):
        kernels.sgd_update(
            [W],
            [v],
            [on_device(np.ones((2, 3)))],
            lr=0.1,
            momentum=0.9,
            nesterov=True,
            average_mode=2,
        )
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.sgd_update(
            [W.astype(np.float16)],
            [v.astype(np.float16)],
            [on_device(np.ones((2, 3), np.float16))],
            lr=0.1,
            momentum=0.9,
            nesterov=True,
        )
    with pytest.raises(ValueError, match="one per feature"):
        kernels.device_weights(np.ones(4), W)
    assert cupy_updates.launches == []


def test_a_non_contiguous_gradient_is_made_contiguous(cupy_updates):
    W, v = on_device(np.ones((2, 3))), on_device(np.zeros((2, 3)))
    g = on_device(np.arange(6.0).reshape(3, 2)).T
    kernels.sgd_update([W], [v], [g], lr=0.5, momentum=0.0, nesterov=False)
    assert_allclose(np.asarray(W), 1 - 0.5 * np.arange(6.0).reshape(3, 2).T)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_a_nan_passes_the_soft_threshold_as_in_numpy(cupy_updates, solver):
    """A diverged entry stays NaN (the divergence check sees it), not 0."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((2, d))
    g = rng.standard_normal((2, d))
    g[1, 2] = np.nan
    ref = make_optimizer(solver, learning_rate_init=0.1, l1=0.2)
    want = ref.update([W.copy()], [g], np)[0]
    fused = make_optimizer(solver, learning_rate_init=0.1, l1=0.2)
    got = fused.update([on_device(W)], [on_device(g)], cupy_updates.xp)[0]
    assert np.isnan(want[1, 2]) and np.isnan(want).sum() == 1
    assert_allclose(np.asarray(got), want, rtol=1e-13, atol=1e-14)
