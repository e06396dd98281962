"""ONNX export: the exported graph, run in onnxruntime, against predict_proba."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
from skl2onnx import to_onnx  # noqa: E402

import sksoftmax.onnx  # noqa: E402
from sksoftmax import (  # noqa: E402
    SoftmaxRegressionClassifier,
    SoftmaxRegressionCV,
    to_numpy_estimator,
)
from sksoftmax._compat import skip_onnx_standard_scaler_parity  # noqa: E402

sksoftmax.onnx.register()


def _data(n_classes, seed=0):
    X, y = make_classification(
        n_samples=300,
        n_features=8,
        n_informative=5,
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    # unscaled features, so that the pipelines' scalers matter
    return (X * [1, 10, 100, 0.1, 1, 3, 5, 7] + 4).astype(np.float32), y


def _run(model, X):
    onx = to_onnx(model, X[:1], options={"zipmap": False}, target_opset=18)
    sess = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    label, proba = sess.run(None, {sess.get_inputs()[0].name: X})
    return label, proba


def _check(model, X):
    label, proba = _run(model, X)
    expected = model.predict_proba(X)
    assert expected.dtype == proba.dtype == X.dtype
    assert np.abs(proba - expected).max() <= 1e-6
    assert_array_equal(label, model.predict(X))


CASES = {
    "binary": (2, {}),
    "multiclass": (4, {}),
    "no-intercept": (3, {"fit_intercept": False}),
    "binary-no-intercept": (2, {"fit_intercept": False}),
    "l1": (3, {"l1_ratio": 1.0, "C": 0.1}),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_predict_proba_in_float32(case):
    n_classes, params = CASES[case]
    X, y = _data(n_classes)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    _check(SoftmaxRegressionClassifier(**params, max_iter=500).fit(X, y), X)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_temperature_is_exported(n_classes):
    X, y = _data(n_classes)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    # overfitted on a few samples, so held-out calibration moves T well off 1
    clf = SoftmaxRegressionClassifier(C=1e4, max_iter=500).fit(X[:40], y[:40])
    clf.calibrate_temperature(X[100:], y[100:])
    assert abs(clf.temperature_ - 1.0) > 0.2
    _check(clf, X)


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog", "emu"]), np.array([3, 7, 11]), np.array(["no", "yes"])],
    ids=["strings", "integers", "binary-strings"],
)
def test_string_and_integer_labels(labels):
    X, y = _data(len(labels))
    X = StandardScaler().fit_transform(X).astype(np.float32)
    clf = SoftmaxRegressionClassifier(max_iter=500).fit(X, labels[y])
    label, _ = _run(clf, X)
    assert_array_equal(label, clf.predict(X))
    _check(clf, X)


@pytest.mark.parametrize("scaler", [StandardScaler, MinMaxScaler])
def test_inside_a_pipeline_with_a_scaler(scaler):
    if scaler is StandardScaler and (reason := skip_onnx_standard_scaler_parity()):
        pytest.skip(reason)
    X, y = _data(3)
    pipe = make_pipeline(scaler(), SoftmaxRegressionClassifier(max_iter=500))
    _check(pipe.fit(X, y), X)


def test_float64_graph():
    X, y = _data(3)
    X = StandardScaler().fit_transform(X.astype(np.float64))
    clf = SoftmaxRegressionClassifier(max_iter=500).fit(X, y)
    label, proba = _run(clf, X)
    assert proba.dtype == np.float64
    assert np.abs(proba - clf.predict_proba(X)).max() <= 1e-12
    assert_array_equal(label, clf.predict(X))


def test_cv_estimator_is_exported():
    X, y = _data(3)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    _check(SoftmaxRegressionCV(Cs=3, cv=3).fit(X, y), X)


def test_model_fitted_on_another_namespace_after_to_numpy_estimator():
    xps = pytest.importorskip("array_api_strict")
    X, y = _data(3)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    clf = SoftmaxRegressionClassifier(max_iter=500).fit(xps.asarray(X), xps.asarray(y))
    host = to_numpy_estimator(clf)
    assert isinstance(host.coef_, np.ndarray)
    _check(host, X)


def test_nocl_option_gives_class_indices():
    X, y = _data(3)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    clf = SoftmaxRegressionClassifier(max_iter=500).fit(X, np.array(["a", "b", "c"])[y])
    onx = to_onnx(clf, X[:1], options={"zipmap": False, "nocl": True})
    sess = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    codes, proba = sess.run(None, {sess.get_inputs()[0].name: X})
    assert_array_equal(clf.classes_[codes], clf.predict(X))
    assert np.abs(proba - clf.predict_proba(X)).max() <= 1e-6
