"""Metrics and scorers for probabilities and for probability (soft) targets.

Model selection with soft labels: scikit-learn's ``neg_log_loss`` and the
default accuracy scorer need one label per sample. Use
:data:`neg_cross_entropy_scorer` (``scoring=neg_cross_entropy_scorer`` in
``GridSearchCV``, ``cross_validate`` or ``SoftmaxRegressionCV``); it takes
class labels too, where it equals ``neg_log_loss``.
"""

import numpy as np
from scipy.special import xlogy
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ._backend import is_foreign_array, to_numpy

__all__ = [
    "cross_entropy",
    "expected_calibration_error",
    "neg_cross_entropy_scorer",
    "soft_accuracy_score",
]


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


def cross_entropy(y_true, y_prob, *, labels=None, sample_weight=None):
    r"""Mean cross-entropy of predicted probabilities against the targets.

    .. math::

        \mathrm{CE} = -\frac{1}{S} \sum_i s_i \sum_k y_{ik} \log p_{ik},
        \qquad S = \sum_i s_i,

    with ``y_i`` a row of class probabilities (soft label) or the one-hot row
    of a class label, where it equals scikit-learn's ``log_loss``. Terms with
    ``y_ik = 0`` count 0, and probabilities are clipped below at the dtype's
    ``eps`` (as ``log_loss`` does) so a confident mistake costs a large but
    finite amount.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        Class labels (entries of ``labels``), or rows of class probabilities
        whose columns follow those of ``y_prob``.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities; a 1-D array is the probability of the second
        class of a binary problem.
    labels : array-like of shape (n_classes,), default=None
        The class of each column of ``y_prob`` (e.g. ``clf.classes_``), for
        1-D ``y_true``; None means ``0, 1, ..., n_classes - 1``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    cross_entropy : float
        Non-negative; lower is better.

    Examples
    --------
    >>> from sksoftmax.metrics import cross_entropy
    >>> round(cross_entropy([[0.5, 0.5], [1.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]), 6)
    0.693147
    """
    y_prob = _as_probabilities(y_prob)
    Y = _as_target_matrix(y_true, y_prob.shape[1], labels)
    check_consistent_length(Y, y_prob)
    eps = np.finfo(y_prob.dtype).eps
    per_sample = -np.sum(xlogy(Y, np.clip(y_prob, eps, 1.0)), axis=1)
    return _weighted_mean(per_sample, sample_weight)


