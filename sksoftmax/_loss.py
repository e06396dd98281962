"""The objective every solver minimizes.

Two layers, kept apart as in scikit-learn's ``_loss`` vs ``_linear_loss``:

* :func:`softmax_cross_entropy` works on raw logits of shape (n, K): the
  per-sample cross-entropy and its gradient ``softmax(O) - T``;
* :class:`LinearSoftmaxLoss` adds the linear model ``O = X W^T + b``, the
  sample weights and the L2 penalty, and exposes ``loss``, ``gradient`` and
  ``loss_gradient`` with the signature ``scipy.optimize.minimize`` wants.
"""

import numpy as np
from sklearn import get_config

from ._backend import (
    asarray_like,
    column_sums,
    device,
    get_namespace,
    is_numpy_namespace,
    matmul_t,
    t_matmul,
    to_numpy,
)

__all__ = ["LinearSoftmaxLoss", "softmax_cross_entropy"]


def _target_dot(O, target, xp):
    """Row-wise ``sum_k T_ik O_ik`` for integer codes or a target matrix."""
    if target.ndim == 2:
        return xp.sum(target * O, axis=1)
    if is_numpy_namespace(xp):
        return O[np.arange(O.shape[0]), target]
    onehot = target[:, None] == xp.arange(O.shape[1], device=_dev(O))[None, :]
    return xp.sum(xp.where(onehot, O, xp.zeros_like(O)), axis=1)


def _dev(a):
    return device(a)


def softmax_cross_entropy(logits, target, weights=None, *, label_smoothing=0.0,
                          xp=None):
    """Weighted cross-entropy of softmax(logits) and its gradient.

    Parameters
    ----------
    logits : array of shape (n, K)
        Raw logits. On NumPy they are overwritten by the gradient.
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
    n, K = logits.shape
    eps = label_smoothing
    t_dot_o = _target_dot(logits, target, xp)
    if eps:
        t_dot_o = (1 - eps) * t_dot_o + (eps / K) * xp.sum(logits, axis=1)
    if is_numpy_namespace(xp):
        return _softmax_ce_numpy(logits, target, weights, eps, t_dot_o)
    m = xp.max(logits, axis=1, keepdims=True)
    e = xp.exp(logits - m)
    s = xp.sum(e, axis=1, keepdims=True)
    ce = xp.log(s[:, 0]) + m[:, 0] - t_dot_o
    if target.ndim == 2:
        T = target
    else:
        T = xp.astype(
            target[:, None] == xp.arange(K, device=_dev(logits))[None, :],
            logits.dtype,
        )
    if eps:
        T = (1 - eps) * T + eps / K
    G = e / s - T
    if weights is None:
        return xp.sum(ce), G
    return xp.sum(ce * weights), G * weights[:, None]


def _softmax_ce_numpy(O, target, weights, eps, t_dot_o):
    """NumPy fast path of :func:`softmax_cross_entropy`: all in place in ``O``."""
    n, K = O.shape
    m = O.max(axis=1, keepdims=True)
    O -= m
    np.exp(O, out=O)
    s = O.sum(axis=1, keepdims=True)
    ce = np.log(s[:, 0])
    ce += m[:, 0]
    ce -= t_dot_o
    O /= s
    if target.ndim == 2:
        O -= target if not eps else (1 - eps) * target
    else:
        O[np.arange(n), target] -= 1 - eps
    if eps:
        O -= eps / K
    if weights is None:
        return ce.sum(), O
    O *= weights[:, None]
    return ce @ weights, O


class LinearSoftmaxLoss:
    r"""The softmax regression objective on data ``X``.

    .. math::

        J(W, b) = \frac{1}{S} \sum_i s_i \, \mathrm{CE}(T_i, \mathrm{softmax}(W x_i + b))
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

    def __init__(self, n_classes, n_features, *, fit_intercept=True, alpha=0.0,
                 label_smoothing=0.0):
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
        """Rows per chunk so that the n x K temporaries fit in working memory."""
        itemsize = 4 if "float32" in str(X.dtype) else 8
        budget = get_config()["working_memory"] * 2**20
        per_row = 3 * self.n_classes * itemsize
        return max(1, int(budget // per_row))

    def loss_gradient_arrays(self, W, b, X, target, sample_weight=None, *,
                             xp=None):
        """Objective and gradient for arrays in X's namespace.

        Returns ``(loss, grad_W, grad_b)``, all in the namespace, on the
        device and in the dtype of ``X`` (``loss`` is 0-d, so that a caller
        on a GPU decides when to synchronise; ``grad_b`` is None without an
        intercept).
        """
        xp = get_namespace(X, W, xp=xp)
        n = X.shape[0]
        if sample_weight is None:
            S = n
        else:  # a minibatch may hold only zero weights: then its gradient is 0
            S = xp.sum(sample_weight)
            S = xp.where(S > 0, S, xp.ones_like(S))
        step = self._chunk_rows(X)
        loss, gW, gb = 0.0, None, None
        for start in range(0, n, step):
            stop = min(n, start + step)
            Xc = X[start:stop] if (start or stop < n) else X
            tc = target[start:stop] if (start or stop < n) else target
            wc = None if sample_weight is None else sample_weight[start:stop]
            O = self.logits(Xc, W, b, xp=xp)
            lc, G = softmax_cross_entropy(
                O, tc, wc, label_smoothing=self.label_smoothing, xp=xp
            )
            if self.n_classes == 2:
                G = G[:, 1:]
            gWc = t_matmul(G, Xc)
            gbc = column_sums(G, xp) if self.fit_intercept else None
            loss = loss + lc
            gW = gWc if gW is None else gW + gWc
            if gbc is not None:
                gb = gbc if gb is None else gb + gbc
        gW = gW / S
        if self.alpha:
            gW = gW + self.alpha * W
        if gb is not None:
            gb = gb / S
        return loss / S + self.penalty(W, xp=xp), gW, gb

    # -- scipy.optimize interface -------------------------------------------

    def loss_gradient(self, coef, X, target, sample_weight=None):
        """``(J, dJ/dcoef)`` for a flat float64 NumPy ``coef``.

        Only ``coef`` and the gradient (d*k numbers) cross between host and
        the device of ``X``.
        """
        xp = get_namespace(X)
        W, b = self.unpack(asarray_like(coef, X, xp=xp), xp=xp)
        loss, gW, gb = self.loss_gradient_arrays(W, b, X, target, sample_weight,
                                                 xp=xp)
        grad = np.empty(self.n_params, dtype=np.float64)
        k, d = self.n_logits, self.n_features
        grad[: k * d] = to_numpy(gW).ravel()
        if gb is not None:
            grad[k * d :] = to_numpy(gb)
        return float(loss), grad

    def loss(self, coef, X, target, sample_weight=None):
        return self.loss_gradient(coef, X, target, sample_weight)[0]

    def gradient(self, coef, X, target, sample_weight=None):
        return self.loss_gradient(coef, X, target, sample_weight)[1]
