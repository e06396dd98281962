r"""Temperature scaling: one scalar ``T > 0`` fitted on held-out logits.

The held-out negative log-likelihood of ``softmax(O / T)``,

.. math::

    L(T) = \frac{1}{S} \sum_i s_i \Big(\log \sum_k e^{o_{ik} / T}
           - \sum_k y_{ik} \, o_{ik} / T\Big),

is convex in ``beta = 1 / T``, so it has a single minimum along ``log T``;
a bounded 1-D search on ``log T`` finds it.
"""

import math

import numpy as np
import scipy.optimize

from ._backend import get_namespace
from ._functional import logsumexp
from ._loss import _target_dot

__all__ = ["fit_temperature"]

# exp(+-10): beyond these the model is (almost) a hard argmax or uniform.
_LOG_T_BOUNDS = (-10.0, 10.0)


def fit_temperature(logits, target, sample_weight=None, *, xp=None):
    """The ``T > 0`` minimizing the weighted mean NLL of ``softmax(logits / T)``.

    Parameters
    ----------
    logits : array of shape (n_samples, n_classes)
        Held-out logits, in any Array API namespace.
    target : array of shape (n_samples,) with class codes, or (n_samples, n_classes)
        Class codes or rows of class probabilities.
    sample_weight : array of shape (n_samples,) or None
        Non-negative weights.
    xp : namespace, default=None
        Inferred from ``logits`` when None.

    Returns
    -------
    temperature : float
        The minimizer, within ``exp(-10)`` and ``exp(10)``.
    """
    xp = get_namespace(logits, xp=xp)
    # sum_k y_ik o_ik does not depend on T: compute it once.
    t_dot_o = _target_dot(logits, target, xp)
    if sample_weight is None:
        weights, S = None, logits.shape[0]
    else:
        weights, S = sample_weight, float(xp.sum(sample_weight))

    def nll(log_t):
        beta = math.exp(-log_t)
        ce = logsumexp(beta * logits, axis=1, xp=xp) - beta * t_dot_o
        total = xp.sum(ce) if weights is None else xp.sum(ce * weights)
        return float(total) / S

    res = scipy.optimize.minimize_scalar(
        nll, bounds=_LOG_T_BOUNDS, method="bounded",
        options={"xatol": 64 * np.finfo(np.float64).eps},
    )
    return float(math.exp(res.x))
