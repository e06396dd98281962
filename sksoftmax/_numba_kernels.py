"""Fused loss+gradient kernel compiled with numba (optional accelerator).

For a tile of rows: logits ``z = W x + b`` (dot products along the
contiguous feature axis), the stable softmax, the weighted cross-entropy,
the residual ``r = w (p - t)`` and the gradient update ``G += r x^T`` while
the tile's rows (8) are in L1: ``X`` is read from memory once per evaluation.
"""

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

# Reassociation lets LLVM vectorize the dot products; no nnan/ninf, so that
# NaN and infinity propagate as on the NumPy path.
_FM = {"reassoc", "contract", "nsz", "arcp"}
_FLUSH = 256  # rows summed in X's dtype before they are added in float64


@numba.njit(nogil=True, fastmath=_FM, cache=True, inline="always")
def _logits4(W, X, i, Z, zr, koff, b, has_b, zero):
    """Z[zr + t, koff + k] = W[k] . X[i + t] (+ b[k]) for t < 4: two classes at a
    time (8 running sums, 6 loads per 8 multiply-adds)."""
    k_, d = W.shape
    k = 0
    while k + 2 <= k_:
        a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = zero
        for j in range(d):
            u = W[k, j]
            v = W[k + 1, j]
            x0 = X[i, j]
            x1 = X[i + 1, j]
            x2 = X[i + 2, j]
            x3 = X[i + 3, j]
            a0 += u * x0
            a1 += u * x1
            a2 += u * x2
            a3 += u * x3
            c0 += v * x0
            c1 += v * x1
            c2 += v * x2
            c3 += v * x3
        if has_b:
            a0 += b[k]
            a1 += b[k]
            a2 += b[k]
            a3 += b[k]
            c0 += b[k + 1]
            c1 += b[k + 1]
            c2 += b[k + 1]
            c3 += b[k + 1]
        Z[zr, koff + k] = a0
        Z[zr + 1, koff + k] = a1
        Z[zr + 2, koff + k] = a2
        Z[zr + 3, koff + k] = a3
        Z[zr, koff + k + 1] = c0
        Z[zr + 1, koff + k + 1] = c1
        Z[zr + 2, koff + k + 1] = c2
        Z[zr + 3, koff + k + 1] = c3
        k += 2
    if k < k_:
        a0 = a1 = a2 = a3 = zero
        for j in range(d):
            w = W[k, j]
            a0 += w * X[i, j]
            a1 += w * X[i + 1, j]
            a2 += w * X[i + 2, j]
            a3 += w * X[i + 3, j]
        if has_b:
            a0 += b[k]
            a1 += b[k]
            a2 += b[k]
            a3 += b[k]
        Z[zr, koff + k] = a0
        Z[zr + 1, koff + k] = a1
        Z[zr + 2, koff + k] = a2
        Z[zr + 3, koff + k] = a3


@numba.njit(nogil=True, fastmath=_FM, cache=True, inline="always")
def _logits8_one(W, X, i, Z, koff, b, has_b, zero):
    """One logit (binary): Z[t, koff] = W[0] . X[i + t] (+ b[0]) for t < 8
    (8 running sums)."""
    d = W.shape[1]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
    for j in range(d):
        w = W[0, j]
        a0 += w * X[i, j]
        a1 += w * X[i + 1, j]
        a2 += w * X[i + 2, j]
        a3 += w * X[i + 3, j]
        a4 += w * X[i + 4, j]
        a5 += w * X[i + 5, j]
        a6 += w * X[i + 6, j]
        a7 += w * X[i + 7, j]
    c = b[0] if has_b else zero
    Z[0, koff] = a0 + c
    Z[1, koff] = a1 + c
    Z[2, koff] = a2 + c
    Z[3, koff] = a3 + c
    Z[4, koff] = a4 + c
    Z[5, koff] = a5 + c
    Z[6, koff] = a6 + c
    Z[7, koff] = a7 + c


@numba.njit(nogil=True, fastmath=_FM, cache=True, inline="always")
def _grad8_one(X, i, Z, koff, G, gb):
    """One logit: G[0] += sum_t Z[t, koff] X[i + t] for t < 8."""
    d = G.shape[1]
    r0 = Z[0, koff]
    r1 = Z[1, koff]
    r2 = Z[2, koff]
    r3 = Z[3, koff]
    r4 = Z[4, koff]
    r5 = Z[5, koff]
    r6 = Z[6, koff]
    r7 = Z[7, koff]
    for j in range(d):
        G[0, j] += (
            (r0 * X[i, j] + r1 * X[i + 1, j] + r2 * X[i + 2, j])
            + (r3 * X[i + 3, j] + r4 * X[i + 4, j] + r5 * X[i + 5, j])
            + (r6 * X[i + 6, j] + r7 * X[i + 7, j])
        )
    gb[0] += r0 + r1 + r2 + r3 + r4 + r5 + r6 + r7


