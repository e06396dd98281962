"""A NumPy copy of a fitted estimator, for saving (pickle, skops) and ONNX export."""

import copy

import numpy as np
import scipy.sparse as sp

from ._backend import is_foreign_array, to_numpy

__all__ = ["to_numpy_estimator"]

_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def to_numpy_estimator(estimator):
    """A deep copy of a fitted estimator with every array attribute in NumPy.

    A model fitted on CuPy arrays, torch tensors or any Array API array keeps
    its fitted attributes (``coef_``, ``intercept_``, optimizer state) in that
    namespace and on that device. skops, ONNX converters and a CPU-only
    machine that unpickles the model need NumPy arrays: this returns a copy
    whose arrays, at any depth (nested estimators of a Pipeline or a
    meta-estimator, lists, tuples, dicts and plain objects holding arrays),
    are NumPy arrays. The original is left unchanged. Parameters are copied
    as they are: a model built with ``device="cuda"`` still computes on the
    GPU when it predicts; ``set_params(device=None)`` on the copy makes it
    follow its (NumPy) input instead.

    Parameters
    ----------
    estimator : estimator instance
        Typically a fitted ``SoftmaxRegressionClassifier``, or a Pipeline or
        meta-estimator holding one; any scikit-learn estimator works.

    Returns
    -------
    estimator_copy : estimator instance
        Same type and parameters, every array a NumPy array on the host.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> import numpy as np
    >>> from sksoftmax import SoftmaxRegressionClassifier, to_numpy_estimator
    >>> X = xps.asarray([[0.0], [1.0], [2.0], [3.0]])
    >>> y = xps.asarray([0, 0, 1, 1])
    >>> clf = SoftmaxRegressionClassifier().fit(X, y)
    >>> type(clf.coef_).__module__.split(".")[0]
    'array_api_strict'
    >>> host = to_numpy_estimator(clf)
    >>> type(host.coef_)
    <class 'numpy.ndarray'>
    >>> host.predict(np.array([[0.0], [3.0]]))
    array([0, 1])
    """
    return _convert(estimator, {})


def _convert(obj, memo):
    key = id(obj)
    if key in memo:
        return memo[key]
    if is_foreign_array(obj):
        # np.array copies: DLPack may share memory with a CPU tensor.
        out = np.array(to_numpy(obj), copy=True)
    elif isinstance(obj, (np.ndarray, np.generic) + _SCALARS) or sp.issparse(obj):
        out = copy.deepcopy(obj)
    elif isinstance(obj, list):
        out = [_convert(v, memo) for v in obj]
    elif isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        out = tuple(_convert(v, memo) for v in obj)
    elif isinstance(obj, dict):
        out = type(obj)((k, _convert(v, memo)) for k, v in obj.items())
    elif hasattr(obj, "__dict__") and not isinstance(obj, type) and not callable(obj):
        out = copy.copy(obj)
        memo[key] = out
        out.__dict__.update({k: _convert(v, memo) for k, v in vars(obj).items()})
    else:  # functions, classes, RandomState and anything without a __dict__
        out = copy.deepcopy(obj)
    memo[key] = out
    return out
