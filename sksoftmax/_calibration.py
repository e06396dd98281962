r"""Temperature scaling: one scalar ``T > 0`` fitted on held-out logits.

The held-out negative log-likelihood of ``softmax(O / T)``,

.. math::

    L(T) = \frac{1}{S} \sum_i s_i \Big(\log \sum_k e^{o_{ik} / T}
           - \sum_k y_{ik} \, o_{ik} / T\Big),

is convex in ``beta = 1 / T``: its derivative

.. math::

    \frac{dL}{d\beta} = \frac{1}{S} \sum_i s_i \Big(\sum_k p_{ik} o_{ik}
                       - \sum_k y_{ik} o_{ik}\Big),
    \qquad p_i = \mathrm{softmax}(\beta o_i),

(the model's expected logit minus the target's) grows with ``beta``, so the
minimum is its single root, found to machine precision by Brent's method on
``log beta``, where a 1-D search on the NLL itself would stop at about the
square root of the rounding error.
"""

import math
import warnings

import numpy as np
import scipy.optimize

from ._backend import get_namespace
from ._functional import softmax
from ._loss import _target_dot

__all__ = ["TemperatureBoundWarning", "fit_temperature"]

# T in [exp(-10), exp(10)], as scikit-learn bounds its beta = 1 / T: beyond
# these the model is (almost) a hard argmax or uniform.
_LOG_BETA_BOUNDS = (-10.0, 10.0)


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

    Warns
    -----
    TemperatureBoundWarning
        When ``T`` ends at a bound (the logits separate the held-out samples
        perfectly, or carry no information about their labels).
    """
    xp = get_namespace(logits, xp=xp)
    # sum_k y_ik o_ik does not depend on T: compute it once.
    t_dot_o = _target_dot(logits, target, xp)
    if sample_weight is None:
        weights, S = None, logits.shape[0]
    else:
        weights, S = sample_weight, float(xp.sum(sample_weight))

    def slope(log_beta):
        scaled = math.exp(log_beta) * logits
        gap = xp.sum(softmax(scaled, axis=1, xp=xp) * logits, axis=1) - t_dot_o
        total = xp.sum(gap) if weights is None else xp.sum(gap * weights)
        return float(total) / S

    lo, hi = _LOG_BETA_BOUNDS
    slope_lo, slope_hi = slope(lo), slope(hi)
    if slope_lo >= 0 and slope_hi <= 0:  # logits without spread: T is moot
        return 1.0
    if slope_lo >= 0:  # the NLL grows with beta from the start: as flat as allowed
        _warn_at_bound("upper")
        return math.exp(-lo)
    if slope_hi <= 0:  # still falling at the bound: as sharp as allowed
        _warn_at_bound("lower")
        return math.exp(-hi)
    log_beta = scipy.optimize.brentq(
        slope, lo, hi, xtol=1e-14, rtol=4 * np.finfo(np.float64).eps
    )
    return math.exp(-log_beta)


class TemperatureBoundWarning(UserWarning):
    """The fitted temperature stopped at a bound of its search interval."""


def _warn_at_bound(which):
    if which == "lower":
        message = (
            f"The temperature reached its lower bound T = {math.exp(-10):.1e}: "
            "the model separates the calibration set perfectly, so the held-out "
            "log-likelihood keeps improving as T -> 0 and the probabilities "
            "become 0/1, which will be overconfident on new data. Calibrate on "
            "more held-out data that the model does not fit perfectly (not the "
            "training set), or keep temperature_ = 1 (refit, or set it back)."
        )
    else:
        message = (
            f"The temperature reached its upper bound T = {math.exp(10):.1e}: "
            "the logits carry no information about these labels (every "
            "sharpening makes the held-out log-likelihood worse), so the "
            "probabilities become uniform. Check that the calibration labels "
            "match classes_ and X's columns those of fit, or refit the model."
        )
    warnings.warn(message, TemperatureBoundWarning, stacklevel=4)
