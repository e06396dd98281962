"""ONNX export through skl2onnx: ``sksoftmax.onnx.register()`` once, then ``to_onnx``.

Needs the ``onnx`` extra (``pip install "sksoftmax[onnx]"``: skl2onnx and
onnxruntime). After :func:`register`, skl2onnx's ``to_onnx`` and
``convert_sklearn`` convert :class:`~sksoftmax.SoftmaxRegressionClassifier`
and :class:`~sksoftmax.SoftmaxRegressionCV`, alone or inside a ``Pipeline``.

The graph computes what ``predict`` and ``predict_proba`` compute::

    logits = X @ W_full.T + b_full      (binary: W_full = [0; w], a zero logit)
    probabilities = Softmax(logits / temperature_)
    label = classes_[ArgMax(logits)]

Reusing LogisticRegression's converter instead is wrong for these models:
skl2onnx's linear-classifier converter treats a binary estimator that is not
``LogisticRegression`` as a one-vs-rest margin and computes ``sigmoid(2 z)``,
and it ignores ``temperature_``.

Examples
--------
>>> import numpy as np
>>> import onnxruntime as ort
>>> from skl2onnx import to_onnx
>>> from sklearn.datasets import load_iris
>>> import sksoftmax.onnx
>>> from sksoftmax import SoftmaxRegressionClassifier
>>> sksoftmax.onnx.register()
>>> X, y = load_iris(return_X_y=True)
>>> X = X.astype(np.float32)
>>> clf = SoftmaxRegressionClassifier(max_iter=1000).fit(X, y)
>>> onx = to_onnx(clf, X[:1], options={"zipmap": False})
>>> sess = ort.InferenceSession(
...     onx.SerializeToString(), providers=["CPUExecutionProvider"]
... )
>>> label, proba = sess.run(None, {"X": X})
>>> bool(np.abs(proba - clf.predict_proba(X)).max() <= 1e-6)
True
>>> bool((label == clf.predict(X)).all())
True
"""

import numpy as np

try:
    from onnx import TensorProto
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
    )
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "sksoftmax.onnx needs skl2onnx and onnx: pip install 'sksoftmax[onnx]'."
    ) from exc

from ._backend import to_numpy
from ._classifier import SoftmaxRegressionClassifier
from ._cv import SoftmaxRegressionCV

__all__ = ["register"]

_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False]}


def register():
    """Register the ONNX converters of sksoftmax's classifiers with skl2onnx.

    Call once per process before ``skl2onnx.to_onnx`` or ``convert_sklearn``;
    calling again is harmless. The converters accept skl2onnx's classifier
    options ``zipmap`` and ``nocl``; pass ``options={"zipmap": False}`` to
    get the probabilities as one float tensor.
    """
    for estimator_type in (SoftmaxRegressionClassifier, SoftmaxRegressionCV):
        update_registered_converter(
            estimator_type,
            f"Sksoftmax{estimator_type.__name__}",
            calculate_linear_classifier_output_shapes,
            _convert,
            options=_OPTIONS,
        )


def _convert(scope, operator, container):
    """Write the graph of ``predict``/``predict_proba`` for one estimator."""
    model = operator.raw_operator
    X = operator.inputs[0]
    proto = guess_proto_type(X.type)
    if proto not in (TensorProto.FLOAT, TensorProto.DOUBLE):
        raise NotImplementedError(
            f"sksoftmax's ONNX converter takes float or double input, got {X.type}."
        )
    dtype = np.float32 if proto == TensorProto.FLOAT else np.float64
    W = np.asarray(to_numpy(model.coef_), dtype=np.float64)
    b = np.asarray(to_numpy(model.intercept_), dtype=np.float64)
    if W.shape[0] == 1:  # binary: the logit of class 0 is 0
        W = np.vstack([np.zeros_like(W), W])
        b = np.concatenate([[0.0], b])

    def constant(name, value, tensor_type=proto):
        unique = scope.get_unique_variable_name(name)
        value = np.asarray(value)
        container.add_initializer(
            unique, tensor_type, list(value.shape), value.ravel().tolist()
        )
        return unique

    def node(op_type, inputs, name, output=None, **attrs):
        output = output or scope.get_unique_variable_name(name)
        container.add_node(
            op_type, inputs, output, name=scope.get_unique_operator_name(name), **attrs
        )
        return output

    weights = constant("coef_t", np.ascontiguousarray(W.T.astype(dtype)))
    logits = node("MatMul", [X.full_name, weights], "matmul")
    if np.any(b != 0):
        logits = node("Add", [logits, constant("intercept", b.astype(dtype))], "add")
    scaled = logits
    temperature = float(getattr(model, "temperature_", 1.0))
    if temperature != 1.0:
        T = constant("temperature", np.array([temperature], dtype=dtype))
        scaled = node("Div", [logits, T], "temperature")
    node("Softmax", [scaled], "softmax", output=operator.outputs[1].full_name, axis=1)
    label = operator.outputs[0].full_name
    if container.get_options(model, dict(nocl=False))["nocl"]:
        # nocl: the label output holds class indices, not the classes
        node("ArgMax", [logits], "argmax", output=label, axis=1, keepdims=0)
        return
    codes = node("ArgMax", [logits], "argmax", axis=1, keepdims=0)
    classes = np.asarray(to_numpy(model.classes_))
    if classes.dtype.kind in "iub":
        table = constant("classes", classes.astype(np.int64), TensorProto.INT64)
    elif classes.dtype.kind in "UO":
        unique = scope.get_unique_variable_name("classes")
        container.add_initializer(
            unique,
            TensorProto.STRING,
            [len(classes)],
            [str(c).encode("utf-8") for c in classes],
        )
        table = unique
    else:
        raise NotImplementedError(
            "sksoftmax's ONNX converter supports integer and string class labels, "
            f"got classes_ of dtype {classes.dtype}."
        )
    node("Gather", [table, codes], "label", output=label)
