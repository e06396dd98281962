"""The objective every solver minimizes.

Two layers, kept apart as in scikit-learn's ``_loss`` vs ``_linear_loss``:

* :func:`softmax_cross_entropy` works on raw logits of shape (n, K): the
  per-sample cross-entropy and its gradient ``softmax(O) - T``;
* :class:`LinearSoftmaxLoss` adds the linear model ``O = X W^T + b``, the
  sample weights and the L2 penalty, and exposes ``loss``, ``gradient`` and
  ``loss_gradient`` with the signature ``scipy.optimize.minimize`` wants.
"""

import threading

import numpy as np
import scipy.sparse as sp
import scipy.special
from sklearn import get_config

from ._backend import (
    accumulation_dtype,
    asarray_like,
    column_sums,
    device,
    device_of,
    get_namespace,
    is_cupy_namespace,
    is_numpy_namespace,
    is_sparse,
    matmul_t,
    on_device,
    t_matmul,
    to_numpy,
)
from ._cpu_kernels import (
    NUMBA_BLOCK_ROWS,
    block_groups,
    kernel_rows,
    map_groups,
    numba_kernels_for,
)

__all__ = ["LinearSoftmaxLoss", "softmax_cross_entropy"]

# The NumPy path works through X in blocks of rows whose slice of X and logits
# fit in about this many bytes (one core's L2 here), so that X is read from
# memory once per evaluation although it enters two products. With many
# classes the logits alone would make blocks too thin for BLAS: at least
# _MIN_BLOCK_ROWS rows (measured on 50k x 128 x 1,000, one thread: 512-2,048
# rows within 10%, 128 rows 30% slower).
_CACHE_BYTES = 2**21
_MIN_BLOCK_ROWS = 512
# A single block whose products are under this many flops each runs with
# NumPy's BLAS on one thread (see _cpu_kernels.map_groups).
_SMALL_FLOPS = 2**25
# Products that OpenBLAS runs on one thread by itself: its gemv (one logit,
# binary problems) threads from m * n = 2,304 * 4 on, its gemm from m * n * k
# = 65,536 * 4 on (GEMM_MULTITHREAD_THRESHOLD = 4). Below, holding NumPy's
# BLAS at one thread buys nothing and costs 10-15 us per evaluation (a
# quarter of one on an iris training fold).
_GEMV_ONE_THREAD = 2304 * 4
_GEMM_ONE_THREAD = 65536 * 4


def _target_dot(logits, target, xp, onehot=None):
    """Row-wise ``sum_k T_ik O_ik`` for integer codes or a target matrix
    (``onehot``: the codes' (n, K) boolean mask, when the caller has it)."""
    if target.ndim == 2:
        return xp.sum(target * logits, axis=1)
    if is_numpy_namespace(xp):
        return logits[np.arange(logits.shape[0]), target]
    if onehot is None:
        onehot = _onehot_mask(target, logits.shape[1], xp, device(logits))
    zero = xp.zeros((), dtype=logits.dtype, device=device(logits))
    return xp.sum(xp.where(onehot, logits, zero), axis=1)


def _onehot_mask(target, K, xp, dev):
    """The (n, K) boolean mask ``target[:, None] == arange(K)``."""
    return target[:, None] == xp.arange(K, device=dev)[None, :]


def softmax_cross_entropy(
    logits, target, weights=None, *, label_smoothing=0.0, xp=None
):
    """Weighted cross-entropy of softmax(logits) and its gradient.

    Parameters
    ----------
    logits : array of shape (n, K)
        Raw logits. On NumPy, and on CuPy with class codes (one fused
        kernel), they are overwritten by the gradient.
    target : array of shape (n,) with integer class codes, or (n, K)
        One-hot codes or rows of a target distribution.
    weights : array of shape (n,) or None
        Per-sample weights ``w_i``; None means all ones.
    label_smoothing : float in [0, 1)
        The target becomes ``(1 - eps) * T + eps / K``.

    Returns
    -------
    loss : float array of shape ()
        ``sum_i w_i H(T_i, softmax(O_i))``.
    grad : array of shape (n, K)
        ``w_i (softmax(O_i) - T_i)``, the gradient of ``loss`` wrt the logits.
    """
    xp = get_namespace(logits, xp=xp)
    if is_numpy_namespace(xp):
        # The kernel works with the class axis first; O.T is a view, so the
        # gradient lands in ``logits`` itself.
        loss = _softmax_ce_numpy(logits.T, target, weights, label_smoothing)
        return np.asarray(loss), logits
    with on_device(logits):
        if _fused_kernel_applies(logits, target, xp):
            from ._cupy_kernels import softmax_ce_grad

            return softmax_ce_grad(logits, target, weights, label_smoothing)
        return _softmax_ce_generic(logits, target, weights, label_smoothing, xp)


