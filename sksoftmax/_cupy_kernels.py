"""Fused CuPy kernels for the GPU path; used only when the namespace is CuPy.

The array-API code in :mod:`sksoftmax._loss` and the NumPy update of
:mod:`sksoftmax._solvers.optimizers` are the reference: every kernel here
computes the same numbers in fewer launches. On the generic path one SGD/Adam
minibatch launches dozens of small kernels (the update alone 14 to 43 on the
Array API path of ``optimizers.py``), so small batches are bound by launch
latency. Here:

* ``softmax_ce_grad``: the softmax - target x weight step, one launch;
* ``sgd_update`` / ``adam_update``: the whole update of one minibatch, one
  launch for W and b together: the momentum or Adam step, the proximal step
  of the L1/L2 terms on W (scalar or per-feature weights, the intercept
  untouched, SGD's velocity correction, Adam's per-entry threshold) and the
  iterate average, in place on state arrays made once per chunk pass.

CuPy is imported only when a kernel is first used. The CUDA sources are plain
strings at module level so that the tests can compile them with ``nvcc`` on
a machine without a GPU and run them on the CPU through a small host shim
against the reference (see ``kernel_sources``).
"""

import functools
import threading

import numpy as np

__all__ = [
    "adam_update",
    "device_weights",
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

# The minibatch update rules of sksoftmax._solvers.optimizers (the reference),
# one thread per parameter entry: the entries of W (k x d, C order) first,
# then those of b, so that one launch makes the whole update of one minibatch.
# Only W gets the proximal step; its weights l1w/l2w hold n_l1/n_l2 entries
# (1: a scalar, d: per feature, read at i % d; 0: the term is absent). The
# iterate average is folded in (avg_mode 0: none, 1: start it, 2: update it).
# Every operation runs in T, in the order of the NumPy in-place path.
UPDATE_SOURCE = r"""
/* Proximal map of step * (l1 |w| + l2 / 2 w^2) on entry i of W: the soft
   threshold sign(w) max(|w| - t, 0) (a NaN passes, as in NumPy), then the
   shrinkage w / (1 + step l2). */
__device__ __forceinline__ T prox_entry(
    T w, const T step, const T* l1w, const long long n_l1,
    const T* l2w, const long long n_l2, const long long i)
{
    if (n_l1) {
        const T a = FABS(w) - step * l1w[i % n_l1];
        w = (a > (T)0 || a != a) ? COPYSIGN(a, w) : (T)0;
    }
    if (n_l2) w = w / ((T)1 + step * l2w[i % n_l2]);
    return w;
}

/* Polynomial-decay average: a <- p (start), a <- a + w (p - a) (update). */
__device__ __forceinline__ void average_entry(
    T* a, const long long j, const T p, const int mode, const T w)
{
    if (mode == 1) a[j] = p;
    else if (mode == 2) a[j] += w * (p - a[j]);
}

/* v <- mu v - lr g; p <- p + mu v - lr g (Nesterov) or p + v; then on W
   p' = prox(p) with step c lr and v <- v + (p' - p) / c. */
extern "C" __global__ void sgd_update(
    T* W, T* VW, const T* GW, T* AW,
    T* b, T* Vb, const T* Gb, T* Ab,
    const long long nW, const long long nb,
    const T* l1w, const long long n_l1, const T* l2w, const long long n_l2,
    const T lr, const T mu, const int nesterov, const T c, const T step,
    const int avg_mode, const T avg_w)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nW + nb) return;
    const bool in_W = i < nW;
    const long long j = in_W ? i : i - nW;
    T* P = in_W ? W : b;
    T* V = in_W ? VW : Vb;
    const T g = in_W ? GW[j] : Gb[j];
    T v = mu * V[j] - lr * g;
    T p = nesterov ? (P[j] + mu * v) - lr * g : P[j] + v;
    if (in_W && (n_l1 || n_l2)) {
        const T q = prox_entry(p, step, l1w, n_l1, l2w, n_l2, j);
        v = v + (q - p) / c;
        p = q;
    }
    V[j] = v;
    P[j] = p;
    average_entry(in_W ? AW : Ab, j, p, avg_mode, avg_w);
}

/* m <- b1 m + (1 - b1) g; s <- b2 s + (1 - b2) g^2; r = sqrt(s) + eps;
   p <- p - lr m / r (lr bias-corrected); then on W the prox with the
   per-entry step scale / r. */
extern "C" __global__ void adam_update(
    T* W, T* MW, T* SW, const T* GW, T* AW,
    T* b, T* Mb, T* Sb, const T* Gb, T* Ab,
    const long long nW, const long long nb,
    const T* l1w, const long long n_l1, const T* l2w, const long long n_l2,
    const T lr, const T b1, const T one_b1, const T b2, const T one_b2,
    const T eps, const T scale, const int avg_mode, const T avg_w)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nW + nb) return;
    const bool in_W = i < nW;
    const long long j = in_W ? i : i - nW;
    T* P = in_W ? W : b;
    T* M = in_W ? MW : Mb;
    T* S = in_W ? SW : Sb;
    const T g = in_W ? GW[j] : Gb[j];
    const T m = b1 * M[j] + one_b1 * g;
    const T s = b2 * S[j] + (g * g) * one_b2;
    const T r = SQRT(s) + eps;
    T p = P[j] - lr * (m / r);
    if (in_W && (n_l1 || n_l2)) p = prox_entry(p, scale / r, l1w, n_l1, l2w, n_l2, j);
    M[j] = m;
    S[j] = s;
    P[j] = p;
    average_entry(in_W ? AW : Ab, j, p, avg_mode, avg_w);
}
"""

_BLOCK = 256
# Minibatch-sized buffers (at most this many logits) are kept between calls;
# larger ones (full-batch chunks) come from CuPy's memory pool each time and
# are not held after the fit.
_MAX_KEPT_LOGITS = 1 << 22
_buffers = threading.local()  # Dask's threads evaluate chunks concurrently


_MATH = {
    "float32": "typedef float T;\n#define EXP expf\n#define SQRT sqrtf\n"
    "#define FABS fabsf\n#define COPYSIGN copysignf\n",
    "float64": "typedef double T;\n#define EXP exp\n#define SQRT sqrt\n"
    "#define FABS fabs\n#define COPYSIGN copysign\n",
}


def _typed_source(dtype, source=SOFTMAX_CE_SOURCE):
    name = np.dtype(dtype).name
    if name not in _MATH:
        raise TypeError(f"The fused CuPy kernels take float32 or float64, not {name}.")
    return _MATH[name] + source


def kernel_sources():
    """The CUDA sources, typed: ``{"softmax_ce_grad_float32": str, ...,
    "updates_float32": str, "updates_float64": str}`` (for compile checks and
    the host runs of the tests)."""
    out = {}
    for name in ("float32", "float64"):
        out[f"softmax_ce_grad_{name}"] = _typed_source(name)
        out[f"updates_{name}"] = _typed_source(name, UPDATE_SOURCE)
    return out


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
def _update_kernel(dtype_name, name):
    import cupy

    return cupy.RawKernel(_typed_source(dtype_name, UPDATE_SOURCE), name)


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


def device_weights(w, W):
    """Penalty weights ``w`` (a scalar or a (d,) vector) as a 1-D CuPy array
    in W's dtype on the current device, for the update kernels: one entry
    for a scalar, ``d = W.shape[1]`` entries for per-feature weights."""
    import cupy

    host = np.atleast_1d(np.asarray(w, dtype=np.float64))
    if host.ndim != 1 or host.size not in (1, W.shape[-1]):
        raise ValueError(
            f"Penalty weights must be a scalar or one per feature ({W.shape[-1]}), "
            f"not of shape {np.shape(w)}."
        )
    return cupy.asarray(host.astype(W.dtype))


def _check_update_arrays(params, grads, *groups):
    """The arrays a fused update writes: C-contiguous, one float dtype, each
    state array shaped as its parameter. Gradients are made C-contiguous
    (they are temporaries) but never cast."""
    if any(group is None for group in groups):
        raise ValueError("An average mode of 1 or 2 needs the average arrays.")
    dtype = params[0].dtype
    if np.dtype(dtype).name not in _MATH:
        raise TypeError(f"The fused CuPy updates take float32 or float64, not {dtype}.")
    if not 1 <= len(params) <= 2 or len(grads) != len(params):
        raise ValueError("The fused updates take [W] or [W, b] and their gradients.")
    for group in (params, *groups):
        if len(group) != len(params):
            raise ValueError("Each state list needs one array per parameter.")
        for a, p in zip(group, params, strict=True):
            if a.dtype != dtype or a.shape != p.shape or not a.flags.c_contiguous:
                raise ValueError(
                    "The fused updates need C-contiguous state arrays with the "
                    f"parameters' shape and dtype ({p.shape}, {dtype}); got "
                    f"{a.shape}, {a.dtype}."
                )
    out = []
    for g, p in zip(grads, params, strict=True):
        if g.dtype != dtype or g.shape != p.shape:
            raise ValueError(
                f"A gradient of shape {g.shape} and dtype {g.dtype} does not match "
                f"its parameter ({p.shape}, {dtype})."
            )
        out.append(g if g.flags.c_contiguous else _contiguous(g))
    return out


def _contiguous(a):
    import cupy

    return cupy.ascontiguousarray(a)


def _slots(arrays, params):
    """``(W-part, b-part)`` pointers of a list like ``params`` (a missing
    intercept or state array: W's, never read)."""
    if arrays is None:
        return params[0], params[0]
    return arrays[0], arrays[1] if len(arrays) == 2 else arrays[0]


def _penalty_args(l1, l2, like):
    return (
        like if l1 is None else l1,
        np.int64(0 if l1 is None else l1.size),
        like if l2 is None else l2,
        np.int64(0 if l2 is None else l2.size),
    )


def _launch(name, params, args):
    n_total = sum(p.size for p in params)
    if n_total:
        grid = ((n_total + _BLOCK - 1) // _BLOCK,)
        _update_kernel(params[0].dtype.name, name)(grid, (_BLOCK,), args)
    return params


def sgd_update(
    params,
    velocities,
    grads,
    *,
    lr,
    momentum,
    nesterov,
    prox_factor=1.0,
    l1=None,
    l2=None,
    average=None,
    average_mode=0,
    average_weight=0.0,
):
    """One minibatch of :class:`~sksoftmax._solvers.optimizers.SGD` in place,
    in ONE launch for ``[W]`` or ``[W, b]``: the momentum step (Nesterov's
    when ``nesterov``), the proximal step of ``l1``/``l2`` on W with step
    ``prox_factor * lr`` and the velocity correction, and the average.

    ``l1``, ``l2``: None or :func:`device_weights`; ``average``: None or a
    list like ``params``, started (``average_mode=1``) or moved towards the
    parameters by ``average_weight`` (``average_mode=2``)."""
    grads = _check_update_arrays(
        params, grads, velocities, *([average] if average_mode else [])
    )
    t = params[0].dtype.type
    W, b = _slots(params, params)
    v, g, a = _slots(velocities, params), _slots(grads, params), _slots(average, params)
    args = (
        *(W, v[0], g[0], a[0], b, v[1], g[1], a[1]),
        np.int64(W.size),
        np.int64(b.size if len(params) == 2 else 0),
        *_penalty_args(l1, l2, W),
        t(lr),
        t(momentum),
        np.int32(bool(nesterov)),
        t(prox_factor),
        t(prox_factor * lr),
        np.int32(average_mode),
        t(average_weight),
    )
    return _launch("sgd_update", params, args)


def adam_update(
    params,
    first,
    second,
    grads,
    *,
    lr,
    beta_1,
    beta_2,
    epsilon,
    prox_scale=0.0,
    l1=None,
    l2=None,
    average=None,
    average_mode=0,
    average_weight=0.0,
):
    """One minibatch of :class:`~sksoftmax._solvers.optimizers.Adam` in
    place, in ONE launch for ``[W]`` or ``[W, b]``: the moments, the step with
    the bias-corrected ``lr``, the proximal step of ``l1``/``l2`` on W with
    the per-entry step ``prox_scale / (sqrt(v) + epsilon)``, and the average
    (as in :func:`sgd_update`)."""
    grads = _check_update_arrays(
        params, grads, first, second, *([average] if average_mode else [])
    )
    t = params[0].dtype.type
    W, b = _slots(params, params)
    m, s, a = _slots(first, params), _slots(second, params), _slots(average, params)
    g = _slots(grads, params)
    args = (
        *(W, m[0], s[0], g[0], a[0], b, m[1], s[1], g[1], a[1]),
        np.int64(W.size),
        np.int64(b.size if len(params) == 2 else 0),
        *_penalty_args(l1, l2, W),
        t(lr),
        t(beta_1),
        t(1 - beta_1),
        t(beta_2),
        t(1 - beta_2),
        t(epsilon),
        t(prox_scale),
        np.int32(average_mode),
        t(average_weight),
    )
    return _launch("adam_update", params, args)
