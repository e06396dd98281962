"""Row blocks on every core for the NumPy path.

The loss evaluation and ``predict_proba`` on a NumPy ``X`` run over blocks of
rows small enough that a block of ``X`` and its logits stay in one core's L2
cache between the products that read them, so that ``X`` comes from memory
once. The blocks are shared among worker threads, each calling BLAS on one
thread (NumPy's matrix products and ufuncs release the GIL).

Threads follow the thread count of NumPy's BLAS as the user or a parallel
caller left it (``threadpoolctl``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``; joblib's workers under ``GridSearchCV(n_jobs=...)``
get their share that way), so that they never add to it. While the blocks
run, NumPy's BLAS is held at one thread and given back afterwards.

Partial sums are kept per *group* of consecutive blocks and added in group
order: the result does not depend on which thread ran which group, nor on the
number of threads up to :data:`_GROUPS`.
"""

import functools
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "block_groups",
    "hold_blas_one_thread",
    "map_groups",
    "n_threads",
    "numba_kernels",
    "numba_kernels_for",
    "predict_proba_numpy",
]

# Bytes of X and logits per block: half of a 2 MB L2 (measured on 100k x 200 x
# 10, one thread: 512-2,048 rows per block within 5% of each other).
L2_BLOCK_BYTES = 2**20
# Partial sums per evaluation (at most): fixed, so that results do not change
# with the thread count; enough groups to balance two to eight threads.
_GROUPS = 8
# The fused numba kernels (optional, :mod:`._numba_kernels`) keep W and the
# gradient sums (in X's dtype and in float64) in one core's cache while they
# stream the rows: used while these take at most this many bytes (100k x 200
# x 10 and x 20 classes: 48 and 96 KB; 1,000 classes x 128 features, 2 MB,
# ran 1.3-1.4x slower than the BLAS blocks, so that shape keeps them).
NUMBA_MAX_W_BYTES = 2**18
# Rows per block of the numba kernels: the blocks are grouped as for the
# NumPy path (block_groups), one kernel call per group of consecutive rows.
NUMBA_BLOCK_ROWS = 4096


@functools.lru_cache(maxsize=1)
def _numpy_blas():
    """threadpoolctl's controller of the BLAS that NumPy calls, found once
    (listing the loaded libraries takes milliseconds)."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    own = [lib.filepath for lib in blas if "numpy" in lib.filepath]
    if own:  # pip's NumPy bundles its own OpenBLAS
        return controller.select(filepath=own)
    return controller.select(user_api="blas")  # a system or conda BLAS


class _BlasHold:
    """Holds NumPy's BLAS at one thread while any block stream runs.

    Re-entrant across threads (Dask's threaded scheduler evaluates chunks
    concurrently): the first to enter saves the user's setting, the last to
    leave restores it, and everyone in between reads the saved one.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None

    def threads(self):
        with self._lock:
            if self._depth:
                return self._saved
            return _current_blas_threads()

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                self._saved = _current_blas_threads()
                _set_blas_threads(1)
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                _set_blas_threads(self._saved)
        return False


def _current_blas_threads():
    counts = [lib.num_threads for lib in _numpy_blas().lib_controllers]
    return max(1, min(counts)) if counts else 1


def _set_blas_threads(count):
    for lib in _numpy_blas().lib_controllers:
        lib.set_num_threads(count)


_HOLD = _BlasHold()


def hold_blas_one_thread():
    """A context that holds NumPy's BLAS at one thread (re-entrant), for a
    run of small products."""
    return _HOLD


