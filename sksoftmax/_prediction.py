"""The fitted model applied to new rows, in the namespace and on the device of
the input: the logits, and the labels from class codes."""

import numpy as np
from sklearn import get_config

from ._backend import (
    ComputeTarget,
    asarray_like,
    device,
    get_namespace,
    is_foreign_array,
    to_numpy,
)
from ._loss import LinearSoftmaxLoss

__all__ = ["check_same_namespace", "labels", "logits", "map_dask"]


def check_same_namespace(X, coef, device_param, where):
    """Under array API dispatch, refuse X from another namespace or device
    than the fitted coefficients (scikit-learn's contract); ``where`` names
    the method for the message."""
    if not get_config()["array_api_dispatch"] or device_param is not None:
        return
    if is_foreign_array(X) == is_foreign_array(coef) and (
        not is_foreign_array(X)
        or (get_namespace(X) is get_namespace(coef) and device(X) == device(coef))
    ):
        return
    raise ValueError(
        f"Inputs passed to {where}() must use the same namespace and the same "
        "device as those passed to fit()."
    )


def logits(X, coef, intercept, n_classes, device_param):
    """Full logits (n, n_classes) of validated ``X`` where the arithmetic runs
    (binary gets the zero column of class 0), the namespace there, and the
    placement (to send results back to the input's namespace)."""
    place = ComputeTarget(device_param, X)
    X = place.to_compute(X)
    xp = get_namespace(X)
    with place.context():
        W = asarray_like(to_numpy(coef), X, xp=xp)
        b = asarray_like(to_numpy(intercept), X, xp=xp)
        loss = LinearSoftmaxLoss(n_classes, W.shape[1])
        return loss.logits(X, W, b, xp=xp), xp, place


def labels(codes, classes):
    """``classes[codes]`` in the namespace of ``codes`` where ``classes`` can
    live there (numbers), else as a NumPy array."""
    if not is_foreign_array(codes) or not np.issubdtype(classes.dtype, np.number):
        return classes[to_numpy(codes)]
    xp = get_namespace(codes)
    return xp.take(xp.asarray(classes, device=device(codes)), codes, axis=0)


def map_dask(X, method, fn, n_classes, classes_dtype):
    """``fn`` (the estimator's ``method``) on each row chunk of the Dask array
    ``X``: a lazy Dask array; X is never gathered on the client."""
    from ._data.dask import map_rows

    if method == "predict":
        return map_rows(X, fn, None, classes_dtype)
    n_columns = None if method == "decision_function" and n_classes == 2 else n_classes
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    return map_rows(X, fn, n_columns, dtype)