# -- exp, vectorizable -------------------------------------------------------
# LLVM vectorizes no call to libm's exp; the softmax's exponentials are
# formed here in two loops that it does vectorize: range reduction
# x = n ln2 + r, |r| <= ln2 / 2, with n rounded by the 1.5 * 2^52 (2^23) trick
# (compiled without reassociation, which would fold it away), a Taylor
# polynomial for exp(r) (error below one ulp) and 2^n from n's bits. For
# x <= 0 only (the shifted logits): below -708 (float32: -87.3) the result is
# exp(-708) instead of 0 or a subnormal; NaN stays NaN.


def vexp(a, e):
    """``a[:] = exp(a)`` for ``a <= 0``; ``e`` is scratch of a's size."""


_EXP_FM = {"contract"}


@numba.njit(nogil=True, fastmath=_EXP_FM, cache=True)
def _vexp64(a, e):
    for i in range(a.shape[0]):
        x = a[i]
        x = -708.0 if x < -708.0 else x
        t = x * 1.4426950408889634 + 6755399441055744.0
        n = t - 6755399441055744.0
        r = x - n * 6.93147180369123816490e-01
        r = r - n * 1.90821492927058770002e-10
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        a[i] = p
        e[i] = t
    bits = e.view(np.int64)
    for i in range(a.shape[0]):
        bits[i] = (bits[i] - 0x4338000000000000 + 1023) << 52
    for i in range(a.shape[0]):
        a[i] *= e[i]


@numba.njit(nogil=True, fastmath=_EXP_FM, cache=True)
def _vexp32(a, e):
    lo = np.float32(-87.3)
    log2e = np.float32(1.44269504)
    magic = np.float32(12582912.0)
    hi_ln2 = np.float32(0.693359375)
    lo_ln2 = np.float32(-2.12194440e-4)
    c7 = np.float32(1.0 / 5040.0)
    c6 = np.float32(1.0 / 720.0)
    c5 = np.float32(1.0 / 120.0)
    c4 = np.float32(1.0 / 24.0)
    c3 = np.float32(1.0 / 6.0)
    c2 = np.float32(0.5)
    one = np.float32(1.0)
    for i in range(a.shape[0]):
        x = a[i]
        x = lo if x < lo else x
        t = x * log2e + magic
        n = t - magic
        r = x - n * hi_ln2
        r = r - n * lo_ln2
        p = c7
        p = p * r + c6
        p = p * r + c5
        p = p * r + c4
        p = p * r + c3
        p = p * r + c2
        p = p * r + one
        p = p * r + one
        a[i] = p
        e[i] = t
    bits = e.view(np.int32)
    for i in range(a.shape[0]):
        bits[i] = (bits[i] - 0x4B400000 + 127) << 23
    for i in range(a.shape[0]):
        a[i] *= e[i]


@overload(vexp, jit_options={"nogil": True})
def _vexp_overload(a, e):
    if a.dtype == types.float32:
        return lambda a, e: _vexp32(a, e)
    return lambda a, e: _vexp64(a, e)


@numba.njit(nogil=True, cache=True)
def _softmax_rows(Z, E, nt, i, codes, T, hard, sw, has_w, eps, koff, mt):
    """Overwrite Z[:nt] by w_r (softmax - t_r) for the rows r = i + t; return
    the sum of w_r CE_r in float64. ``E`` is scratch of Z's size, ``mt`` a
    float64 scratch of Z's rows."""
    K = Z.shape[1]
    loss = 0.0
    for t in range(nt):
        r = i + t
        for k in range(koff):
            Z[t, k] = 0.0
        m = Z[t, 0]
        for k in range(1, K):
            if Z[t, k] > m:
                m = Z[t, k]
        for k in range(K):
            Z[t, k] -= m
        # sum_k t_k (z_k - m) and sum_k t_k, before the smoothing
        if hard:
            tz = float(Z[t, codes[r]])
            tsum = 1.0
        else:
            tz = 0.0
            tsum = 0.0
            for k in range(K):
                tz += float(T[r, k]) * float(Z[t, k])
                tsum += float(T[r, k])
        if eps:
            zs = 0.0
            for k in range(K):
                zs += float(Z[t, k])
            tz = (1.0 - eps) * tz + (eps / K) * zs
            tsum = (1.0 - eps) * tsum + eps
        mt[t] = float(m) * (1.0 - tsum) - tz
    vexp(Z.reshape(Z.size)[: nt * K], E.reshape(E.size)[: nt * K])
    off = eps / K
    keep = 1.0 - eps
    for t in range(nt):
        r = i + t
        s = Z[t, 0]
        for k in range(1, K):
            s += Z[t, k]
        w = float(sw[r]) if has_w else 1.0
        loss += w * (math.log(float(s)) + mt[t])
        inv = 1.0 / s
        if hard:
            for k in range(K):
                Z[t, k] = w * (Z[t, k] * inv - off)
            Z[t, codes[r]] -= w * keep
        else:
            for k in range(K):
                Z[t, k] = w * (Z[t, k] * inv - off - keep * T[r, k])
    return loss


