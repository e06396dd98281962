"""The one door to array libraries.

Everything else in the package receives an Array API namespace ``xp`` and
never imports NumPy-vs-CuPy specifics itself. CuPy is imported only when a
caller asks for the GPU, never when the package is imported.
"""

import numpy as np
import scipy.sparse as sp
from array_api_compat import array_namespace, device, is_numpy_namespace

__all__ = [
    "device",
    "get_namespace",
    "is_numpy_namespace",
    "is_sparse",
    "matmul_t",
    "t_matmul",
    "to_numpy",
]


def is_sparse(X):
    """True for SciPy sparse matrices and arrays."""
    return sp.issparse(X)


def get_namespace(*arrays, xp=None):
    """The Array API namespace of ``arrays`` (SciPy sparse counts as NumPy)."""
    if xp is not None:
        return xp
    dense = [a for a in arrays if a is not None and not sp.issparse(a)]
    if not dense:
        return array_namespace(np.empty(0))
    return array_namespace(*dense)


def to_numpy(a):
    """Copy an array from any namespace or device into a NumPy array."""
    if isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__
    if mod.startswith("cupy"):
        return a.get()
    if mod.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def asarray_like(a, like, *, dtype=None, xp=None):
    """``a`` (e.g. a NumPy parameter vector) in the namespace and on the
    device of ``like``, with ``like``'s dtype unless ``dtype`` is given."""
    xp = get_namespace(like, xp=xp)
    dtype = like.dtype if dtype is None else dtype
    if sp.issparse(like):
        return np.asarray(a, dtype=dtype)
    return xp.asarray(a, dtype=dtype, device=device(like))


def matmul_t(X, W):
    """``X @ W.T`` for dense or sparse ``X`` of shape (n, d), ``W`` (k, d)."""
    return X @ W.T


def t_matmul(G, X):
    """``G.T @ X`` of shape (k, d) for ``G`` (n, k) and dense or sparse ``X``."""
    if sp.issparse(X):
        # Sparse @ dense keeps X in its compressed form; transpose the small result.
        return (X.T @ G).T
    return G.T @ X


def limit_scipy_blas_threads():
    """A context that pins SciPy's own bundled OpenBLAS to one thread.

    pip's NumPy and SciPy each bundle an OpenBLAS with its own thread pool.
    L-BFGS-B calls SciPy's copy between our evaluations; its idle threads then
    spin and take the cores from NumPy's matrix products (measured: about 2x
    on a 2-core machine). When both share one library nothing is limited.
    """
    from contextlib import nullcontext

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
        return nullcontext()
    return controller.select(filepath=scipy_paths).limit(limits=1)


def take_rows(a, idx, xp):
    """Rows ``idx`` of a dense array (any namespace) or a SciPy sparse matrix."""
    if sp.issparse(a) or is_numpy_namespace(xp):
        return a[idx]
    return xp.take(a, idx, axis=0)
