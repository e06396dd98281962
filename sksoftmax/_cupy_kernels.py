"""Fused CuPy kernels for the GPU path; used only when the namespace is CuPy.

The array-API code in :mod:`sksoftmax._loss` and the optimizers is the
reference: every kernel here computes the same numbers in fewer launches
(checked against it by the ``gpu``-marked tests). One SGD/Adam minibatch on
the generic path launches about 40-60 small kernels, so that small batches are
bound by launch latency; here the softmax - target x weight step is one
launch, and each parameter update is one launch.

CuPy is imported only when a kernel is first used. The CUDA sources are plain
strings at module level so that a test can compile them with ``nvcc`` on a
machine without a GPU (see ``kernel_sources``).
"""

import functools
import threading

import numpy as np

__all__ = [
    "adam_update",
    "kernel_sources",
    "lanes_per_row",
    "logits_buffer",
    "sgd_update",
    "softmax_ce_grad",
]

# One group of L lanes (a power of two, at most a warp) per row of the (n, K)
# logits, reduced with warp shuffles: coalesced loads for any K, no shared
# memory. Every lane of a warp reaches each shuffle (rows past n are masked,
# never returned early), so the full mask is valid.
SOFTMAX_CE_SOURCE = r"""
extern "C" __global__ void softmax_ce_grad(
    T* __restrict__ Z, const long long* __restrict__ y,
    const T* __restrict__ w, double* __restrict__ ce,
    const long long n, const int K, const int has_w, const double eps,
    const int L)
{
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long row = tid / L;
    const int lane = (int)(tid % L);
    const bool active = row < n;
    T* z = Z + (active ? row : 0) * (long long)K;
    const int cls = active ? (int)y[row] : 0;
    /* Read before the shuffles below: no lane writes Z until all have passed
       the last one, so this read cannot race with the lane that owns cls. */
    const T zy = active ? z[cls] : (T)0;

    T mx = (T)(-__int_as_float(0x7f800000));
    if (active) {
        for (int k = lane; k < K; k += L) mx = z[k] > mx ? z[k] : mx;
    }
    for (int off = L / 2; off > 0; off /= 2) {
        T other = __shfl_xor_sync(0xffffffffu, mx, off, L);
        mx = other > mx ? other : mx;
    }
    T s = (T)0, zsum = (T)0;
    if (active) {
        for (int k = lane; k < K; k += L) {
            s += EXP(z[k] - mx);
            zsum += z[k];
        }
    }
    for (int off = L / 2; off > 0; off /= 2) {
        s += __shfl_xor_sync(0xffffffffu, s, off, L);
        zsum += __shfl_xor_sync(0xffffffffu, zsum, off, L);
    }
    if (!active) return;  /* after the last shuffle */
    const T wi = has_w ? w[row] : (T)1;
    const T inv_s = (T)1 / s;
    const T on = (T)(1.0 - eps), off_t = (T)(eps / K);
    if (lane == 0) {
        /* CE = logsumexp(z) - sum_k t_k z_k, t = (1 - eps) onehot + eps / K */
        const double lse = (double)mx + log((double)s);
        const double tz = (1.0 - eps) * (double)zy + eps / K * (double)zsum;
        ce[row] = (double)wi * (lse - tz);
    }
    /* Each lane rewrites only its own entries, which no lane reads again. */
    for (int k = lane; k < K; k += L) {
        const T p = EXP(z[k] - mx) * inv_s;
        z[k] = wi * (p - ((k == cls ? on : (T)0) + off_t));
    }
}
"""

# v <- mu v - lr g;  p <- p + (mu v - lr g) with Nesterov, else p + v:
# MLPClassifier's SGDOptimizer, as in sksoftmax._solvers (the reference).
SGD_KERNEL = (
    "T g, T lr, T mu, int32 nesterov",
    "T p, T v",
    """
    v = mu * v - lr * g;
    p += nesterov ? mu * v - lr * g : v;
    """,
    "sksoftmax_sgd_update",
)

# m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  p <- p - lr m / (sqrt v + eps)
# with lr already bias-corrected (lr0 sqrt(1 - b2^t) / (1 - b1^t)).
ADAM_KERNEL = (
    "T g, T lr, T b1, T b2, T eps",
    "T p, T m, T v",
    """
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * (g * g);
    p -= lr * m / (sqrt(v) + eps);
    """,
    "sksoftmax_adam_update",
)

_BLOCK = 256
# Minibatch-sized buffers (at most this many logits) are kept between calls;
# larger ones (full-batch chunks) come from CuPy's memory pool each time and
# are not held after the fit.
_MAX_KEPT_LOGITS = 1 << 22
_buffers = threading.local()  # Dask's threads evaluate chunks concurrently


