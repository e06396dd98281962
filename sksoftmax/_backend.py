"""The one door to array libraries.

Everything else in the package receives an Array API namespace ``xp`` and
never imports NumPy-vs-CuPy specifics itself. CuPy is imported only when a
caller asks for the GPU, never when the package is imported.
"""

import contextlib
import functools
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_cupy_array,
    is_cupy_namespace,
    is_numpy_array,
    is_numpy_namespace,
)

from ._compat import from_dlpack

__all__ = [
    "ComputeTarget",
    "accumulation_dtype",
    "column_sums",
    "device",
    "device_of",
    "get_namespace",
    "is_numpy_namespace",
    "is_sparse",
    "matmul_t",
    "on_device",
    "t_matmul",
    "to_numpy",
]


def is_cupy_sparse(X):
    # Never import CuPy here: if it is not loaded, X cannot be a CuPy matrix.
    if "cupyx.scipy.sparse" not in sys.modules:
        return False
    return sys.modules["cupyx.scipy.sparse"].issparse(X)


def is_sparse(X):
    """True for SciPy sparse matrices/arrays and CuPy's sparse matrices."""
    return sp.issparse(X) or is_cupy_sparse(X)


def is_foreign_array(X):
    """True for an Array API array that is not a NumPy array (CuPy, torch,
    array_api_strict, ...): such input keeps its namespace and device."""
    return is_array_api_obj(X) and not is_numpy_array(X) and not sp.issparse(X)


# array-api-compat's NumPy namespace, found once: NumPy arrays are the common
# case, and a fit on small data asks for it many times per evaluation.
_NUMPY_XP = array_namespace(np.empty(0))


def get_namespace(*arrays, xp=None):
    """The Array API namespace of ``arrays`` (SciPy sparse counts as NumPy,
    CuPy sparse as CuPy)."""
    if xp is not None:
        return xp
    if all(type(a) is np.ndarray for a in arrays):
        return _NUMPY_XP
    for a in arrays:
        if is_cupy_sparse(a):
            import cupy

            return array_namespace(cupy.empty(0))
    dense = [a for a in arrays if a is not None and not sp.issparse(a)]
    if not dense:
        return array_namespace(np.empty(0))
    return array_namespace(*dense)


def to_numpy(a):
    """Copy an array from any namespace or device into a NumPy array."""
    if a is None or isinstance(a, np.ndarray) or sp.issparse(a):
        return a
    mod = type(a).__module__
    if mod.startswith("cupy"):
        return a.get()
    if mod.startswith("torch"):
        return a.detach().cpu().numpy()
    try:  # DLPack is the library-neutral way across namespaces and devices
        return from_dlpack(a)
    except (AttributeError, BufferError, TypeError, RuntimeError):
        return np.asarray(a)


def from_numpy(a, xp, dev, *, dtype=None):
    """A NumPy (or sparse) array moved into namespace ``xp`` on ``dev``."""
    if sp.issparse(a):
        if is_numpy_namespace(xp):
            return a
        if is_cupy_namespace(xp):
            import cupyx.scipy.sparse as cusp

            return cusp.csr_matrix(a.tocsr())
        raise TypeError(
            f"Sparse input is supported on NumPy and CuPy only, not {xp.__name__}."
        )
    if dtype is None:
        return xp.asarray(a, device=dev)
    return xp.asarray(a, dtype=dtype, device=dev)


def column_sums(G, xp):
    """``G.sum(axis=0)``. On GPUs an axis-0 reduction over many rows with few
    outputs runs on few blocks (measured 4.6 ms vs 0.04 ms on an H100 for
    1M x 10), so it is expressed there as the product ``ones @ G``; the
    array-API path uses the same form everywhere, so that no axis-0 reduction
    over many rows remains in it. Call it inside :func:`on_device` on CuPy
    (CuPy's ``ones`` lands on the current device whatever ``device=`` says)."""
    if is_numpy_namespace(xp):
        return G.sum(axis=0)
    return xp.ones(G.shape[0], dtype=G.dtype, device=device(G)) @ G


def on_device(like):
    """A context in which new arrays land on the device of ``like``.

    array-api-compat's CuPy ``arange``, ``ones``, ``zeros`` (and CuPy's
    kernels) ignore ``device=`` and use the *current* GPU: with ``X`` on GPU
    1 and GPU 0 current, temporaries would be made on GPU 0. For a CuPy
    array (or CuPy sparse matrix) this enters ``cupy.cuda.Device`` of its
    device; for anything else it does nothing. Re-entrant and cheap.
    """
    if like is None:
        return contextlib.nullcontext()
    if is_cupy_array(like):
        return like.device
    if is_cupy_sparse(like):
        return like.data.device
    return contextlib.nullcontext()


def device_of(a):
    """``device(a)``, also for sparse matrices (SciPy: "cpu"; CuPy: the GPU
    holding its data)."""
    if sp.issparse(a):
        return "cpu"
    if is_cupy_sparse(a):
        return a.data.device
    return device(a)


