r"""The L1 part of the elastic-net penalty, for every solver.

The smooth part of the objective (cross-entropy plus the L2 term) lives in
:class:`~sksoftmax._loss.LinearSoftmaxLoss`; the L1 term
``l1 * ||W||_1`` (intercept not penalized) is handled here in two ways:

* L-BFGS: the split ``W = P - N`` with ``P, N >= 0`` turns
  ``f(W) + l1 * ||W||_1`` into the smooth bound-constrained problem
  ``f(P - N) + l1 * sum(P + N)``, which L-BFGS-B solves; coordinates whose
  optimum is zero end at the bounds ``P = N = 0``, so exactly zero.
* SGD and Adam: a proximal (soft-threshold) step after each update.
"""

import numpy as np
import scipy.optimize

__all__ = ["l1_norm", "soft_threshold", "SplitL1Problem"]


def soft_threshold(W, threshold, xp):
    """``sign(W) * max(|W| - threshold, 0)``, the proximal map of the L1 norm.

    ``threshold`` is a scalar or an array broadcastable to ``W``.
    """
    return xp.sign(W) * xp.maximum(xp.abs(W) - threshold, xp.zeros_like(W))


def l1_norm(W, xp):
    """``sum |W|`` as a float."""
    return float(xp.sum(xp.abs(W)))


class SplitL1Problem:
    """``loss(coef) + l1 * ||W||_1`` as a smooth problem in ``[P, N, b]``.

    ``loss`` is a :class:`~sksoftmax._loss.LinearSoftmaxLoss`, whose flat
    layout puts the ``m = k * d`` penalized entries of ``W`` first and the
    intercept after them; the split vector is ``[P (m), N (m), b]``.

    ``l1`` is a scalar or a vector of ``m`` per-coordinate weights (the
    scaled variables of :mod:`sksoftmax._precondition` need ``l1 / s_j``).
    """

    def __init__(self, loss, l1):
        self.loss = loss
        self.l1 = l1
        self.m = loss.n_logits * loss.n_features

    def split(self, coef):
        """Start point ``[max(W, 0), max(-W, 0), b]`` of a flat ``coef``."""
        W, b = coef[: self.m], coef[self.m :]
        return np.concatenate([np.maximum(W, 0), np.maximum(-W, 0), b])

    def join(self, z):
        """The flat ``coef = [P - N, b]`` of a split vector."""
        m = self.m
        return np.concatenate([z[:m] - z[m : 2 * m], z[2 * m :]])

    def bounds(self):
        """``P, N >= 0``; the intercept is free."""
        lower = np.full(2 * self.m + self.loss.n_params - self.m, -np.inf)
        lower[: 2 * self.m] = 0.0
        return scipy.optimize.Bounds(lower, np.inf)

    def loss_gradient(self, z, *args):
        """Objective and gradient in the split variables."""
        m = self.m
        f, g = self.loss.loss_gradient(self.join(z), *args)
        f += float(np.sum(self.l1 * (z[:m] + z[m : 2 * m])))
        gW = g[:m]
        return f, np.concatenate([gW + self.l1, self.l1 - gW, g[m:]])
