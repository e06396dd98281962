r"""Diagonal preconditioning: the same objective J in scaled, centered variables.

With feature scales ``s`` (d,) and, for dense input with an intercept, feature
means ``mu`` (d,), the solvers work in

.. math::

    V = W \operatorname{diag}(s), \qquad c = b + W \mu,

so that the logits are ``W x + b = V \operatorname{diag}(s)^{-1} (x - \mu) + c``:
in ``(V, c)`` every feature looks standardized. X is never copied or changed:
every evaluation maps ``(V, c)`` back to ``(W, b)`` and evaluates J on the raw
X. Only the path to the optimum changes, not the optimum.

:class:`ColumnStats` gathers ``mu``, ``s`` and the largest squared row norm
in one pass over blocks of rows (one in-memory array, memmap blocks or Dask
chunks; dense or sparse, any array namespace); :func:`block_curvature` the
largest squared row norm and the top eigenvalue of the second moment of a
block in the scaled variables, for the default step of SGD and Adam.
"""

import copy
import weakref

import numpy as np

from ._backend import asarray_like, device, get_namespace, is_sparse, to_numpy

__all__ = [
    "ColumnStats",
    "Preconditioner",
    "ScaledProblem",
    "ScaledMinibatchLoss",
    "block_curvature",
    "block_row_norms",
    "default_learning_rate",
    "original_gradient_norm",
    "projected_gradient",
]

# Rows per slice when a block's statistics need a temporary of its size.
_STATS_BYTES = 2**24
# The cross-entropy's curvature per logit that the L2 strength is weighed
# against in the scales (ColumnStats.preconditioner). Its bound, 1/4, for
# SGD and Adam: their strength is partial_fit's first-call estimate, which
# shrinks as the stream goes on (with 1/25 a 20-round partial_fit stream
# ended 3% above the optimum instead of within 1%). For L-BFGS, whose
# strength is exact, a typical curvature near the optimum (p (1 - p) of a
# confident prediction is far below 1/4). Measured by
# benchmarks/bench_solvers.py (L-BFGS iterations to 1e-8 of the optimum,
# 1/4 -> 1/25): raw digits 743 -> 340, the unscaled synthetic sets 31/29/27
# -> 29/28/19, the unscaled sparse set 93 -> 67; the standardized copies
# unchanged (+-1). 1/100 took raw digits to 203 but the unscaled 5000 x 20 x
# 3 set from 29 to 34.
CURVATURE_BOUND = 0.25
LBFGS_CURVATURE = 0.04