@numba.njit(nogil=True, fastmath=_FM, cache=True, inline="always")
def _grad4(X, i, Z, zr, koff, G, gb):
    """G[k] += sum_t Z[zr + t, koff + k] X[i + t] for t < 4, two classes at a
    time."""
    k_, d = G.shape
    k = 0
    while k + 2 <= k_:
        r0 = Z[zr, koff + k]
        r1 = Z[zr + 1, koff + k]
        r2 = Z[zr + 2, koff + k]
        r3 = Z[zr + 3, koff + k]
        q0 = Z[zr, koff + k + 1]
        q1 = Z[zr + 1, koff + k + 1]
        q2 = Z[zr + 2, koff + k + 1]
        q3 = Z[zr + 3, koff + k + 1]
        for j in range(d):
            x0 = X[i, j]
            x1 = X[i + 1, j]
            x2 = X[i + 2, j]
            x3 = X[i + 3, j]
            G[k, j] += r0 * x0 + r1 * x1 + r2 * x2 + r3 * x3
            G[k + 1, j] += q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3
        gb[k] += r0 + r1 + r2 + r3
        gb[k + 1] += q0 + q1 + q2 + q3
        k += 2
    if k < k_:
        r0 = Z[zr, koff + k]
        r1 = Z[zr + 1, koff + k]
        r2 = Z[zr + 2, koff + k]
        r3 = Z[zr + 3, koff + k]
        for j in range(d):
            G[k, j] += (
                r0 * X[i, j] + r1 * X[i + 1, j] + r2 * X[i + 2, j] + (r3 * X[i + 3, j])
            )
        gb[k] += r0 + r1 + r2 + r3


@numba.njit(nogil=True, fastmath=_FM, cache=True)
def _tile_logits(W, Xs, xi, Z, koff, b, has_b, zero):
    """Logits of the 8 rows ``Xs[xi:xi + 8]`` into Z. Every row goes through
    the same code whatever its place in the tile, so that a row's logits do
    not depend on where the rows were cut (Dask chunks, row groups)."""
    if W.shape[0] == 1:
        _logits8_one(W, Xs, xi, Z, koff, b, has_b, zero)
    else:
        _logits4(W, Xs, xi, Z, 0, koff, b, has_b, zero)
        _logits4(W, Xs, xi + 4, Z, 4, koff, b, has_b, zero)


@numba.njit(nogil=True, fastmath=_FM, cache=True)
def _tile_grad(Xs, xi, Z, koff, G, gb):
    if G.shape[0] == 1:
        _grad8_one(Xs, xi, Z, koff, G, gb)
    else:
        _grad4(Xs, xi, Z, 0, koff, G, gb)
        _grad4(Xs, xi + 4, Z, 4, koff, G, gb)


@numba.njit(nogil=True, cache=True)
def _pad(X, i, stop, Xpad, transposed):
    """The rows i:stop (at most 8) of the data into Xpad, zeros after them;
    ``transposed``: X holds the data's transpose (d, n)."""
    nt = stop - i
    for t in range(8):
        for j in range(Xpad.shape[1]):
            if t >= nt:
                Xpad[t, j] = 0.0
            elif transposed:
                Xpad[t, j] = X[j, i + t]
            else:
                Xpad[t, j] = X[i + t, j]
    return nt