def accumulation_dtype(xp, dev):
    """The dtype in which sums over samples accumulate: float64 where the
    device has it (float32 data are summed as on the CPU, so that both stop
    at the same point), else the default floating dtype of the device."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return xp.float64
    try:
        floats = info().dtypes(device=dev, kind="real floating")
    except (TypeError, ValueError):  # a device the namespace does not describe
        return xp.float64
    if "float64" in floats:
        return xp.float64
    return info().default_dtypes(device=dev)["real floating"]


# One device generator per host random generator (so per fit, not per epoch):
# keyed by ``id(rng)`` with a strong reference to ``rng``, so that an id
# cannot be reused while its entry lives. A handful of fits at a time is plenty.
_DEVICE_GENERATORS = OrderedDict()
_MAX_DEVICE_GENERATORS = 8
_DEVICE_GENERATORS_LOCK = threading.Lock()  # Dask runs chunks in threads


def device_generator(rng, like):
    """The CuPy random generator tied to the host generator ``rng`` on the
    device of ``like``: made on first use from one draw of ``rng`` and reused
    by every later epoch of the same fit."""
    import cupy

    with on_device(like), _DEVICE_GENERATORS_LOCK:
        key = (id(rng), cupy.cuda.Device().id)
        entry = _DEVICE_GENERATORS.get(key)
        if entry is not None and entry[0] is rng:
            _DEVICE_GENERATORS.move_to_end(key)
            return entry[1]
        seed = int(rng.randint(np.iinfo(np.int32).max))
        gen = cupy.random.RandomState(seed)
        _DEVICE_GENERATORS[key] = (rng, gen)
        while len(_DEVICE_GENERATORS) > _MAX_DEVICE_GENERATORS:
            _DEVICE_GENERATORS.popitem(last=False)
        return gen


def permutation(n, rng, xp, like):
    """A random permutation of ``range(n)`` made on the device of ``like``.

    On CuPy it is drawn on the GPU by the device generator of ``rng``
    (:func:`device_generator`: one per fit, seeded once from ``rng``), so the
    minibatch loop never copies indices from the host; elsewhere it is drawn
    by ``rng`` and moved once per epoch.
    """
    if is_cupy_namespace(xp):
        gen = device_generator(rng, like)
        with on_device(like):
            return gen.permutation(n)
    order = rng.permutation(n)
    if is_numpy_namespace(xp) or like is None or is_sparse(like):
        return order
    return xp.asarray(order, device=device(like))


class ComputeTarget:
    """Where the arithmetic runs (``xp``, ``device``) and where results go back
    (the input's namespace and device), resolved from the ``device``
    parameter and the input ``X``.

    * ``device=None``: follow the input (NumPy stays on the CPU; CuPy, torch
      or any Array API array stays in its namespace and on its device);
    * ``"cpu"``: compute with NumPy;
    * ``"cuda"``: compute with CuPy on the current GPU, even for NumPy input.
    """

    def __init__(self, device_param, X):
        self.input_xp = get_namespace(X)
        self.input_device = None if is_sparse(X) else device(X)
        if device_param is None:
            self.xp, self.device = self.input_xp, self.input_device
        elif device_param == "cpu":
            self.xp, self.device = array_namespace(np.empty(0)), "cpu"
        else:
            cupy = import_cupy()
            self.xp = array_namespace(cupy.empty(0))
            self.device = cupy.cuda.Device()

    def context(self):
        """The device context of the computation (:func:`on_device`): on
        CuPy, the GPU the arithmetic runs on becomes the current one, so
        that temporaries made without ``device=`` land there too."""
        if is_cupy_namespace(self.xp) and hasattr(self.device, "__enter__"):
            return self.device
        return contextlib.nullcontext()

    @property
    def moves(self):
        """True when the input must move to another namespace or device."""
        return not (self.xp is self.input_xp and self.device == self.input_device)

    def to_compute(self, a, *, dtype=None):
        """``a`` (input-side array, or NumPy) moved where the arithmetic runs."""
        if a is None:
            return None
        if not self.moves and (is_foreign_array(a) or is_sparse(a)):
            return a if dtype is None else self.xp.astype(a, dtype)
        host = to_numpy(a)
        if is_numpy_namespace(self.xp):
            return host if dtype is None else host.astype(dtype, copy=False)
        return from_numpy(host, self.xp, self.device, dtype=dtype)

    def to_input(self, a):
        """A result (or NumPy array) moved to the input's namespace and device."""
        if is_numpy_namespace(self.input_xp):
            return to_numpy(a)
        if (
            is_foreign_array(a)
            and get_namespace(a) is self.input_xp
            and device(a) == self.input_device
        ):
            return a
        return from_numpy(to_numpy(a), self.input_xp, self.input_device)


def import_cupy():
    """Import CuPy for ``device="cuda"`` with errors that say what to do."""
    try:
        import cupy
    except ImportError as exc:
        raise ImportError(
            'device="cuda" needs CuPy. Install the wheel matching your CUDA '
            'version, e.g. pip install "sksoftmax[gpu]" (cupy-cuda12x) or '
            "pip install cupy-cuda13x for CUDA 13."
        ) from exc
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when no driver is present
        raise RuntimeError(
            f'device="cuda" was requested but CuPy sees no usable GPU ({exc}).'
        ) from exc
    if n_gpus == 0:
        raise RuntimeError('device="cuda" was requested but no GPU is visible.')
    return cupy


def asarray_like(a, like, *, dtype=None, xp=None):
    """``a`` (e.g. a NumPy parameter vector) in the namespace and on the
    device of ``like``, with ``like``'s dtype unless ``dtype`` is given."""
    dtype = like.dtype if dtype is None else dtype
    if type(like) is np.ndarray:
        return np.asarray(a, dtype=dtype)
    xp = get_namespace(like, xp=xp)
    if sp.issparse(like):
        return np.asarray(a, dtype=dtype)
    if is_sparse(like):  # CuPy sparse: dense parameters on the current GPU
        return xp.asarray(a, dtype=dtype)
    return xp.asarray(a, dtype=dtype, device=device(like))


def matmul_t(X, W):
    """``X @ W.T`` for dense or sparse ``X`` of shape (n, d), ``W`` (k, d)."""
    return X @ W.T


def t_matmul(G, X):
    """``G.T @ X`` of shape (k, d) for ``G`` (n, k) and dense or sparse ``X``."""
    if is_sparse(X):
        # Sparse @ dense keeps X in its compressed form; transpose the small result.
        return (X.T @ G).T
    return G.T @ X


class _ScipyBlasLimit:
    """Pins SciPy's own bundled OpenBLAS to one thread while at least one fit
    runs, and restores the thread count it had before the first of them.

    A count of running fits under a lock: the first to enter saves the
    setting and limits it, the last to leave restores it. Overlapping fits
    (threads, GridSearchCV with a threading backend) therefore never leave
    the limit behind, whatever order they end in.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0
        self._saved = None

    @contextmanager
    def __call__(self):
        blas = _scipy_only_blas()
        if blas is None:
            yield
            return
        with self._lock:
            if self._running == 0:
                self._saved = blas.info()
                blas.limit(limits=1)
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    for lib in self._saved:
                        blas.select(filepath=lib["filepath"]).limit(
                            limits=lib["num_threads"]
                        )
                    self._saved = None


limit_scipy_blas_threads = _ScipyBlasLimit()
limit_scipy_blas_threads.__doc__ = """A context that pins SciPy's own bundled
OpenBLAS to one thread while a fit runs.

pip's NumPy and SciPy each bundle an OpenBLAS with its own thread pool.
L-BFGS-B calls SciPy's copy between our evaluations; its idle threads then
spin and take the cores from NumPy's matrix products (measured: about 2x
on a 2-core machine). When both share one library nothing is limited.

