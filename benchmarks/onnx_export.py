"""ONNX export: how far the exported probabilities are from predict_proba.

One command::

    python benchmarks/onnx_export.py

For each case it exports the model twice, with sksoftmax's converter
(``sksoftmax.onnx.register()``) and by the route users try first, reusing
skl2onnx's LogisticRegression converter, runs both in onnxruntime on float32
input and prints the largest |dP| against ``predict_proba`` in float32 and
the share of labels that differ from ``predict``.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's package, also when not installed

import onnxruntime as ort  # noqa: E402
from skl2onnx import to_onnx, update_registered_converter  # noqa: E402
from skl2onnx.common.shape_calculator import (  # noqa: E402
    calculate_linear_classifier_output_shapes,
)
from skl2onnx.operator_converters.linear_classifier import (  # noqa: E402
    convert_sklearn_linear_classifier,
)
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import sksoftmax.onnx  # noqa: E402
from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402


def _data(n_classes):
    X, y = make_classification(
        n_samples=2000,
        n_features=20,
        n_informative=10,
        n_redundant=0,
        n_classes=n_classes,
        random_state=0,
    )
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _run(model, X):
    onx = to_onnx(model, X[:1], options={"zipmap": False}, target_opset=18)
    sess = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return sess.run(None, {sess.get_inputs()[0].name: X})


def _errors(model, X):
    label, proba = _run(model, X)
    return (
        float(np.abs(proba - model.predict_proba(X)).max()),
        float(np.mean(label != model.predict(X))),
    )


def _cases():
    for n_classes in (2, 5):
        X, y = _data(n_classes)
        clf = SoftmaxRegressionClassifier(max_iter=1000).fit(X, y)
        yield f"{n_classes} classes", clf, X
        hot = SoftmaxRegressionClassifier(C=1e4, max_iter=1000).fit(X[:200], y[:200])
        hot.calibrate_temperature(X[1000:], y[1000:])
        yield f"{n_classes} classes, T={hot.temperature_:.2f}", hot, X


def main():
    rows = []
    for name, model, X in _cases():
        sksoftmax.onnx.register()
        ours = _errors(model, X)
        update_registered_converter(  # the naive route: LogisticRegression's
            SoftmaxRegressionClassifier,
            "SksoftmaxSoftmaxRegressionClassifier",
            calculate_linear_classifier_output_shapes,
            convert_sklearn_linear_classifier,
            options={
                "zipmap": [True, False, "columns"],
                "nocl": [True, False],
                "raw_scores": [True, False],
            },
        )
        naive = _errors(model, X)
        rows.append((name, *ours, *naive))
    sksoftmax.onnx.register()
    print(
        "| model | sksoftmax max abs dP | labels differ | "
        "LogisticRegression converter max abs dP | labels differ |"
    )
    print("|---|---|---|---|---|")
    for name, dp, dl, ndp, ndl in rows:
        print(f"| {name} | {dp:.1e} | {dl:.1%} | {ndp:.2g} | {ndl:.1%} |")


if __name__ == "__main__":
    main()