def _typed_source(dtype):
    name = np.dtype(dtype).name
    if name == "float32":
        prefix = "typedef float T;\n#define EXP expf\n"
    elif name == "float64":
        prefix = "typedef double T;\n#define EXP exp\n"
    else:
        raise TypeError(
            f"The fused softmax kernel takes float32 or float64, not {name}."
        )
    return prefix + SOFTMAX_CE_SOURCE


def kernel_sources():
    """The CUDA sources: ``{"softmax_ce_grad_float32": str, ...,
    "sgd": (in, out, body, name), "adam": (...)}`` (for compile checks)."""
    return {
        "softmax_ce_grad_float32": _typed_source(np.float32),
        "softmax_ce_grad_float64": _typed_source(np.float64),
        "sgd": SGD_KERNEL,
        "adam": ADAM_KERNEL,
    }


def lanes_per_row(K):
    """Lanes sharing one row: about four classes per lane, at most a warp."""
    L = 1
    while L < 32 and 4 * L < K:
        L *= 2
    return L


@functools.cache
def _softmax_kernel(dtype_name):
    import cupy

    return cupy.RawKernel(_typed_source(dtype_name), "softmax_ce_grad")


@functools.cache
def _elementwise(spec):
    import cupy

    in_params, out_params, body, name = spec
    return cupy.ElementwiseKernel(in_params, out_params, body, name)


def logits_buffer(rows, K, dtype):
    """``(Z, ce, ones)`` for a chunk of ``rows`` rows on the current device:
    Z (rows, K) C-contiguous in ``dtype`` for the logits, ce (rows,) float64
    for the per-sample losses, ones (rows,) in ``dtype`` for the column sums
    ``ones @ G``. Minibatch-sized buffers are reused across minibatches."""
    import cupy

    dtype = np.dtype(dtype)
    key = (cupy.cuda.Device().id, dtype.name, K)
    cache = getattr(_buffers, "cache", None)
    if cache is None:
        cache = _buffers.cache = {}
    held = cache.get(key)
    if held is None or held[0].shape[0] < rows:
        held = (
            cupy.empty((rows, K), dtype=dtype),
            cupy.empty(rows, dtype=cupy.float64),
            cupy.ones(rows, dtype=dtype),
        )
        if rows * K <= _MAX_KEPT_LOGITS:
            cache[key] = held
    Z, ce, ones = held
    return Z[:rows], ce[:rows], ones[:rows]


def softmax_ce_grad(Z, target, weights=None, label_smoothing=0.0, *, ce=None):
    """One launch of :func:`sksoftmax._loss.softmax_cross_entropy` for class
    codes: ``Z`` (n, K), C-contiguous CuPy float32/float64 logits, becomes
    ``w_i (softmax(Z_i) - T_i)`` in place.

    ``ce`` (optional): a float64 CuPy vector of at least n entries reused for
    the per-sample losses. Returns the weighted loss sum as a 0-d float64
    CuPy array (summed in float64, as the CPU path does) and ``Z``.
    """
    import cupy

    n, K = Z.shape
    if not Z.flags.c_contiguous:
        raise ValueError("The fused softmax kernel needs C-contiguous logits.")
    if target.ndim != 1:
        raise ValueError("The fused softmax kernel takes class codes (n,).")
    y = cupy.ascontiguousarray(target, dtype=cupy.int64)
    if weights is None:
        w, has_w = Z, 0  # never read
    else:
        w, has_w = cupy.ascontiguousarray(weights, dtype=Z.dtype), 1
    ce = cupy.empty(n, dtype=cupy.float64) if ce is None else ce[:n]
    L = lanes_per_row(K)
    threads = n * L
    grid = ((threads + _BLOCK - 1) // _BLOCK,)
    if n:
        _softmax_kernel(Z.dtype.name)(
            grid,
            (_BLOCK,),
            (
                Z,
                y,
                w,
                ce,
                np.int64(n),
                np.int32(K),
                np.int32(has_w),
                np.float64(label_smoothing),
                np.int32(L),
            ),
        )
    return cupy.sum(ce), Z


def sgd_update(params, velocities, grads, *, lr, momentum, nesterov):
    """SGD with (Nesterov) momentum, in place: one launch per parameter."""
    kernel = _elementwise(SGD_KERNEL)
    for p, v, g in zip(params, velocities, grads, strict=True):
        kernel(g, lr, momentum, int(bool(nesterov and momentum)), p, v)
    return params


def adam_update(params, first, second, grads, *, lr, beta_1, beta_2, epsilon):
    """Adam, in place, with the bias-corrected step ``lr``: one launch per
    parameter."""
    kernel = _elementwise(ADAM_KERNEL)
    for p, m, v, g in zip(params, first, second, grads, strict=True):
        kernel(g, lr, beta_1, beta_2, epsilon, p, m, v)
    return params