def _fused_kernel_applies(logits, target, xp):
    """CuPy's one-launch kernel: class codes and C-contiguous float logits."""
    return (
        is_cupy_namespace(xp)
        and target.ndim == 1
        and logits.flags.c_contiguous
        and logits.dtype.name in ("float32", "float64")
    )


# The (n, K) arrays of X's dtype that the array-API path holds at once, at its
# peak (the logits, their shifted copy and its exponential; later the logits,
# the gradient and the target), plus the boolean one-hot mask (counted whole).
# LinearSoftmaxLoss._chunk_rows sizes its chunks with it.
GENERIC_NK_TEMPORARIES = 4
# Per-row vectors (max, sum, target dot, CE, weights), counted at 8 bytes.
GENERIC_ROW_VECTORS = 6


def _softmax_ce_generic(logits, target, weights, eps, xp):
    """:func:`softmax_cross_entropy` in any Array API namespace: the
    reference for the fused CuPy kernel. Holds at most
    ``GENERIC_NK_TEMPORARIES`` (n, K) arrays at once (in-place updates where
    the standard has them); the loss is summed in float64 where the device
    has it, as on the CPU, so that float32 fits stop at the same point."""
    n, K = logits.shape
    dev = device(logits)
    acc = accumulation_dtype(xp, dev)
    hard = target.ndim == 1
    onehot = _onehot_mask(target, K, xp, dev) if hard else None
    t_dot_o = _target_dot(logits, target, xp, onehot)
    if eps:
        t_dot_o = (1 - eps) * t_dot_o + (eps / K) * xp.sum(logits, axis=1)
    m = xp.max(logits, axis=1, keepdims=True)
    G = xp.exp(logits - m)
    s = xp.sum(G, axis=1, keepdims=True)
    ce = xp.log(s[:, 0]) + m[:, 0] - t_dot_o
    G /= s
    if hard:
        T = xp.astype(onehot, G.dtype)
        del onehot
        if eps:
            T *= 1 - eps
    else:
        T = target if not eps else (1 - eps) * target
    G -= T
    del T
    if eps:
        G -= eps / K
    if weights is None:
        return xp.sum(ce, dtype=acc), G
    G *= weights[:, None]
    return xp.sum(ce * weights, dtype=acc), G


def _softmax_ce_numpy(Z, target, weights, eps, *, flat_index=None, work=None):
    """NumPy kernel of :func:`softmax_cross_entropy`, all in place in ``Z``.

    ``Z`` holds the logits with the class axis first, shape (K, n): every
    per-sample reduction then runs over the short leading axis, which NumPy
    vectorizes along the long contiguous one when ``Z`` is C-contiguous
    (the layout the linear loss allocates; an (n, K) array's ``.T`` works too,
    only slower). ``Z`` is overwritten by ``w_i (softmax - T_i)``.

    ``flat_index`` (optional) is ``target * n + arange(n)``, the positions of
    the true classes in ``Z.ravel()``; ``work`` (optional) is a float array of
    shape (>= 3, n) for the per-sample scratch. Returns the weighted loss sum
    as a float64 scalar.
    """
    K, n = Z.shape
    if work is None:
        work = np.empty((3, n), dtype=Z.dtype)
    mx, s, ce = work[0, :n], work[1, :n], work[2, :n]
    _reduce_classes(np.maximum, Z, mx)
    Z -= mx
    hard = target.ndim == 1
    # The true classes' positions in the flat buffer of Z (C order) or of
    # Z.T (an (n, K) array passed by softmax_cross_entropy).
    flat = (
        Z.ravel()
        if Z.flags.c_contiguous
        else Z.T.ravel()
        if Z.T.flags.c_contiguous
        else None
    )
    if hard:
        if flat_index is None and flat is not None:
            flat_index = (
                target * n + np.arange(n)
                if Z.flags.c_contiguous
                else np.arange(n) * K + target
            )
        tz = (
            flat.take(flat_index) if flat_index is not None else Z[target, np.arange(n)]
        )
        t_sum = 1.0
    else:
        tz = np.einsum("kn,nk->n", Z, target)
        t_sum = target.sum(axis=1)
    if eps:
        tz *= 1 - eps
        tz += (eps / K) * np.add.reduce(Z, axis=0)
        t_sum = (1 - eps) * t_sum + eps
    np.exp(Z, out=Z)
    _reduce_classes(np.add, Z, s)
    # CE_i = log s_i + m_i - sum_k t_ik (z_ik + m_i), z the shifted logits.
    np.log(s, out=ce)
    ce -= tz
    if not hard:
        ce += mx * (1 - t_sum)
    np.reciprocal(s, out=s)
    Z *= s
    if hard and flat_index is not None:
        flat[flat_index] -= 1 - eps
    elif hard:
        Z[target, np.arange(n)] -= 1 - eps
    else:
        Z -= target.T if not eps else (1 - eps) * target.T
    if eps:
        Z -= eps / K
    if weights is not None:
        Z *= weights
        ce *= weights
    return np.add.reduce(ce, dtype=np.float64)