def n_threads():
    """Worker threads for a block stream: NumPy's BLAS thread count as set
    now (by the user, threadpoolctl or joblib), at most the usable CPUs."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _HOLD.threads()))


_POOL = {"pid": None, "pool": None, "size": 0}
_POOL_LOCK = threading.Lock()


def _pool(size):
    """The module's worker threads, made again after a fork (the threads of
    a ThreadPoolExecutor do not survive one)."""
    with _POOL_LOCK:
        if _POOL["pid"] != os.getpid() or _POOL["size"] < size:
            _POOL.update(
                pid=os.getpid(),
                size=size,
                pool=ThreadPoolExecutor(size, thread_name_prefix="sksoftmax"),
            )
        return _POOL["pool"]


def block_groups(n, step, groups=_GROUPS):
    """Consecutive row ranges ``(start, stop)`` of ``step`` rows, split into
    at most ``groups`` lists of about equal length."""
    if n <= step:  # every minibatch: no grouping work
        return [[(0, n)]]
    starts = range(0, n, step)
    bounds = np.linspace(0, len(starts), min(groups, len(starts)) + 1).astype(int)
    return [
        [(s, min(n, s + step)) for s in starts[lo:hi]]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]


@functools.lru_cache(maxsize=1)
def _import_numba_kernels():
    try:
        from . import _numba_kernels
    except ImportError as exc:  # an optional extra (pip install sksoftmax[fast])
        warnings.warn(
            f"SKSOFTMAX_NUMBA=1 asks for the numba kernels, but they cannot be "
            f"imported ({exc}); sksoftmax takes its NumPy path. Install them "
            "with: pip install 'sksoftmax[fast]'.",
            UserWarning,
            stacklevel=2,
        )
        return None
    return _numba_kernels


def numba_kernels():
    """The compiled kernels of :mod:`._numba_kernels`, when the user opted in
    with the environment variable ``SKSOFTMAX_NUMBA=1`` and numba imports;
    else None (the NumPy path, the same results up to rounding). Read at
    every call, so it can be set while the process runs.

    Opt-in, not automatic: numba compiles each kernel on its first call in
    a fresh environment (about 20 s per dtype for the loss
    on a 2-core machine; cached on disk afterwards), and numba arrives
    unasked with other packages (dask-ml), where that first-fit cost would
    come as a surprise."""
    if os.environ.get("SKSOFTMAX_NUMBA", "0").strip().lower() not in (
        "1",
        "true",
        "yes",
    ):
        return None
    return _import_numba_kernels()


def numba_kernels_for(X, n_logits):
    """:func:`numba_kernels` where they apply: ``X`` a dense float32 or
    float64 NumPy array with rows, C- or Fortran-ordered (a DataFrame's
    values, say: the same results as a C-ordered copy; the kernel reads it as
    its C-ordered transpose, so one compiled kernel per dtype serves both),
    and W (``n_logits`` x d) with its sums small enough to stay in cache
    (:data:`NUMBA_MAX_W_BYTES`); else None. Other strided views take the
    NumPy path: each would cost the kernel another ~20 s compile."""
    if (
        not isinstance(X, np.ndarray)
        or X.ndim != 2
        or X.shape[0] == 0
        or X.dtype not in (np.float32, np.float64)
        or not (X.flags.c_contiguous or X.flags.f_contiguous)
    ):
        return None
    per_entry = 2 * X.dtype.itemsize + 8  # W, the sums in X's dtype and f64
    if n_logits * X.shape[1] * per_entry > NUMBA_MAX_W_BYTES:
        return None
    return numba_kernels()


def kernel_rows(X):
    """``(X as the numba kernels read it, gather)`` for an ``X`` that
    :func:`numba_kernels_for` accepted: a Fortran-ordered ``X`` goes in as
    its C-ordered transpose with ``gather=True`` (the kernel copies each tile
    of rows into a C buffer), so one compiled kernel per dtype serves both."""
    gather = not X.flags.c_contiguous
    return (X.T if gather else X), gather


def map_groups(fn, groups, threads=None, *, small=False, blas=True):
    """``[fn(group) for group in groups]``, run on up to ``threads`` worker
    threads (default :func:`n_threads`) with NumPy's BLAS held at one thread
    meanwhile; one group, or one thread, runs here with BLAS as it is.

    ``blas=False``: ``fn`` calls no BLAS (a compiled kernel), so NumPy's BLAS
    is left as it is.

    ``small``: one group of small products (a minibatch) also runs with BLAS
    held at one thread. Two OpenBLAS threads barely speed up a product of a
    few MFLOP, and on a busy machine each call then waits for a descheduled
    worker: a 1,024-row SGD epoch on 100k x 200 x 10 took 1.1-1.6 s with two
    threads and 0.34 s with one, at load 8.6 (256 rows: equal).
    """
    if len(groups) == 1:  # a minibatch: no thread bookkeeping (~20 us)
        if small:
            with _HOLD:
                return [fn(groups[0])]
        return [fn(groups[0])]
    threads = n_threads() if threads is None else threads
    threads = min(threads, len(groups))
    if threads <= 1:
        return [fn(g) for g in groups]
    if not blas:
        return list(_pool(threads).map(fn, groups))
    with _HOLD:
        return list(_pool(threads).map(fn, groups))


def predict_proba_numpy(X, W, b, *, temperature=1.0, out=None, on_nonfinite=None):
    """``softmax((X W^T + b) / temperature)`` for a dense NumPy ``X``, in row
    blocks on every core, without an n x K temporary besides the result.

    ``W`` has shape (k, d) with k = 1 for a binary model (one logit for class
    1 against zero for class 0); the result has shape (n, max(k, 2)) and the
    dtype of ``X``.

    ``on_nonfinite`` (optional) is called once, after all blocks, if any
    logit was NaN or infinite: a NaN or infinite entry of ``X`` makes every
    logit of its row so (``0 * inf`` is NaN), so the caller can check ``X``
    for finiteness only then, instead of reading it once more beforehand.
    """
    n, d = X.shape
    k = W.shape[0]
    K = max(k, 2)
    dtype = X.dtype
    W = np.asarray(W, dtype=dtype)
    b = None if b is None else np.asarray(b, dtype=dtype)
    if temperature != 1.0:
        W = W / temperature
        b = None if b is None else b / temperature
    if out is None:
        out = np.empty((n, K), dtype=dtype)
    kernels = numba_kernels_for(X, k)
    if kernels is not None and out.dtype == dtype and out.flags.c_contiguous:
        has_b = b is not None
        Xk, gather = kernel_rows(X)
        W = np.ascontiguousarray(W)
        bv = np.ascontiguousarray(b) if has_b else np.zeros(k, dtype=dtype)

        def block(group):
            start, stop = group[0][0], group[-1][1]
            return kernels.proba_rows(Xk, gather, W, bv, has_b, out, start, stop)

        finite = map_groups(block, block_groups(n, NUMBA_BLOCK_ROWS), blas=False)
        if on_nonfinite is not None and not all(finite):
            on_nonfinite()
        return out
    per_row = (d + 2 * K) * dtype.itemsize
    step = max(64, L2_BLOCK_BYTES // per_row)

    finite = []  # one flag per group of blocks

    def run(group):
        ok = True
        for start, stop in group:
            ok &= _proba_block(X[start:stop], W, b, out[start:stop])
        finite.append(ok)

    map_groups(run, block_groups(n, step))
    if on_nonfinite is not None and not all(finite):
        on_nonfinite()
    return out


def _proba_block(Xb, W, b, P):
    """Fill ``P`` (m, K) with the probabilities of the rows ``Xb``; return
    whether all their logits were finite."""
    k = W.shape[0]
    if k == 1:  # binary: logits (0, o)
        P[:, 0] = 0.0
        P[:, 1] = Xb @ W[0]
    else:
        np.matmul(Xb, W.T, out=P)
    if b is not None:
        P[:, P.shape[1] - k :] += b
    # With few classes, reductions along the short contiguous axis are slow:
    # work on the transposed block, which is small and stays in cache.
    Z = np.ascontiguousarray(P.T) if k <= 32 else None
    if Z is None:
        finite = bool(np.isfinite(P).all())
        P -= P.max(axis=1, keepdims=True)
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
        return finite
    finite = bool(np.isfinite(Z).all())
    Z -= np.maximum.reduce(Z, axis=0)
    np.exp(Z, out=Z)
    Z /= np.add.reduce(Z, axis=0)
    P[...] = Z.T
    return finite