The setting is process-wide: while any fit runs, every thread of the process
sees SciPy's BLAS (not NumPy's) at one thread; after the last running fit
ends, the count it had before the first one is restored.
"""


@functools.lru_cache(maxsize=1)
def _scipy_only_blas():
    """threadpoolctl's controller of the BLAS libraries that SciPy loads and
    NumPy does not, or None. Found once: listing the loaded libraries takes
    a few milliseconds, which shows in fits on small data."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    numpy_paths = {lib.filepath for lib in blas if "numpy" in lib.filepath}
    scipy_paths = [
        lib.filepath
        for lib in blas
        if "scipy" in lib.filepath.replace("scipy_openblas", "")
        and lib.filepath not in numpy_paths
    ]
    if not scipy_paths:
        return None
    return controller.select(filepath=scipy_paths)


def take_rows(a, idx, xp, *, out=None):
    """Rows ``idx`` of a dense array (any namespace) or a sparse matrix.

    ``out`` (NumPy or CuPy, as ``a``): a C-contiguous array with at least
    ``len(idx)`` rows that receives them, so that a minibatch loop allocates
    nothing (on CuPy: no allocation per minibatch, one gather kernel).
    """
    if out is not None and isinstance(a, np.ndarray):
        # mode="clip" skips the bounds-checked, buffered copy of "raise";
        # the indices come from a permutation of range(n).
        return np.take(a, idx, axis=0, out=out[: idx.shape[0]], mode="clip")
    if out is not None and is_cupy_array(a):
        import cupy

        return cupy.take(a, idx, axis=0, out=out[: idx.shape[0]])
    if is_sparse(a) or is_numpy_namespace(xp):
        return a[idx]
    return xp.take(a, idx, axis=0)


def index_on_device(idx, like, xp):
    """Host indices ``idx`` moved to the device of ``like`` for ``take_rows``."""
    if is_numpy_namespace(xp) or is_sparse(like):
        return idx
    return xp.asarray(idx, device=device(like))


def is_device_out_of_memory(exc):
    """True for CuPy's (or torch's) out-of-memory errors."""
    name = type(exc).__name__
    return name == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