def _blas_on_one_thread(m, d, k):
    """True when OpenBLAS runs the products of an (m, d) block with k logits
    on one thread by itself (gemv for k = 1, else gemm)."""
    return m * d < _GEMV_ONE_THREAD if k == 1 else m * d * k <= _GEMM_ONE_THREAD


def _reduce_classes(ufunc, Z, out):
    """``ufunc.reduce(Z, axis=0, out=out)`` for the (K, n) logits. When the
    classes are the fast axis in memory (an (n, K) array seen through ``.T``)
    and few, NumPy's reduction over a short contiguous axis is slow (measured
    4.1 ms vs 2.2 ms for 100k x 10): a loop over the K strided rows is used."""
    if Z.flags.c_contiguous or Z.shape[0] > 32:
        ufunc.reduce(Z, axis=0, out=out)
        return
    np.copyto(out, Z[0])
    for k in range(1, Z.shape[0]):
        ufunc(out, Z[k], out=out)


class LinearSoftmaxLoss:
    r"""The softmax regression objective on data ``X``.

    .. math::

        J(W, b) = \frac{1}{S} \sum_i s_i \,
                  \mathrm{CE}(T_i, \mathrm{softmax}(W x_i + b))
                  + \frac{\alpha}{2} \lVert W \rVert_F^2,
        \qquad S = \sum_i s_i,

    with ``alpha = 1 / (C * S_total)`` fixed by the caller, so that a
    minibatch estimate (``S`` summed over the batch) heads to the same optimum.

    Coefficient layout: ``coef`` is a flat vector ``[W.ravel(), b]`` where
    ``W`` has shape (k, d) in C order and ``b`` has shape (k,) and is present
    only when ``fit_intercept``. ``k = n_classes`` for three or more classes;
    for two classes ``k = 1``: one logit for class 1 against a fixed zero logit
    for class 0, which is LogisticRegression's binary parametrization.

    Parameters
    ----------
    n_classes : int >= 2
    n_features : int
    fit_intercept : bool
    alpha : float >= 0
        L2 strength, ``1 / (C * S)``; 0 for no penalty.
    label_smoothing : float in [0, 1)
    """

    def __init__(
        self,
        n_classes,
        n_features,
        *,
        fit_intercept=True,
        alpha=0.0,
        label_smoothing=0.0,
    ):
        self.n_classes = n_classes
        self.n_features = n_features
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.label_smoothing = label_smoothing

    @property
    def n_logits(self):
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def n_params(self):
        return self.n_logits * (self.n_features + int(self.fit_intercept))

    def unpack(self, coef, *, xp=None):
        """Views ``W`` (k, d) and ``b`` (k,) or None into a flat ``coef``."""
        xp = get_namespace(coef, xp=xp)
        k, d = self.n_logits, self.n_features
        W = xp.reshape(coef[: k * d], (k, d))
        b = coef[k * d :] if self.fit_intercept else None
        return W, b

    # -- the pieces ----------------------------------------------------------

    def logits(self, X, W, b, *, xp=None):
        """Full logits of shape (n, n_classes); binary gets a zero column 0."""
        xp = get_namespace(X, W, xp=xp)
        raw = matmul_t(X, W)
        if b is not None:
            raw = raw + b
        if self.n_classes == 2:
            raw = xp.concat([xp.zeros_like(raw), raw], axis=1)
        return raw

    def penalty(self, W, *, xp=None):
        """``alpha / 2 * ||W||^2`` as a 0-d array (0.0 without penalty)."""
        if not self.alpha:
            return 0.0
        xp = get_namespace(W, xp=xp)
        return 0.5 * self.alpha * xp.sum(W * W)

    def _chunk_rows(self, X):
        """Rows per chunk of the array-API path, so that what it holds at
        once per row fits in ``working_memory``: ``GENERIC_NK_TEMPORARIES``
        (n, K) arrays of X's dtype and ``GENERIC_ROW_VECTORS`` per-row
        vectors (X's own rows are views, not counted)."""
        itemsize = 4 if "float32" in str(X.dtype) else 8
        budget = get_config()["working_memory"] * 2**20
        per_row = GENERIC_NK_TEMPORARIES * self.n_classes * itemsize
        per_row += GENERIC_ROW_VECTORS * 8
        return max(1, int(budget // per_row))

    def loss_gradient_arrays(self, W, b, X, target, sample_weight=None, *, xp=None):
        """Objective and gradient for arrays in X's namespace.

        Returns ``(loss, grad_W, grad_b)`` in the namespace and on the device
        of ``X``: the gradients in X's dtype, ``loss`` a 0-d array summed in
        float64 where the device has it (as on the CPU), so that a caller on
        a GPU decides when to synchronise; ``grad_b`` is None without an
        intercept. Runs inside the device context of ``X``
        (:func:`~sksoftmax._backend.on_device`).
        """
        xp = get_namespace(X, W, xp=xp)
        if is_numpy_namespace(xp):
            return self._loss_gradient_numpy(W, b, X, target, sample_weight)
        with on_device(X):
            return self._loss_gradient_generic(W, b, X, target, sample_weight, xp)

    def _loss_gradient_generic(self, W, b, X, target, sample_weight, xp):
        n = X.shape[0]
        acc = accumulation_dtype(xp, device_of(X))
        if sample_weight is None:
            S = xp.asarray(float(n), dtype=acc, device=device_of(X))
        else:  # a minibatch may hold only zero weights: then its gradient is 0
            S = xp.sum(sample_weight, dtype=acc)
            S = xp.where(S > 0, S, xp.ones_like(S))
        step = self._chunk_rows(X)
        loss, gW, gb = 0.0, None, None
        for start in range(0, n, step):
            stop = min(n, start + step)
            whole = not (start or stop < n)
            # A trailing ... for the Array API; sparse matrices take rows alone.
            Xc = X if whole else X[start:stop] if is_sparse(X) else X[start:stop, ...]
            tc = target if whole else target[start:stop, ...]
            wc = None if sample_weight is None else sample_weight[start:stop]
            lc, gWc, gbc = self._chunk_sums(W, b, Xc, tc, wc, xp)
            loss = loss + lc
            gW = gWc if gW is None else gW + gWc
            if gbc is not None:
                gb = gbc if gb is None else gb + gbc
        S_data = xp.astype(S, X.dtype)  # float32 gradients stay float32
        gW = gW / S_data
        if self.alpha:
            gW = gW + self.alpha * W
        if gb is not None:
            gb = gb / S_data
        penalty = 0.5 * self.alpha * xp.sum(W * W, dtype=acc) if self.alpha else 0.0
        return loss / S + penalty, gW, gb

    def _chunk_sums(self, W, b, Xc, tc, wc, xp):
        """Unscaled loss sum (float64), ``G^T X`` and ``ones^T G`` of a chunk.
        On CuPy the logits go into a buffer reused across minibatches and the
        softmax step is one fused kernel."""
        if is_cupy_namespace(xp) and tc.ndim == 1 and not is_sparse(Xc):
            from ._cupy_kernels import logits_buffer

            Z, ce, ones = logits_buffer(Xc.shape[0], self.n_classes, Xc.dtype)
            self._logits_into(Z, Xc, W, b)
        else:
            Z, ce, ones = self.logits(Xc, W, b, xp=xp), None, None
        if ce is not None:
            from ._cupy_kernels import softmax_ce_grad

            lc, G = softmax_ce_grad(Z, tc, wc, self.label_smoothing, ce=ce)
        else:
            lc, G = softmax_cross_entropy(
                Z, tc, wc, label_smoothing=self.label_smoothing, xp=xp
            )
        if self.n_classes == 2:
            G = G[:, 1:]
        gW = t_matmul(G, Xc)
        if not self.fit_intercept:
            return lc, gW, None
        gb = column_sums(G, xp) if ones is None else ones @ G
        return lc, gW, gb

    def _logits_into(self, Z, X, W, b):
        """CuPy: the full logits (binary: a zero column 0) written into ``Z``."""
        import cupy

        if self.n_classes == 2:
            Z[:, 0] = 0
            Z[:, 1:] = X @ W.T
            if b is not None:
                Z[:, 1:] += b
            return
        cupy.matmul(X, W.T, out=Z)
        if b is not None:
            Z += b

    # -- the NumPy fast path ---------------------------------------------------

    def _block_rows(self, X):
        """Rows per block of the NumPy path: the working-memory bound of
        :meth:`_chunk_rows`, and small enough that a block of ``X`` and its
        logits stay in one core's cache between the two products."""
        itemsize = X.dtype.itemsize
        budget = get_config()["working_memory"] * 2**20
        rows = max(1, int(budget // (3 * self.n_classes * itemsize)))
        if is_sparse(X):
            return rows
        per_row = (X.shape[1] + 2 * self.n_classes) * itemsize
        return min(rows, max(_MIN_BLOCK_ROWS, _CACHE_BYTES // per_row))

    def _scratch(self):
        """Per-thread scratch space: Dask's threaded scheduler evaluates the
        chunks of one loss object concurrently."""
        tls = self.__dict__.get("_tls")
        if tls is None:
            tls = self.__dict__.setdefault("_tls", threading.local())
        return tls

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_tls", None)  # buffers and caches are rebuilt on demand
        return state

    def _workspace(self, dtype, rows, d):
        """Scratch reused across evaluations, one per thread: the (K, rows)
        logits, which become the gradient, the (rows, K) logits where BLAS
        forms them faster in that layout, a (k, d) product and three
        per-sample vectors. Reallocated only when the dtype or the number of
        features changes or more rows are needed."""
        tls = self._scratch()
        ws = getattr(tls, "ws", None)
        if ws is None or ws["dtype"] != dtype or ws["rows"] < rows or ws["d"] != d:
            K = self.n_classes
            ws = {
                "dtype": dtype,
                "rows": rows,
                "d": d,
                "Z": np.empty(K * rows, dtype=dtype),
                "Zt": np.empty(K * rows, dtype=dtype) if dtype == np.float32 else None,
                "gW": np.empty((self.n_logits, d), dtype=dtype),
                "work": np.empty((3, rows), dtype=dtype),
            }
            tls.ws = ws
        return ws

    def _flat_index(self, target, step):
        """For every sample, the position of its class in the (K, m) logits
        of its block of ``step`` rows (``m`` rows in the last block). Cached:
        a full-batch solver passes the same ``target`` at every evaluation
        (it is never modified in place)."""
        tls = self._scratch()
        cached = getattr(tls, "index", None)
        if cached is not None and cached[0] is target and cached[1] == step:
            return cached[2]
        n = target.shape[0]
        flat = target.astype(np.intp)
        if n <= step:  # one block (every minibatch): no per-block offsets
            flat *= n
            flat += np.arange(n)
        else:
            rows = np.arange(n)
            starts = rows - rows % step
            flat *= np.minimum(step, n - starts)
            flat += rows - starts
        tls.index = (target, step, flat)
        return flat

    def _loss_gradient_numpy(self, W, b, X, target, sample_weight):
        """:meth:`loss_gradient_arrays` for NumPy (dense or SciPy sparse ``X``).

        Block by block of rows, the logits are formed transposed,
        ``Z = W X_B^T`` of shape (K, m), in a reused buffer (no copy of
        ``X``); softmax, loss and gradient are formed in place in ``Z``; then
        ``Z X_B`` adds to the weight gradient and ``Z 1`` to the intercept's.
        Binary problems put their one logit in row 1 of a (2, m) buffer whose
        row 0 is the fixed zero logit of class 0. Dense blocks are shared
        among threads (:mod:`._cpu_kernels`); the partial sums of each group
        of blocks are added in a fixed order.
        """
        kernels = self._numba_kernels_for(X)
        if kernels is not None:
            return self._loss_gradient_numba(kernels, W, b, X, target, sample_weight)
        dtype = X.dtype
        W = np.asarray(W, dtype=dtype)
        b = None if b is None else np.asarray(b, dtype=dtype)
        n = X.shape[0]
        S = n if sample_weight is None else float(sample_weight.sum())
        S = S if S > 0 else 1.0
        step = min(n, self._block_rows(X))
        flat = self._flat_index(target, step) if target.ndim == 1 else None

        def run(group):
            return self._blocks(W, b, X, target, sample_weight, flat, step, group)

        groups = block_groups(n, step)
        small = 2 * n * X.shape[1] * self.n_logits < _SMALL_FLOPS
        small = small and not _blas_on_one_thread(step, X.shape[1], self.n_logits)
        parts = map_groups(
            run, groups, threads=1 if is_sparse(X) else None, small=small
        )
        loss = sum(p[0] for p in parts)
        gW = parts[0][1]
        gb = parts[0][2]
        for _, gWp, gbp in parts[1:]:
            gW += gWp
            if gb is not None:
                gb += gbp
        gW /= S
        if self.alpha:
            gW += self.alpha * W
        if gb is not None:
            gb /= S
        penalty = 0.5 * self.alpha * float(np.vdot(W, W)) if self.alpha else 0.0
        return np.float64(loss / S + penalty), gW, gb

    def _numba_kernels_for(self, X):
        """The numba kernels where they apply to ``X`` and this model
        (:func:`numba_kernels_for`), else None (the NumPy path)."""
        return numba_kernels_for(X, self.n_logits)

    def _numba_codes(self, target):
        """Class codes as intp, checked to lie in [0, K) (the kernel reads
        ``Z[code]`` unchecked); cached for the ``target`` a full-batch solver
        passes at every evaluation."""
        tls = self._scratch()
        cached = getattr(tls, "numba_codes", None)
        if cached is not None and cached[0] is target:
            return cached[1]
        codes = np.ascontiguousarray(target, dtype=np.intp)
        if codes.size and (codes.min() < 0 or codes.max() >= self.n_classes):
            raise ValueError(
                f"Class codes must lie in [0, {self.n_classes}), got "
                f"[{codes.min()}, {codes.max()}]."
            )
        tls.numba_codes = (target, codes)
        return codes

    def _loss_gradient_numba(self, kernels, W, b, X, target, sample_weight):
        """:meth:`_loss_gradient_numpy` by the fused numba kernel: each group
        of rows (:func:`block_groups`, the same groups for any number of
        threads) on one worker thread, its float64 sums added in group order.
        The kernel sums the gradient over 256 rows in X's dtype, then in
        float64; the loss is summed in float64."""
        dtype = X.dtype
        K, k = self.n_classes, self.n_logits
        n = X.shape[0]
        W = np.ascontiguousarray(W, dtype=dtype)
        has_b = b is not None
        bv = np.ascontiguousarray(b, dtype=dtype) if has_b else np.zeros(k, dtype)
        hard = target.ndim == 1
        if hard:
            codes = self._numba_codes(target)
            T = np.empty((0, K), dtype=dtype)
        else:
            codes = np.empty(0, dtype=np.intp)
            T = np.ascontiguousarray(target, dtype=dtype)
        has_w = sample_weight is not None
        sw = (
            np.ascontiguousarray(sample_weight, dtype=dtype)
            if has_w
            else np.empty(0, dtype=dtype)
        )
        S = n if sample_weight is None else float(sample_weight.sum())
        S = S if S > 0 else 1.0
        eps = float(self.label_smoothing)
        Xk, gather = kernel_rows(X)

        def run(group):
            return kernels.loss_grad_rows(
                Xk, gather, W, bv, has_b, codes, T, hard, sw, has_w, eps, K,
                group[0][0], group[-1][1],
            )  # fmt: skip

        parts = map_groups(run, block_groups(n, NUMBA_BLOCK_ROWS), blas=False)
        loss = sum(p[0] for p in parts)
        gW, gb = parts[0][1], parts[0][2]
        for _, gWp, gbp in parts[1:]:
            gW += gWp
            gb += gbp
        gW = (gW / S).astype(dtype, copy=False)
        if self.alpha:
            gW += self.alpha * W
        gb = (gb / S).astype(dtype, copy=False) if has_b else None
        penalty = 0.5 * self.alpha * float(np.vdot(W, W)) if self.alpha else 0.0
        return np.float64(loss / S + penalty), gW, gb

    def _blocks(self, W, b, X, target, sample_weight, flat, step, group):
        """Loss sum (float64) and unscaled gradients of the row ranges
        ``group`` (blocks of at most ``step`` rows), in this thread's
        workspace."""
        K, k = self.n_classes, self.n_logits
        sparse = is_sparse(X)
        ws = self._workspace(X.dtype, step, self.n_features)
        # OpenBLAS forms float32 logits about 1.4x faster as X_B W^T (m, K)
        # than as W X_B^T (K, m) (measured, one thread, K = 10 and 20); in
        # float64 the (K, m) product is faster. A (m, K) block is transposed
        # into Z: K m numbers, in cache.
        rows_first = not sparse and X.dtype == np.float32
        loss = 0.0
        gW = np.zeros((k, self.n_features), dtype=X.dtype)
        gb = np.zeros(k, dtype=X.dtype) if b is not None else None
        for start, stop in group:
            m = stop - start
            Xc = X[start:stop] if (start or stop < X.shape[0]) else X
            Z = ws["Z"][: K * m].reshape(K, m)
            if K == 2:
                Z[0] = 0.0
            if sparse:
                Z[K - k :] = (Xc @ W.T).T
            elif rows_first:
                Zt = ws["Zt"][: k * m].reshape(m, k)
                np.matmul(Xc, W.T, out=Zt)
                Z[K - k :] = Zt.T
            else:
                np.matmul(W, Xc.T, out=Z[K - k :])
            if b is not None:
                Z[K - k :] += b[:, None]
            loss += _softmax_ce_numpy(
                Z,
                target[start:stop],
                None if sample_weight is None else sample_weight[start:stop],
                self.label_smoothing,
                work=ws["work"],
                flat_index=None if flat is None else flat[start:stop],
            )
            G = Z[K - k :]
            if sparse:
                gW += (Xc.T @ G.T).T
            else:
                gW += np.matmul(G, Xc, out=ws["gW"])
            if gb is not None:
                gb += np.add.reduce(G, axis=1)
        return loss, gW, gb

    # -- scipy.optimize interface -------------------------------------------

    def loss_gradient(self, coef, X, target, sample_weight=None):
        """``(J, dJ/dcoef)`` for a flat float64 NumPy ``coef``.

        Only ``coef`` and the gradient (d*k numbers) cross between host and
        the device of ``X``: off NumPy, the loss and both gradients come back
        as one packed float64 vector, one device-to-host transfer per call.
        """
        k, d = self.n_logits, self.n_features
        if type(X) is np.ndarray or sp.issparse(X):
            # NumPy, without the namespace plumbing (it shows on small data)
            b = coef[k * d :] if self.fit_intercept else None
            loss, gW, gb = self._loss_gradient_numpy(
                coef[: k * d].reshape(k, d), b, X, target, sample_weight
            )
        else:
            xp = get_namespace(X)
            with on_device(X):
                W, b = self.unpack(asarray_like(coef, X, xp=xp), xp=xp)
                loss, gW, gb = self.loss_gradient_arrays(
                    W, b, X, target, sample_weight, xp=xp
                )
                if not is_numpy_namespace(xp):
                    host = to_numpy(self.pack(loss, gW, gb, xp=xp))
                    host = np.asarray(host, dtype=np.float64)
                    return float(host[0]), host[1:]
        grad = np.empty(self.n_params, dtype=np.float64)
        grad[: k * d] = to_numpy(gW).ravel()
        if gb is not None:
            grad[k * d :] = to_numpy(gb)
        return float(loss), grad

    def hessian(self, coef, X, sample_weight=None):
        """The Hessian of J at a flat float64 ``coef``, for NumPy (dense or
        SciPy sparse) ``X``: a dense float64 (n_params, n_params) matrix in
        the flat layout ``[W.ravel(), b]``.

        Cross-entropy against any target whose rows sum to one (labels,
        smoothed labels, probabilities) has the Hessian ``diag(p) - p p^T``
        in the logits, whatever the target; so block ``(a, c)`` is
        ``X1^T diag(w (delta_ac p_a - p_a p_c)) X1 / S`` with ``X1 = [X, 1]``
        (``[X]`` without an intercept), plus ``alpha`` on the diagonal of
        ``W``. A binary model has the one block ``w p (1 - p)``. Forming it
        costs about ``n (d + 1)^2 k (k + 1) / 2`` multiply-adds: meant for
        problems with few parameters (Newton's method on small data).
        """
        k, d = self.n_logits, self.n_features
        W = np.asarray(coef[: k * d].reshape(k, d), dtype=X.dtype)
        logits = np.asarray(X @ W.T, dtype=np.float64)
        if self.fit_intercept:
            logits += coef[k * d :]
        n = X.shape[0]
        if k == 1:
            p = scipy.special.expit(logits)
            curv = p * (1 - p)  # (n, 1)
        else:
            p = scipy.special.softmax(logits, axis=1)
            curv = -p[:, :, None] * p[:, None, :]  # (n, k, k)
            curv[:, np.arange(k), np.arange(k)] += p
            curv = curv.reshape(n, k * k)
        S = float(n)
        if sample_weight is not None:
            curv *= sample_weight[:, None]
            S = float(np.sum(sample_weight)) or 1.0
        # H[a, i, c, j] = sum_n X[n, i] X[n, j] curv[n, a, c], and so on
        H = np.empty((self.n_params, self.n_params))
        m = k * d
        H[:m, :m] = (
            _weighted_grams(X, curv)
            .reshape(d, d, k, k)
            .transpose(2, 0, 3, 1)
            .reshape(m, m)
        )
        if self.fit_intercept:
            Xc = np.asarray(X.T @ curv, dtype=np.float64).reshape(d, k, k)
            H[:m, m:] = Xc.transpose(1, 0, 2).reshape(m, k)
            H[m:, :m] = H[:m, m:].T
            H[m:, m:] = curv.sum(axis=0).reshape(k, k)
        H /= S
        if self.alpha:
            H[np.arange(m), np.arange(m)] += self.alpha
        return H

    def pack(self, loss, gW, gb, *, xp):
        """``[loss, gW.ravel(), gb]`` as one vector on the device, in the
        accumulation dtype (float64 where the device has it), so that it
        leaves the device in one transfer."""
        acc = accumulation_dtype(xp, device(gW))
        parts = [
            xp.reshape(xp.astype(xp.asarray(loss), acc), (1,)),
            xp.reshape(xp.astype(gW, acc), (-1,)),
        ]
        if gb is not None:
            parts.append(xp.astype(gb, acc))
        return xp.concat(parts)

    def loss(self, coef, X, target, sample_weight=None):
        return self.loss_gradient(coef, X, target, sample_weight)[0]

    def gradient(self, coef, X, target, sample_weight=None):
        return self.loss_gradient(coef, X, target, sample_weight)[1]


def _weighted_grams(X, V, rows=256):
    """``sum_n X[n, i] X[n, j] V[n, c]`` as a float64 (d, d, q) array, for
    dense or SciPy sparse ``X`` (n, d) and ``V`` (n, q); dense ``X`` in
    blocks of ``rows`` rows, so that the (rows, d, q) temporary stays small."""
    n, d = X.shape
    q = V.shape[1]
    if sp.issparse(X):
        grams = [(X.T @ X.multiply(V[:, [c]])) for c in range(q)]
        return np.stack([np.asarray(G.toarray(), float) for G in grams], axis=2)
    out = np.zeros((d, d * q))
    for start in range(0, n, rows):
        Xb = np.asarray(X[start : start + rows], dtype=np.float64)
        XV = (Xb[:, :, None] * V[start : start + rows, None, :]).reshape(-1, d * q)
        out += Xb.T @ XV
    return out.reshape(d, d, q)