def soft_accuracy_score(y_true, y_pred, *, labels=None, sample_weight=None):
    r"""Accuracy against probability targets: the target's mass on the prediction.

    .. math::

        \frac{1}{S} \sum_i s_i \, y_{i, \hat k_i},

    where ``hat k_i`` is the predicted class of sample ``i``: the expected
    accuracy if each true label were drawn from its target row. With one-hot
    rows (class labels) this is the ordinary accuracy, so it needs no
    tie-breaking rule for rows whose largest entry is shared.
    ``SoftmaxRegressionClassifier.score`` returns it for 2-D ``y``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_classes)
        Rows of class probabilities, columns following ``labels``.
    y_pred : array-like of shape (n_samples,)
        Predicted labels, entries of ``labels``.
    labels : array-like of shape (n_classes,), default=None
        The class of each column of ``y_true``; None means
        ``0, 1, ..., n_classes - 1``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    score : float
        In [0, 1]; higher is better.

    Examples
    --------
    >>> from sksoftmax.metrics import soft_accuracy_score
    >>> soft_accuracy_score([[0.7, 0.3], [0.4, 0.6]], [0, 0])
    0.55
    """
    y_pred = column_or_1d(y_pred)
    Y = np.asarray(y_true, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(
            f"y_true must be rows of class probabilities (2-D), got shape {Y.shape}."
        )
    _check_distribution_rows(Y)
    check_consistent_length(Y, y_pred)
    codes = _codes(y_pred, Y.shape[1], labels, "y_pred")
    return _weighted_mean(Y[np.arange(Y.shape[0]), codes], sample_weight)


class _CrossEntropyScorer:
    """``scorer(estimator, X, y, sample_weight=None)``: minus the mean
    cross-entropy of ``estimator``'s probabilities against ``y``."""

    def __call__(self, estimator, X, y_true, sample_weight=None):
        y_true = to_numpy(y_true) if is_foreign_array(y_true) else y_true
        if sample_weight is not None and is_foreign_array(sample_weight):
            sample_weight = to_numpy(sample_weight)
        if hasattr(estimator, "predict_log_proba"):
            # Exact where a probability rounds to 0: no clipping needed.
            log_p = np.asarray(to_numpy(estimator.predict_log_proba(X)), np.float64)
        else:
            proba = _as_probabilities(to_numpy(estimator.predict_proba(X)))
            log_p = np.log(np.clip(proba, np.finfo(proba.dtype).eps, 1.0))
        Y = _as_target_matrix(y_true, log_p.shape[1], estimator.classes_)
        check_consistent_length(Y, log_p)
        return _neg_cross_entropy(Y, log_p, sample_weight)

    def __repr__(self):
        return "neg_cross_entropy_scorer"


#: Scorer for ``GridSearchCV``, ``cross_validate`` and ``SoftmaxRegressionCV``:
#: ``neg_cross_entropy_scorer(estimator, X, y, sample_weight=None)`` is minus the
#: mean :func:`cross_entropy` of ``estimator.predict_log_proba(X)`` (or
#: ``predict_proba``) against ``y``, class labels (then equal to
#: ``neg_log_loss``) or rows of class probabilities whose columns follow
#: ``estimator.classes_``. Higher is better.
neg_cross_entropy_scorer = _CrossEntropyScorer()


def _neg_cross_entropy(Y, log_p, sample_weight=None):
    """The value of :data:`neg_cross_entropy_scorer` from float64 targets ``Y``
    (n, K) (one-hot rows for class labels) and log-probabilities ``log_p``
    (n, K), checked by the caller."""
    # 0 * log(0) counts 0: only the target's support enters.
    per_sample = -np.sum(np.where(Y > 0, Y * log_p, 0.0), axis=1)
    return -_weighted_mean(per_sample, sample_weight)


def _as_probabilities(y_prob):
    y_prob = check_array(y_prob, ensure_2d=False, dtype=[np.float64, np.float32])
    if y_prob.ndim == 1:
        y_prob = np.column_stack([1.0 - y_prob, y_prob])
    if y_prob.ndim != 2:
        raise ValueError(f"y_prob must be 1-D or 2-D, got shape {y_prob.shape}.")
    return y_prob


def _as_target_matrix(y_true, n_classes, labels):
    """Rows of class probabilities from labels (one-hot) or from a 2-D y."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim == 1:
        codes = _codes(y, n_classes, labels, "y_true")
        return np.eye(n_classes)[codes]
    Y = check_array(y, dtype=np.float64, input_name="y_true")
    if Y.shape[1] != n_classes:
        raise ValueError(
            f"y_true has {Y.shape[1]} columns of class probabilities but there "
            f"are {n_classes} predicted classes."
        )
    _check_distribution_rows(Y)
    return Y


def _codes(y, n_classes, labels, name):
    labels = np.arange(n_classes) if labels is None else np.asarray(labels)
    if labels.shape[0] != n_classes:
        raise ValueError(
            f"labels has {labels.shape[0]} entries for {n_classes} classes."
        )
    order = np.argsort(labels, kind="stable")
    pos = np.searchsorted(labels, y, sorter=order)
    pos = np.minimum(pos, n_classes - 1)
    codes = order[pos]
    unknown = labels[codes] != y
    if np.any(unknown):
        raise ValueError(
            f"{name} holds labels {np.unique(np.asarray(y)[unknown]).tolist()!r} "
            f"that are not among the classes {labels.tolist()!r}."
        )
    return codes


def _check_distribution_rows(Y):
    tol = np.sqrt(np.finfo(np.float32).eps) * 10
    if np.any(Y < 0) or np.any(np.abs(Y.sum(axis=1) - 1) > tol):
        raise ValueError(
            "Each row of a 2-D y_true must be a probability distribution: "
            "non-negative and summing to 1."
        )


def _weighted_mean(values, sample_weight):
    if sample_weight is None:
        return float(np.mean(values))
    w = column_or_1d(sample_weight).astype(np.float64)
    check_consistent_length(values, w)
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative, not all 0.")
    return float(np.sum(w * values) / np.sum(w))
