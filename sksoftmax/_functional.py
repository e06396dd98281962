"""Numerically stable softmax, log-sum-exp, entropy and cross-entropy for any
Array API namespace (NumPy, CuPy, torch, array_api_strict, ...).

Every function shifts by the row maximum before exponentiating, so logits of
any finite size give finite results. Results are in nats unless ``base`` is
given (``base=2`` gives bits).
"""

import math

from ._backend import get_namespace

__all__ = ["cross_entropy", "entropy", "log_softmax", "logsumexp", "softmax"]


def _shifted(x, axis, xp):
    """Return ``x - max(x)`` along ``axis`` and the (finite) maximum."""
    m = xp.max(x, axis=axis, keepdims=True)
    # A row that is all -inf has no finite maximum; shift it by 0 instead.
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m, m


def _in_base(value, base):
    return value if base is None else value / math.log(base)


def logsumexp(x, /, *, axis=-1, keepdims=False, xp=None):
    """Log of the sum of exponentials, computed without overflow.

    Parameters
    ----------
    x : array of shape (..., n)
        Real values, e.g. logits.
    axis : int, default=-1
        Axis to reduce.
    keepdims : bool, default=False
        Keep the reduced axis with size one.
    xp : namespace, default=None
        Array namespace; inferred from ``x`` when None.

    Returns
    -------
    out : array
        ``log(sum(exp(x), axis))``.

    Examples
    --------
    >>> import numpy as np
    >>> from sksoftmax.functional import logsumexp
    >>> float(logsumexp(np.array([1000.0, 1000.0])))
    1000.693...
    """
    xp = get_namespace(x, xp=xp)
    z, m = _shifted(x, axis, xp)
    out = xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(x, /, *, axis=-1, xp=None):
    """Logarithm of the softmax, ``x - logsumexp(x)``, without overflow.

    Parameters
    ----------
    x : array of shape (..., n)
        Logits.
    axis : int, default=-1
        Axis over which the probabilities sum to one.
    xp : namespace, default=None
        Array namespace; inferred from ``x`` when None.

    Returns
    -------
    out : array of the shape of ``x``
        Log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from sksoftmax.functional import log_softmax
    >>> np.round(log_softmax(np.array([0.0, 0.0])), 4)
    array([-0.6931, -0.6931])
    """
    xp = get_namespace(x, xp=xp)
    z, _ = _shifted(x, axis, xp)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def softmax(x, /, *, axis=-1, temperature=1.0, xp=None):
    """Softmax ``exp(x / T) / sum(exp(x / T))`` with the max-shift trick.

    Parameters
    ----------
    x : array of shape (..., n)
        Logits.
    axis : int, default=-1
        Axis over which the output sums to one.
    temperature : float > 0, default=1.0
        Divides the logits; above 1 flattens, below 1 sharpens.
    xp : namespace, default=None
        Array namespace; inferred from ``x`` when None.

    Returns
    -------
    out : array of the shape of ``x``
        Non-negative values summing to one along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from sksoftmax.functional import softmax
    >>> softmax(np.array([1e4, 0.0, -1e4], dtype=np.float32))
    array([1., 0., 0.], dtype=float32)
    """
    xp = get_namespace(x, xp=xp)
    if temperature != 1.0:
        x = x / temperature
    z, _ = _shifted(x, axis, xp)
    e = xp.exp(z)
    return e / xp.sum(e, axis=axis, keepdims=True)


def entropy(p, /, *, axis=-1, base=None, xp=None):
    """Shannon entropy ``H[P] = -sum(p log p)`` of distributions along ``axis``.

    Terms with ``p == 0`` count as zero (the limit of ``p log p``).

    Parameters
    ----------
    p : array of shape (..., n)
        Probabilities summing to one along ``axis``.
    axis : int, default=-1
        Axis of the distribution.
    base : float, default=None
        Logarithm base: None for nats, 2 for bits.
    xp : namespace, default=None
        Array namespace; inferred from ``p`` when None.

    Returns
    -------
    h : array
        The entropy of each distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from sksoftmax.functional import entropy
    >>> float(entropy(np.array([0.5, 0.5]), base=2))
    1.0
    """
    xp = get_namespace(p, xp=xp)
    positive = p > 0
    logp = xp.log(xp.where(positive, p, xp.ones_like(p)))
    return _in_base(-xp.sum(p * logp, axis=axis), base)


def cross_entropy(target, logits, /, *, axis=-1, base=None, xp=None):
    """Cross-entropy ``H(target, softmax(logits))`` computed from the logits.

    Uses ``logsumexp(z) - sum(y * z)`` on the shifted logits
    ``z = o - max(o)`` (valid because the target sums to one), so no
    probability is ever rounded to zero and then logged, and huge logits do
    not cancel each other out.

    Parameters
    ----------
    target : array of shape (..., n)
        Target distributions (one-hot rows or soft labels).
    logits : array of shape (..., n)
        Unnormalized log-probabilities of the model.
    axis : int, default=-1
        Axis of the distributions.
    base : float, default=None
        Logarithm base: None for nats, 2 for bits.
    xp : namespace, default=None
        Array namespace; inferred from the inputs when None.

    Returns
    -------
    h : array
        The cross-entropy of each row.

    Examples
    --------
    >>> import numpy as np
    >>> from sksoftmax.functional import cross_entropy
    >>> round(float(cross_entropy(np.array([0.0, 1.0]), np.array([0.0, 0.0]))), 4)
    0.6931
    """
    xp = get_namespace(target, logits, xp=xp)
    # The shift cancels exactly; without it, logsumexp(o) and sum(y * o) of
    # logits near 1e300 each round to 1e300 and their difference to 0.
    z, _ = _shifted(logits, axis, xp)
    lse = xp.log(xp.sum(xp.exp(z), axis=axis))
    return _in_base(lse - xp.sum(target * z, axis=axis), base)