class ColumnStats:
    """Running (weighted) column means, centered sums of squares and sums of
    squares, all float64 NumPy; ``n`` is the total weight.

    ``update(block)`` takes a dense block (any array namespace) or a sparse
    matrix (SciPy or CuPy) of shape (m, d) and returns ``self``; ``merge``
    combines two partial results (Chan et al.'s pairwise update), so chunks
    may be reduced in any tree. Call :meth:`preconditioner` at the end.
    """

    def __init__(self):
        self.n = 0
        self.mean = None
        self.m2 = None  # sum of squared deviations from the mean
        self.sumsq = None  # sum of squares
        self.sparse = False
        self.n_features = 0
        self.itemsize = 8

    def update(self, block, sample_weight=None):
        """Add the rows of ``block``, weighted by ``sample_weight`` (m,) or
        None (in the namespace of ``block``); returns ``self``. Weighted
        statistics make a weighted fit and the fit on repeated rows take
        the same path."""
        self.n_features = block.shape[1]
        if block.shape[0] == 0:
            return self
        stats = _sparse_block_stats if is_sparse(block) else _dense_block_stats
        return self.merge(stats(block, sample_weight))

    def merge(self, other):
        """Fold another :class:`ColumnStats` into this one; returns ``self``."""
        if other.n == 0:
            return self
        self.sparse = self.sparse or other.sparse
        self.n_features = max(self.n_features, other.n_features)
        self.itemsize = min(self.itemsize, other.itemsize)
        if self.n == 0:
            self.n, self.mean = other.n, other.mean.copy()
            self.m2, self.sumsq = other.m2.copy(), other.sumsq.copy()
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.n / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        self.sumsq = self.sumsq + other.sumsq
        self.n = n
        return self

    def preconditioner(self, *, center, alpha=0.0, curvature=CURVATURE_BOUND):
        """The :class:`Preconditioner` of the rows seen so far.

        ``center`` (with an intercept): center by the mean and scale by the
        standard deviation, for sparse input too (the centering is implicit:
        the intercept absorbs ``W @ mean``, X stays sparse), so that sparse
        and dense copies of the same data take the same path; otherwise
        scale by the root mean square and do not center. With an L2
        strength ``alpha > 0`` the scale is ``sqrt(var_j + alpha / h)``:
        the diagonal of J's Hessian is about ``h var_j + alpha`` with ``h``
        the cross-entropy's curvature per logit (``curvature``), so in the
        scaled variables the penalty's curvature stays below the data's, also
        for features of tiny scale: a feature whose variance is below
        ``alpha / h`` is not stretched further, and a constant feature gets
        ``sqrt(alpha / h)``. ``h`` is the bound 1/4 by default and
        :data:`LBFGS_CURVATURE` (1/25) for L-BFGS (see the constants).
        Without a penalty a constant feature (scale zero or within rounding
        of zero) gets scale 1.
        """
        if self.n == 0:  # no row of positive weight: nothing to scale by
            return Preconditioner.identity(self.n_features)
        rms2 = self.sumsq / self.n
        if center:
            var = np.maximum(self.m2, 0.0) / self.n
            # Rounding of the dtype of X leaves about eps * rms of spread in a
            # constant column: such a column is treated as constant.
            eps = np.finfo(np.float32 if self.itemsize == 4 else np.float64).eps
            var = np.where(var > (100 * eps) ** 2 * rms2, var, 0.0)
            mean = self.mean
        else:
            var, mean = rms2, np.zeros_like(rms2)
        scale = np.sqrt(var + alpha / curvature)
        return Preconditioner(np.where(scale > 0, scale, 1.0), mean)


