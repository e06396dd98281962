"""Reliability of predicted probabilities."""

import numpy as np
from sklearn.utils.validation import check_consistent_length, column_or_1d

__all__ = ["expected_calibration_error"]


def expected_calibration_error(
    y_true, y_prob, *, n_bins=15, labels=None, sample_weight=None
):
    r"""Expected calibration error (ECE) of the top-label confidence.

    Each sample's confidence is its largest predicted probability; the
    samples are grouped into ``n_bins`` equal-width bins of confidence,
    ``((m - 1) / M, m / M]`` (the first bin also holds 0), and

    .. math::

        \mathrm{ECE} = \sum_{m=1}^{M} \frac{S_m}{S}
                       \,\lvert \mathrm{acc}_m - \mathrm{conf}_m \rvert,

    where ``S_m`` is the (weighted) number of samples in bin ``m``,
    ``acc_m`` the share of them whose most probable class is the true one and
    ``conf_m`` their mean confidence (Guo et al., 2017). 0 is perfect
    calibration.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels: column indices of ``y_prob``, or entries of ``labels``.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, e.g. from ``predict_proba``. A 1-D array is
        the probability of the second class of a binary problem.
    n_bins : int >= 1, default=15
        Number of confidence bins.
    labels : array-like of shape (n_classes,), default=None
        The class of each column of ``y_prob`` (e.g. ``clf.classes_``);
        None means ``0, 1, ..., n_classes - 1``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    ece : float
        In [0, 1].

    Examples
    --------
    >>> from sksoftmax.metrics import expected_calibration_error
    >>> y_prob = [[0.9, 0.1], [0.75, 0.25], [0.35, 0.65], [0.45, 0.55]]
    >>> round(expected_calibration_error([0, 1, 1, 1], y_prob, n_bins=5), 6)
    0.2375
    """
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim == 1:
        y_prob = np.column_stack([1.0 - y_prob, y_prob])
    if y_prob.ndim != 2:
        raise ValueError(f"y_prob must be 1-D or 2-D, got shape {y_prob.shape}.")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    y_true = column_or_1d(y_true)
    check_consistent_length(y_true, y_prob)
    labels = np.arange(y_prob.shape[1]) if labels is None else np.asarray(labels)
    if labels.shape[0] != y_prob.shape[1]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but y_prob has "
            f"{y_prob.shape[1]} columns."
        )
    w = (
        np.ones(y_true.shape[0])
        if sample_weight is None
        else column_or_1d(sample_weight).astype(np.float64)
    )
    check_consistent_length(y_true, w)
    confidence = y_prob.max(axis=1)
    correct = labels[y_prob.argmax(axis=1)] == y_true
    # Bin m (0-based) holds confidences in (m / M, (m + 1) / M].
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    S_m = np.bincount(bins, weights=w, minlength=n_bins)
    hits = np.bincount(bins, weights=w * correct, minlength=n_bins)
    conf = np.bincount(bins, weights=w * confidence, minlength=n_bins)
    return float(np.sum(np.abs(hits - conf)) / np.sum(S_m))