@numba.njit(nogil=True, fastmath=_FM, cache=True)
def loss_grad_rows(
    X, gather, W, b, has_b, codes, T, hard, sw, has_w, eps, K, start, stop
):
    """Sum of w_i CE_i (float64) and the unscaled gradients (float64) of the
    rows ``start:stop`` of the dense, C-contiguous ``X``. ``gather``: ``X``
    is the C-contiguous transpose (d, n) of Fortran-ordered data (so that one
    compiled kernel per dtype serves both orders); each tile of 8 rows is
    then copied into a C buffer first (a cache line per column), and runs
    through the same code, so the results equal those of a C-ordered copy.

    ``W`` (k, d) in X's dtype, k = K or 1 (binary: a fixed zero logit for
    class 0); ``codes`` (intp) when ``hard``, else ``T`` (n, K); ``sw`` when
    ``has_w``; ``b`` when ``has_b``; ``eps`` the label smoothing.
    """
    k_, d = W.shape
    koff = K - k_
    Z = np.empty((8, K), dtype=X.dtype)
    E = np.empty((8, K), dtype=X.dtype)
    mt = np.empty(8)
    Xpad = np.empty((8, d), dtype=X.dtype)
    G = np.zeros((k_, d), dtype=X.dtype)
    gb = np.zeros(k_, dtype=X.dtype)
    zero = gb[0]  # 0 in X's dtype
    G64 = np.zeros((k_, d))
    gb64 = np.zeros(k_)
    loss = 0.0
    i = start
    while i < stop:
        end = min(stop, i + _FLUSH)
        while i + 8 <= end:
            if gather:
                _pad(X, i, i + 8, Xpad, gather)
                _tile_logits(W, Xpad, 0, Z, koff, b, has_b, zero)
            else:
                _tile_logits(W, X, i, Z, koff, b, has_b, zero)
            loss += _softmax_rows(Z, E, 8, i, codes, T, hard, sw, has_w, eps, koff, mt)
            if gather:
                _tile_grad(Xpad, 0, Z, koff, G, gb)
            else:
                _tile_grad(X, i, Z, koff, G, gb)
            i += 8
        if i < end:  # the last rows: through the same code, padded with zeros
            nt = _pad(X, i, end, Xpad, gather)
            _tile_logits(W, Xpad, 0, Z, koff, b, has_b, zero)
            loss += _softmax_rows(Z, E, nt, i, codes, T, hard, sw, has_w, eps, koff, mt)
            Z[nt:] = 0.0
            _tile_grad(Xpad, 0, Z, koff, G, gb)
        i = end
        for k in range(k_):
            for j in range(d):
                G64[k, j] += G[k, j]
                G[k, j] = 0.0
            gb64[k] += gb[k]
            gb[k] = 0.0
    return loss, G64, gb64


@numba.njit(nogil=True, cache=True)
def _proba_tile(Z, E, nt, koff, out, i):
    """out[i + t] = softmax(Z[t]) for t < nt (Z's first koff columns are the
    fixed zero logits); return whether all logits were finite."""
    K = Z.shape[1]
    finite = True
    for t in range(nt):
        for k in range(koff):
            Z[t, k] = 0.0
        m = Z[t, 0]
        for k in range(1, K):
            if Z[t, k] > m:
                m = Z[t, k]
        for k in range(K):
            z = Z[t, k]
            finite &= z - z == 0
            Z[t, k] = z - m
    vexp(Z.reshape(Z.size)[: nt * K], E.reshape(E.size)[: nt * K])
    for t in range(nt):
        s = Z[t, 0]
        for k in range(1, K):
            s += Z[t, k]
        inv = 1.0 / s
        for k in range(K):
            out[i + t, k] = Z[t, k] * inv
    return finite


@numba.njit(nogil=True, fastmath=_FM, cache=True)
def proba_rows(X, gather, W, b, has_b, out, start, stop):
    """``out[start:stop] = softmax(X W^T + b)`` for the dense ``X``
    (``gather``: the transpose of Fortran-ordered data, as in
    :func:`loss_grad_rows`); ``out`` has
    K = max(k, 2) columns (binary: a zero logit for class 0). Returns whether
    all logits were finite."""
    k_, d = W.shape
    K = out.shape[1]
    koff = K - k_
    Z = np.empty((8, K), dtype=X.dtype)
    E = np.empty((8, K), dtype=X.dtype)
    zero = np.zeros(1, dtype=X.dtype)[0]
    finite = True
    i = start
    Xpad = np.empty((8, d), dtype=X.dtype)
    while i + 8 <= stop:
        if gather:
            _pad(X, i, i + 8, Xpad, gather)
            _tile_logits(W, Xpad, 0, Z, koff, b, has_b, zero)
        else:
            _tile_logits(W, X, i, Z, koff, b, has_b, zero)
        finite &= _proba_tile(Z, E, 8, koff, out, i)
        i += 8
    if i < stop:
        nt = _pad(X, i, stop, Xpad, gather)
        _tile_logits(W, Xpad, 0, Z, koff, b, has_b, zero)
        finite &= _proba_tile(Z, E, nt, koff, out, i)
    return finite