def _dense_block_stats(block, sample_weight):
    xp = get_namespace(block)
    m, d = block.shape
    out = ColumnStats()
    itemsize = 4 if "float32" in str(block.dtype) else 8
    out.itemsize = itemsize
    step = max(1, _STATS_BYTES // max(1, d * itemsize))
    for start in range(0, m, step):
        part = block[start : min(m, start + step), ...]
        if sample_weight is None:
            w, total = None, float(part.shape[0])
        else:
            w = sample_weight[start : min(m, start + step)]
            total = float(xp.sum(w))
            if total <= 0:
                continue

        def wsum(a, w=w):
            return xp.sum(a, axis=0) if w is None else w @ a

        mean = wsum(part) / total
        dev = part - mean
        piece = ColumnStats()
        piece.n = total
        piece.mean = to_numpy(mean).astype(np.float64)
        piece.m2 = to_numpy(wsum(dev * dev)).astype(np.float64)
        piece.sumsq = to_numpy(wsum(part * part)).astype(np.float64)
        piece.itemsize = itemsize
        out.merge(piece)
    return out


def _sparse_block_stats(block, sample_weight):
    sq = block.multiply(block)
    out = ColumnStats()
    out.sparse = True
    out.itemsize = 4 if "float32" in str(block.dtype) else 8
    if sample_weight is None:
        total = float(block.shape[0])
        sums, sumsq = block.sum(axis=0), sq.sum(axis=0)
    else:
        total = float(sample_weight.sum())
        sums, sumsq = block.T @ sample_weight, sq.T @ sample_weight
    if total <= 0:
        return out
    out.n = total
    out.mean = np.asarray(to_numpy(sums), dtype=np.float64).ravel() / total
    out.sumsq = np.asarray(to_numpy(sumsq), dtype=np.float64).ravel()
    out.m2 = np.maximum(out.sumsq - total * out.mean**2, 0.0)
    return out


class Preconditioner:
    """Scales ``s`` (d,) and means ``mu`` (d,) (zeros: no centering), float64."""

    def __init__(self, scale, mean):
        self.scale = np.asarray(scale, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        # Copies of scale and mean per (namespace, device, dtype): a minibatch
        # on a GPU would otherwise copy both from the host at every step.
        self._placed = {}

    def __getstate__(self):
        # Device copies stay where they were made (a pickle must load
        # without CuPy).
        return {**self.__dict__, "_placed": {}}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_placed", {})

    def _on(self, name, ref, xp):
        """``self.<name>`` in the namespace, device and dtype of ``ref``."""
        key = (name, getattr(xp, "__name__", id(xp)), str(device(ref)), str(ref.dtype))
        placed = self._placed.get(key)
        if placed is None:
            placed = self._placed[key] = _like(getattr(self, name), ref, xp)
        return placed

    @classmethod
    def identity(cls, n_features):
        """No change of variables (the switch ``precondition=False``)."""
        ones = np.ones(n_features)
        return cls(ones, np.zeros(n_features))

    @property
    def centers(self):
        return bool(np.any(self.mean))

    def to_scaled(self, W, b):
        """``(V, c)`` of original parameters ``W`` (k, d), ``b`` (k,) or None."""
        V = W * self.scale
        c = None if b is None else b + W @ self.mean
        return V, c

    def to_original(self, V, c):
        """``(W, b)`` of scaled parameters; any namespace (``V`` decides)."""
        xp = get_namespace(V)
        W = V / self._on("scale", V, xp)
        if c is None:
            return W, None
        return W, c - W @ self._on("mean", V, xp)

    def gradient_to_scaled(self, gW, gb):
        """Chain rule: ``(dJ/dV, dJ/dc)`` from ``(dJ/dW, dJ/db)``."""
        xp = get_namespace(gW)
        s = self._on("scale", gW, xp)
        if gb is None:
            return gW / s, None
        mu = self._on("mean", gW, xp)
        return (gW - gb[:, None] * mu[None, :]) / s, gb


def _like(a, ref, xp):
    """The float64 NumPy vector ``a`` in the namespace, device and dtype of ref."""
    return asarray_like(a, ref, xp=xp)


class ScaledProblem:
    """A :class:`~sksoftmax._loss.LinearSoftmaxLoss` seen in the scaled
    variables of a :class:`Preconditioner`, on flat float64 NumPy vectors.

    The flat layout is the loss's (``[V.ravel(), c]``), so the wrapper can
    stand wherever the loss does for L-BFGS, including under
    :class:`~sksoftmax._penalty.SplitL1Problem`. The last evaluation's
    gradient in the original variables is kept in :attr:`last_gradient`
    for the stopping rule (:func:`original_gradient_norm`).

    ``layout`` (default: ``loss``) is the
    :class:`~sksoftmax._loss.LinearSoftmaxLoss` that fixes the flat layout,
    for a ``loss`` that only offers ``loss_gradient`` (a sum over Dask chunks).
    """

    def __init__(self, loss, preconditioner, *, layout=None):
        layout = loss if layout is None else layout
        self.loss = loss
        self.pre = preconditioner
        self.n_logits = layout.n_logits
        self.n_features = layout.n_features
        self.n_params = layout.n_params
        self.fit_intercept = layout.fit_intercept
        self.last_gradient = None
        self._last = None  # (z, f, dJ/dz) of the last evaluation

    def _split(self, flat):
        k, d = self.n_logits, self.n_features
        return flat[: k * d].reshape(k, d), (
            flat[k * d :] if self.fit_intercept else None
        )

    def _join(self, A, a):
        return np.concatenate([A.ravel(), a if a is not None else []])

    def to_scaled(self, coef):
        """Flat original ``[W, b]`` -> flat scaled ``[V, c]``."""
        return self._join(*self.pre.to_scaled(*self._split(coef)))

    def to_original(self, z):
        """Flat scaled ``[V, c]`` -> flat original ``[W, b]``:
        :meth:`Preconditioner.to_original` on the flat NumPy vector."""
        m = self.n_logits * self.n_features
        coef = np.empty(z.shape[0])
        W = coef[:m].reshape(self.n_logits, self.n_features)
        np.divide(z[:m].reshape(W.shape), self.pre.scale, out=W)
        if self.fit_intercept:
            np.subtract(z[m:], W @ self.pre.mean, out=coef[m:])
        return coef

    def loss_gradient(self, z, X, target, sample_weight=None):
        """``(J, dJ/dz)``: J on the raw X, gradient in the scaled variables."""
        last = self._last
        if last is not None and np.array_equal(z, last[0]):
            return last[1], last[2].copy()
        f, g = self.loss.loss_gradient(self.to_original(z), X, target, sample_weight)
        # gradient_to_scaled on the flat vectors (NumPy, float64), in place
        m = self.n_logits * self.n_features
        gz = g.copy()
        gV = gz[:m].reshape(self.n_logits, self.n_features)
        if self.fit_intercept:
            gV -= np.multiply.outer(gz[m:], self.pre.mean)
        gV /= self.pre.scale
        self.last_gradient, self._last = g, (z.copy(), f, gz)
        return f, gz.copy()

    def gradient_at(self, z, *args):
        """The original-variable gradient at ``z`` (cached when ``z`` was the
        last point evaluated, which is L-BFGS-B's accepted iterate)."""
        if self._last is None or not np.array_equal(z, self._last[0]):
            self.loss_gradient(z, *args)
        return self.last_gradient


class ScaledMinibatchLoss:
    """The minibatch face of a loss (``loss_gradient_arrays``, ``logits``) in
    scaled variables ``(V, c)``, in the namespace of the data, for SGD and
    Adam: the update rules then step in standardized coordinates. The L2
    term's gradient is left out: pass :meth:`MinibatchSetup.l2_weights` to
    the update rule, whose proximal step handles it; its value stays in the
    minibatch objective, as the epoch's reported J expects."""

    def __init__(self, loss, preconditioner):
        # The L2 term is left to the update rule's proximal step (its
        # curvature alpha / s_j^2 may be far above the data's).
        self.loss = copy.copy(loss)
        self.loss.alpha = 0.0
        self.alpha = loss.alpha
        self.pre = preconditioner
        self.n_classes = loss.n_classes
        self.n_logits = loss.n_logits
        self.n_features = loss.n_features
        self.fit_intercept = loss.fit_intercept

    def loss_gradient_arrays(self, V, c, X, target, sample_weight=None, *, xp=None):
        W, b = self.pre.to_original(V, c)
        J, gW, gb = self.loss.loss_gradient_arrays(
            W, b, X, target, sample_weight, xp=xp
        )
        gV, gc = self.pre.gradient_to_scaled(gW, gb)
        if self.alpha:  # the value of the L2 term, not its gradient
            J = J + 0.5 * self.alpha * xp.sum(W * W)
        return J, gV, gc

    def logits(self, X, V, c, *, xp=None):
        W, b = self.pre.to_original(V, c)
        return self.loss.logits(X, W, b, xp=xp)


def original_gradient_norm(g, z_split, *, m, l1, scale):
    """Largest entry of L-BFGS-B's projected gradient in original variables.

    ``g`` is dJ/d[W, b] (flat). Without L1 (``z_split`` None) it is
    ``max |g|``, LogisticRegression's stopping quantity. With the split
    ``W = P - N`` (``z_split = [P, N, c]`` in scaled variables, ``l1`` the
    original L1 strength) the split gradient ``[g_W + l1, l1 - g_W, g_b]`` is
    projected on the bounds ``P, N >= 0`` at the original ``P / s, N / s``.
    """
    if z_split is None:
        return float(np.max(np.abs(g))) if g.size else 0.0
    gW, gb = g[:m], g[m:]
    s = np.tile(scale, m // scale.size)
    P, N = z_split[:m] / s, z_split[m : 2 * m] / s
    parts = [projected_gradient(gW + l1, P), projected_gradient(l1 - gW, N), np.abs(gb)]
    return float(max(np.max(np.abs(p)) if p.size else 0.0 for p in parts))


def projected_gradient(g, x):
    """L-BFGS-B's projected gradient at ``x`` for a lower bound 0 (``x``
    the distance to the bound): a positive entry counts at most ``x``."""
    return np.where(g > 0, np.minimum(x, g), g)


def block_curvature(X, pre, sample_weight=None, *, n_iter=30, seed=0):
    """``(lam, max_row_sq, mean_l1)`` of a block of rows in the scaled
    variables, where ``x~ = (x - mu) / s``.

    ``lam`` estimates (power iteration, ``n_iter`` products with X and its
    transpose) the top eigenvalue of the (``sample_weight``-weighted) mean
    of ``x~_i x~_i^T``; ``max_row_sq`` and ``mean_l1`` come from
    :func:`block_row_norms`. X is any dense array or sparse matrix; it is
    read, never copied whole.
    """
    xp = get_namespace(X)
    n, d = X.shape
    sparse = is_sparse(X)
    inv_s = _like(1.0 / pre.scale, X, xp)
    mu = _like(pre.mean, X, xp)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    total = n if sample_weight is None else float(xp.sum(sample_weight))
    if total <= 0:  # no row of positive weight: the bounds of an empty sum
        return 0.0, 0.0, 0.0
    lam = 0.0
    for _ in range(n_iter):
        vs = _like(v / pre.scale, X, xp)
        u = X @ vs - float(pre.mean @ (v / pre.scale))  # X~ v
        if sample_weight is not None:
            u = u * sample_weight
        w = X.T @ u if sparse else u @ X  # X^T u
        w = to_numpy((w - mu * xp.sum(u)) * inv_s).astype(np.float64).ravel()
        w /= total
        lam = float(np.linalg.norm(w))
        if lam == 0.0:
            break
        v = w / lam
    return (lam, *block_row_norms(X, pre, sample_weight))


def block_row_norms(X, pre, sample_weight=None):
    """``(max_row_sq, mean_l1)`` of a block in the scaled variables:
    ``max_i ||x~_i||^2`` over the rows of positive weight and the
    (``sample_weight``-weighted) mean of ``||x~_i||_1`` (0 and 0 for no such
    row), read in slices, never copied whole."""
    xp = get_namespace(X)
    n, d = X.shape
    if n == 0:
        return 0.0, 0.0
    total = float(n if sample_weight is None else xp.sum(sample_weight))
    if total <= 0:
        return 0.0, 0.0
    if is_sparse(X):
        w = None if sample_weight is None else to_numpy(sample_weight)
        # ||(x - mu) / s||^2 from products, without densifying X.
        inv2 = 1.0 / pre.scale**2
        row_sq = to_numpy(X.multiply(X) @ _like(inv2, X, xp))
        row_sq = row_sq - 2 * to_numpy(X @ _like(pre.mean * inv2, X, xp))
        row_sq = row_sq + float(pre.mean**2 @ inv2)
        # ||(x - mu) / s||_1: sum_j |mu_j| / s_j over all columns, corrected
        # at the stored entries (one value per stored entry, as X.multiply).
        coo = X.tocoo()
        mu_c = _like(pre.mean, X, xp)[coo.col]
        inv_c = _like(1.0 / pre.scale, X, xp)[coo.col]
        vals = (abs(coo.data - mu_c) - abs(mu_c)) * inv_c
        stored = type(coo)((vals, (coo.row, coo.col)), shape=X.shape)
        row_l1 = np.asarray(to_numpy(stored.sum(axis=1))).ravel()
        row_l1 = row_l1 + float(np.sum(np.abs(pre.mean) / pre.scale))
        keep = slice(None) if w is None else w > 0
        best = float(np.max(row_sq[keep])) if np.size(row_sq[keep]) else 0.0
        l1 = np.sum(row_l1) if w is None else row_l1 @ w
        return best, float(l1) / total
    inv_s = _like(1.0 / pre.scale, X, xp)
    mu = _like(pre.mean, X, xp)
    itemsize = 4 if "float32" in str(X.dtype) else 8
    step = max(1, _STATS_BYTES // max(1, d * itemsize))
    best, l1 = 0.0, 0.0
    for start in range(0, n, step):
        stop = min(n, start + step)
        z = (X[start:stop, ...] - mu) * inv_s
        row_sq = xp.sum(z * z, axis=1)
        row_l1 = xp.sum(xp.abs(z), axis=1)
        if sample_weight is not None:
            wb = sample_weight[start:stop]
            row_sq = xp.where(wb > 0, row_sq, xp.zeros_like(row_sq))
            row_l1 = row_l1 * wb
        best = max(best, float(to_numpy(xp.max(row_sq))))
        l1 += float(to_numpy(xp.sum(row_l1)))
    return best, l1 / total


# Adam's automatic step: the logit change of an average row per step, and
# the largest step (see default_learning_rate).
ADAM_LOGIT_STEP = 0.7
ADAM_MAX_STEP = 0.1


def default_learning_rate(
    *,
    solver,
    lam,
    max_row_sq,
    batch_size,
    n_samples,
    momentum,
    n_logits=None,
    mean_l1=None,
):
    """The step SGD or Adam takes when ``learning_rate_init="auto"``.

    SGD: ``(1 - momentum) / L_B``, with ``L_B`` the expected smoothness of a
    minibatch of ``B = batch_size`` rows (Gower et al., 2019),

    .. math::

        L_B = \\frac{n (B - 1)}{B (n - 1)} L + \\frac{n - B}{B (n - 1)} L_{max},

    between the full-batch constant ``L = h (lam + 1)`` and the one-row
    constant ``L_max = h (max_row_sq + 1)``, where ``h`` bounds the
    cross-entropy's curvature in the logits: ``1/2`` for the softmax of
    several logits (the largest eigenvalue of ``diag(p) - p p^T``), ``1/4``
    for a binary model's one logit (``sigma (1 - sigma)``, ``n_logits=1``);
    the 1 is the intercept. The L2 term is not in ``L_B``: the update rule
    takes it by a proximal step, stable for any strength.
    ``lam`` and ``max_row_sq`` come from :func:`block_curvature`. The factor
    ``1 - momentum`` keeps the effective step ``lr / (1 - momentum)`` at
    ``1 / L_B``.

    Adam normalizes each coordinate's step by its gradient's size, so each
    coordinate moves by about the step in the (standardized) scaled
    variables, and one step moves a row's logits by up to the step times
    ``||x~||_1``. Its step is ``ADAM_LOGIT_STEP / mean_l1`` (``mean_l1`` the
    mean of ``||x~_i||_1`` from :func:`block_curvature`), so that one step
    moves the logits of an average row by about 0.7 however wide or sparse
    the rows are, capped at ``ADAM_MAX_STEP``. Measured on the benchmark's
    dense shapes (steps 0.015-0.044): within 6.7e-4 of the optimum in 50
    epochs, where a fixed 0.02 left up to 8.1e-4 and a fixed 0.03 1.4e-3; on
    the sparse 20k x 2000 x 20 set (step 0.0056): 0.17 above it where 0.02
    left 3.7 (best constant step found: 0.005, 0.23).
    """
    if solver == "adam":
        if not mean_l1:
            return ADAM_MAX_STEP
        return float(min(ADAM_MAX_STEP, ADAM_LOGIT_STEP / mean_l1))
    n, B = n_samples, min(batch_size, n_samples)
    h = 0.25 if n_logits == 1 else 0.5
    full, single = h * (lam + 1.0), h * (max_row_sq + 1.0)
    if n > 1:
        L = n * (B - 1) / (B * (n - 1)) * full + (n - B) / (B * (n - 1)) * single
    else:
        L = single
    return float((1.0 - momentum if momentum < 1 else 0.1) / L)


def fit_preconditioner(
    X, sample_weight=None, *, fit_intercept, alpha=0.0, enabled=True
):
    """L-BFGS's :class:`Preconditioner` of an in-memory X (one block); the
    identity when ``enabled`` is False. Chunked input: fold the chunks into one
    :class:`ColumnStats` and call its :meth:`~ColumnStats.preconditioner`."""
    if not enabled:
        return Preconditioner.identity(X.shape[1])
    stats = ColumnStats().update(X, sample_weight)
    return stats.preconditioner(
        center=fit_intercept, alpha=alpha, curvature=LBFGS_CURVATURE
    )


class MinibatchSetup:
    """SGD/Adam in the scaled variables: the start point, the default step,
    the per-feature L1 and L2 weights, and the way back to ``(W, b)``.

    Built once per ``fit``/``partial_fit`` call. It asks the data for two
    things, only when needed, through callables (so any input kind can
    answer): ``stats()`` returns the :class:`ColumnStats` of the training
    rows (in memory: one ``update``; chunks: one per chunk, merged), and
    ``curvature(pre)`` returns :func:`block_curvature`'s ``(lam,
    max_row_sq, mean_l1)`` (in memory: over X; chunks: see
    :func:`rows_curvature`). The start point ``V0``, ``c0`` is float64
    NumPy. ``state`` is the optimizer state of the previous ``partial_fit`` call or
    None; it carries the preconditioner, the resolved step and the last raw
    iterate, so that a stream keeps one set of variables.
    """

    def __init__(
        self,
        loss,
        W0,
        b0,
        *,
        solver,
        precondition,
        learning_rate_init,
        batch_size,
        momentum,
        n_samples,
        stats,
        curvature,
        state=None,
    ):
        if state is not None and "scale" in state:
            pre = Preconditioner(state["scale"], state["mean"])
        elif precondition:
            pre = stats().preconditioner(center=loss.fit_intercept, alpha=loss.alpha)
        else:
            pre = Preconditioner.identity(loss.n_features)
        self.pre = pre
        self.loss = ScaledMinibatchLoss(loss, pre)
        if learning_rate_init != "auto":
            lr = float(learning_rate_init)
        elif state is not None and "lr_init" in state:
            lr = state["lr_init"]
        else:
            lam, max_row_sq, mean_l1 = curvature(pre)
            lr = default_learning_rate(
                solver=solver,
                lam=lam,
                max_row_sq=max_row_sq,
                batch_size=batch_size,
                n_samples=n_samples,
                momentum=momentum,
                n_logits=loss.n_logits,
                mean_l1=mean_l1,
            )
        self.learning_rate_init = lr
        iterate = None if state is None else state.get("iterate")
        if iterate is not None:
            V, c = iterate[0], iterate[1] if len(iterate) > 1 else None
        else:
            V, c = pre.to_scaled(W0, b0 if loss.fit_intercept else None)
        # float64 NumPy start point; the epoch loop moves it to each chunk
        self.V0 = np.array(to_numpy(V), dtype=np.float64)
        self.c0 = None if c is None else np.array(to_numpy(c), dtype=np.float64)

    def l1_weights(self, l1):
        """``l1 * ||W||_1 = sum_j (l1 / s_j) ||V_j||_1``: per-feature weights."""
        if not l1:
            return 0.0
        return l1 / self.pre.scale

    def l2_weights(self):
        """``alpha / 2 ||W||^2 = sum_j alpha / (2 s_j^2) ||V_j||^2``."""
        alpha = self.loss.alpha
        return alpha / self.pre.scale**2 if alpha else 0.0

    def finish(self, res, *, use_average):
        """Map ``res`` (scaled ``W``, ``b``) back to the original variables in
        place; the reported parameters are the iterate average when
        ``use_average``. Records what the next ``partial_fit`` needs."""
        raw = [res.W] if res.b is None else [res.W, res.b]
        # res.state, not an optimizer object: chunked runs copy the optimizer.
        average = res.state.get("average") if use_average else None
        params = list(average) if average is not None else raw
        W, b = self.pre.to_original(params[0], params[1] if len(params) > 1 else None)
        res.W, res.b = W, b
        state = res.state
        state["scale"], state["mean"] = self.pre.scale, self.pre.mean
        state["lr_init"] = self.learning_rate_init
        state["iterate"] = [to_numpy(a).copy() for a in raw]
        return res


def chunk_column_stats(chunk):
    """:class:`ColumnStats` of one ``(X, target, sample_weight)`` chunk (a
    task on the worker that holds it)."""
    X, _, sample_weight = chunk
    return ColumnStats().update(X, sample_weight)


def merge_column_stats(*parts):
    """One :class:`ColumnStats` of many (a reduction task)."""
    total = ColumnStats()
    for part in parts:
        total.merge(part)
    return total


def rows_column_stats(rows):
    """:class:`ColumnStats` of a row source of :mod:`sksoftmax._data`: in
    memory one ``update``; Dask one task per chunk on its worker and a
    reduction; memmap one pass over the blocks. (Row sources could offer
    this as a method; it is written here so that ``_data`` stays as it is.)"""
    if hasattr(rows, "X"):
        return ColumnStats().update(rows.X, rows.sample_weight)
    if hasattr(rows, "chunks"):
        import dask

        task = dask.delayed(chunk_column_stats, pure=True)
        (stats,) = dask.compute(
            dask.delayed(merge_column_stats)(*[task(c) for c in rows.chunks])
        )
        return stats
    stats = ColumnStats()
    for i in range(rows.n_chunks):
        X, _, sample_weight = rows.chunk(i)
        stats.update(X, sample_weight)
    return stats


def rows_curvature(rows, pre):
    """:func:`block_curvature` of a row source: over all rows in memory; for
    Dask and memmap input the top eigenvalue and the mean row norm (averages
    over rows) are estimated on the first chunk, and the largest row norm (a
    maximum, which one chunk could miss) is taken over every chunk."""
    if hasattr(rows, "X"):
        return block_curvature(rows.X, pre, rows.sample_weight)
    if hasattr(rows, "chunks"):
        import dask

        first = dask.delayed(chunk_curvature, pure=True)(rows.chunks[0], pre)
        task = dask.delayed(chunk_row_norms, pure=True)
        (lam, max_row_sq, mean_l1), rest = dask.compute(
            first, [task(c, pre) for c in rows.chunks[1:]]
        )
        return lam, max([max_row_sq, *(m for m, _ in rest)]), mean_l1
    X, _, sample_weight = rows.chunk(0)
    lam, max_row_sq, mean_l1 = block_curvature(X, pre, sample_weight)
    for i in range(1, rows.n_chunks):
        X, _, sample_weight = rows.chunk(i)
        max_row_sq = max(max_row_sq, block_row_norms(X, pre, sample_weight)[0])
    return lam, max_row_sq, mean_l1


def chunk_curvature(chunk, pre):
    """:func:`block_curvature` of one ``(X, target, sample_weight)`` chunk."""
    X, _, sample_weight = chunk
    return block_curvature(X, pre, sample_weight)


def chunk_row_norms(chunk, pre):
    """:func:`block_row_norms` of one ``(X, target, sample_weight)`` chunk."""
    X, _, sample_weight = chunk
    return block_row_norms(X, pre, sample_weight)


# The column statistics of each row source, gathered once: SoftmaxRegressionCV
# fits the same validated rows at every C of a path (the scales still follow
# each C's L2 strength).
_ROWS_STATS = weakref.WeakKeyDictionary()


def rows_preconditioner(rows, loss, *, enabled):
    """The L-BFGS preconditioner of a row source, or None when disabled."""
    if not enabled:
        return None
    stats = _ROWS_STATS.get(rows)
    if stats is None:
        stats = _ROWS_STATS[rows] = rows_column_stats(rows)
    return stats.preconditioner(
        center=loss.fit_intercept, alpha=loss.alpha, curvature=LBFGS_CURVATURE
    )
