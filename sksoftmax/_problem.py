"""The one place that turns ``C``, ``l1_ratio``, the total weight ``S``, label
smoothing and a warm start into the loss, the penalty and the start point,
for every kind of input and every solver."""

import math
from dataclasses import dataclass

import numpy as np

from ._loss import LinearSoftmaxLoss

__all__ = ["Problem", "Start", "build_problem"]


@dataclass
class Start:
    """A previous solution to start from (``warm_start``, ``partial_fit``):
    NumPy ``coef`` (k, d), ``intercept`` (k,) and the ``classes`` they
    belong to."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray


@dataclass
class Problem:
    """``loss`` (cross-entropy and the L2 part of the penalty), the L1
    strength ``l1`` (``l1 * ||W||_1``), the float64 start ``W0`` (k, d) and
    ``b0`` (k,) or None, and the total weight ``S`` the penalty is scaled by."""

    loss: LinearSoftmaxLoss
    l1: float
    W0: np.ndarray
    b0: np.ndarray | None
    S: float

    @property
    def coef0(self):
        """The start as the flat float64 vector ``[W.ravel(), b]``."""
        parts = [self.W0.ravel()] + ([self.b0] if self.b0 is not None else [])
        return np.concatenate(parts)


def build_problem(
    data,
    *,
    C,
    l1_ratio,
    fit_intercept,
    label_smoothing,
    start=None,
    seen_weight=0.0,
):
    """The problem for :class:`~sksoftmax._validation.TrainingData` ``data``.

    The penalty is ``(l1_ratio ||W||_1 + (1 - l1_ratio)/2 ||W||^2) / (C S)``
    with ``S`` the data's total weight plus ``seen_weight`` (the weight that
    earlier ``partial_fit`` calls saw). ``start`` is used when its shape and
    classes match the data's.
    """
    # Python floats: a NumPy scalar times an Array API array is refused by
    # strict namespaces.
    C, l1_ratio, label_smoothing = float(C), float(l1_ratio), float(label_smoothing)
    S = float(data.S + seen_weight)
    strength = 0.0 if math.isinf(C) else 1.0 / (C * S)
    loss = LinearSoftmaxLoss(
        len(data.classes),
        data.n_features,
        fit_intercept=fit_intercept,
        alpha=(1.0 - l1_ratio) * strength,
        label_smoothing=label_smoothing,
    )
    k, d = loss.n_logits, loss.n_features
    W0 = np.zeros((k, d))
    b0 = np.zeros(k) if fit_intercept else None
    if (
        start is not None
        and start.coef.shape == (k, d)
        and np.array_equal(start.classes, data.classes)
    ):
        W0[...] = start.coef
        if b0 is not None:
            b0[...] = start.intercept
    return Problem(loss=loss, l1=l1_ratio * strength, W0=W0, b0=b0, S=S)
