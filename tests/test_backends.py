"""The Array API path: the same fits and predictions on array_api_strict (and
torch or CuPy where installed) as on NumPy, results in the input namespace,
and the ``device`` parameter."""

import importlib.util
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import config_context
from sklearn.datasets import make_classification

import sksoftmax._backend as backend
from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._compat import skip_array_api_dispatch

array_api_strict = pytest.importorskip("array_api_strict")


SOLVERS = {
    "lbfgs": dict(solver="lbfgs", tol=1e-10, max_iter=500),
    "sgd": dict(solver="sgd", learning_rate_init=0.05, max_iter=5, random_state=0),
    "adam": dict(solver="adam", learning_rate_init=0.05, max_iter=5, random_state=0),
}


def _strict(a, device="CPU_DEVICE"):
    return array_api_strict.asarray(a, device=array_api_strict.Device(device))


def _namespaces():
    yield pytest.param("array_api_strict", id="array_api_strict")
    yield pytest.param(
        "torch",
        id="torch-cpu",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("torch") is None, reason="torch not installed"
        ),
    )
    yield pytest.param("cupy", id="cupy", marks=pytest.mark.gpu)


def _to_namespace(name, a):
    if name == "array_api_strict":
        return _strict(a)
    if name == "torch":
        import torch

        return torch.asarray(a)
    import cupy

    return cupy.asarray(a)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=120,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        random_state=0,
    )
    return X, y


@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("ns", list(_namespaces()))
@pytest.mark.parametrize("dispatch", [False, True], ids=["plain", "dispatch"])
def test_fit_and_predict_match_numpy(ns, solver, binary, dispatch, data):
    if dispatch and (reason := skip_array_api_dispatch()):
        pytest.skip(reason)
    X, y = data
    if binary:
        y = (y > 0).astype(int)
    ref = SoftmaxRegressionClassifier(**SOLVERS[solver]).fit(X, y)
    X_ns, y_ns = _to_namespace(ns, X), _to_namespace(ns, y)
    with config_context(array_api_dispatch=dispatch):
        est = SoftmaxRegressionClassifier(**SOLVERS[solver]).fit(X_ns, y_ns)
        proba = est.predict_proba(X_ns)
        log_proba = est.predict_log_proba(X_ns)
        decision = est.decision_function(X_ns)
        pred = est.predict(X_ns)
        score = est.score(X_ns, y_ns)
    xp_in = backend.get_namespace(X_ns)
    for out in (est.coef_, est.intercept_, proba, log_proba, decision, pred):
        assert backend.get_namespace(out) is xp_in
    assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(
        backend.to_numpy(est.intercept_), ref.intercept_, rtol=1e-6, atol=1e-8
    )
    assert_allclose(backend.to_numpy(proba), ref.predict_proba(X), atol=1e-6)
    assert_allclose(
        backend.to_numpy(log_proba), ref.predict_log_proba(X), rtol=1e-6, atol=1e-6
    )
    assert_allclose(
        backend.to_numpy(decision), ref.decision_function(X), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_array_equal(backend.to_numpy(pred), ref.predict(X))
    assert score == pytest.approx(ref.score(X, y))


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_float32_stays_float32_on_array_api(solver, data):
    X, y = data
    X32 = _strict(X.astype(np.float32), device="device1")
    est = SoftmaxRegressionClassifier(**SOLVERS[solver]).fit(X32, _strict(y))
    assert est.coef_.dtype == array_api_strict.float32
    assert est.coef_.device == X32.device
    assert est.predict_proba(X32).dtype == array_api_strict.float32
    ref = SoftmaxRegressionClassifier(**SOLVERS[solver]).fit(X.astype(np.float32), y)
    assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-3, atol=1e-3)


def test_no_copy_of_x_to_numpy(monkeypatch, data):
    """X (n x d) and the logits (n x K) never leave the array's namespace:
    only parameters, gradients (d*K numbers) and the labels do."""
    X, y = data
    n = X.shape[0]
    moved = []
    real = backend.to_numpy

    def spy(a):
        if getattr(a, "ndim", 0) == 2 and a.shape[0] == n:
            moved.append(a.shape)
        return real(a)

    modules = (
        "sksoftmax._backend",
        "sksoftmax._loss",
        "sksoftmax._classifier",
        "sksoftmax._validation",
        "sksoftmax._training",
        "sksoftmax._solvers.minibatch",
    )
    for module in modules:
        monkeypatch.setattr(f"{module}.to_numpy", spy)
    for solver in SOLVERS:
        est = SoftmaxRegressionClassifier(**SOLVERS[solver])
        est.fit(_strict(X, "device1"), _strict(y, "device1"))
        est.predict_proba(_strict(X, "device1"))
    assert moved == []


def test_numpy_only_call_fails_loudly():
    """array_api_strict refuses NumPy-only calls: a NumPy function reaching the
    agnostic path would raise, which is what keeps the tests above honest."""
    a = _strict(np.ones((2, 2)), "device1")
    with pytest.raises((TypeError, RuntimeError, AttributeError)):
        np.exp(a)
    with pytest.raises(AttributeError):
        a.sum(axis=0)


def test_device_cpu_with_array_api_input_returns_input_namespace(data):
    X, y = data
    est = SoftmaxRegressionClassifier(device="cpu").fit(_strict(X), _strict(y))
    assert backend.get_namespace(est.coef_) is array_api_strict
    proba = est.predict_proba(_strict(X))
    assert backend.get_namespace(proba) is array_api_strict
    ref = SoftmaxRegressionClassifier().fit(X, y)
    assert_allclose(backend.to_numpy(proba), ref.predict_proba(X), atol=1e-10)


def test_mixed_namespaces_follow_x(data):
    X, y = data
    w = np.linspace(0.5, 2.0, X.shape[0])
    est = SoftmaxRegressionClassifier().fit(_strict(X), y, sample_weight=_strict(w))
    ref = SoftmaxRegressionClassifier().fit(X, y, sample_weight=w)
    assert backend.get_namespace(est.coef_) is array_api_strict
    assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-6)


def test_same_namespace_enforced_under_dispatch(data):
    if reason := skip_array_api_dispatch():
        pytest.skip(reason)
    X, y = data
    with config_context(array_api_dispatch=True):
        est = SoftmaxRegressionClassifier().fit(_strict(X), _strict(y))
        with pytest.raises(ValueError, match="must use the same namespace"):
            est.predict(X)


def test_foreign_input_validation(data):
    X, y = data
    est = SoftmaxRegressionClassifier()
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.fit(_strict(bad), y)
    with pytest.raises(ValueError, match="2-D"):
        est.fit(_strict(X[:, 0]), y)
    est.fit(_strict(X), y)
    with pytest.raises(ValueError, match="features"):
        est.predict(_strict(X[:, :3]))


@pytest.mark.skipif(
    importlib.util.find_spec("cupy") is not None, reason="CuPy is installed"
)
def test_device_cuda_without_cupy_says_what_to_install(data):
    X, y = data
    with pytest.raises(ImportError, match="cupy-cuda"):
        SoftmaxRegressionClassifier(device="cuda").fit(X, y)


def test_package_import_does_not_import_cupy():
    import subprocess
    import sys

    code = (
        "import sys, sksoftmax; from sksoftmax import SoftmaxRegressionClassifier;"
        "import numpy as np;"
        "SoftmaxRegressionClassifier().fit(np.eye(3), [0, 1, 2]);"
        "print('cupy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize(
    "dtype,tol", [(np.float64, 1e-4), (np.float32, 1e-3)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_cuda_matches_cpu_and_returns_numpy(solver, dtype, tol, data):
    X, y = data
    X = X.astype(dtype)
    cpu = SoftmaxRegressionClassifier(**SOLVERS[solver]).fit(X, y)
    gpu = SoftmaxRegressionClassifier(device="cuda", **SOLVERS[solver]).fit(X, y)
    assert isinstance(gpu.coef_, np.ndarray) and gpu.coef_.dtype == dtype
    assert_allclose(gpu.coef_, cpu.coef_, rtol=tol, atol=tol)
    proba = gpu.predict_proba(X)
    assert isinstance(proba, np.ndarray)
    assert_allclose(proba, cpu.predict_proba(X), atol=tol)
    restored = pickle.loads(pickle.dumps(gpu))
    assert_allclose(restored.predict_proba(X), proba)


@pytest.mark.gpu
def test_cuda_sparse_input(data):
    import scipy.sparse as sp

    X, y = data
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    cpu = SoftmaxRegressionClassifier(tol=1e-8).fit(Xs, y)
    gpu = SoftmaxRegressionClassifier(tol=1e-8, device="cuda").fit(Xs, y)
    assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-4, atol=1e-6)


def test_device_out_of_memory_names_the_sizes(monkeypatch, data):
    """An out-of-memory error from the device library becomes a MemoryError
    that names the array sizes and what to change."""

    class OutOfMemoryError(Exception):  # the name CuPy's error carries
        pass

    def boom(*args, **kwargs):
        raise OutOfMemoryError("out of memory allocating 8 GiB")

    X, y = data
    monkeypatch.setattr("sksoftmax._training.minimize_lbfgs", boom)
    with pytest.raises(MemoryError, match=r"shape \(120, 6\).*float32"):
        SoftmaxRegressionClassifier().fit(X, y)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_labels_checked_on_device_match_host_path(weighted, data):
    """Labels beside X on its device are encoded there; same model as NumPy."""
    X, y = data
    labels = np.array([-3, 5, 11])[y]
    w = np.linspace(0.5, 2.0, X.shape[0]) if weighted else None
    ref = SoftmaxRegressionClassifier().fit(X, labels, sample_weight=w)
    est = SoftmaxRegressionClassifier().fit(
        _strict(X, "device1"),
        _strict(labels, "device1"),
        sample_weight=None if w is None else _strict(w, "device1"),
    )
    np.testing.assert_array_equal(est.classes_, ref.classes_)
    assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-6)
    pred = est.predict(_strict(X, "device1"))
    np.testing.assert_array_equal(backend.to_numpy(pred), ref.predict(X))


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.full(120, 0.5), "continuous"),
        (np.r_[np.nan, np.zeros(119)], "NaN"),
        (np.zeros(120), "only one class"),
        (np.zeros(7), "inconsistent numbers of samples"),
    ],
    ids=["continuous", "nan", "one-class", "length"],
)
def test_device_label_errors(bad, match, data):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        SoftmaxRegressionClassifier().fit(_strict(X), _strict(bad))


@pytest.mark.parametrize(
    "w,match",
    [
        (-np.ones(120), "Negative"),
        (np.zeros(120), "all zero"),
        (np.r_[np.inf, np.ones(119)], "NaN or infinity"),
    ],
    ids=["negative", "zero", "inf"],
)
def test_device_weight_errors(w, match, data):
    X, y = data
    with pytest.raises(ValueError, match=match):
        SoftmaxRegressionClassifier().fit(
            _strict(X), _strict(y), sample_weight=_strict(w)
        )


@pytest.mark.parametrize("l1_ratio", [0.0, 0.5], ids=["l2", "elastic-net"])
def test_temperature_and_elastic_net_on_array_api(l1_ratio, data):
    X, y = data
    kw = dict(C=50.0, l1_ratio=l1_ratio, tol=1e-10, max_iter=2000)
    ref = SoftmaxRegressionClassifier(**kw).fit(X[:80], y[:80])
    est = SoftmaxRegressionClassifier(**kw).fit(_strict(X[:80]), _strict(y[:80]))
    if l1_ratio:
        # The L1 split stops on L-BFGS-B's relative-reduction test, which
        # round-off decides: NumPy's fast path sums in another order than the
        # generic path and stopped 7e-7 (1e-6 relative) above it here, with
        # the coefficients 9e-3 apart. Same optimum at that accuracy; then the
        # array API path must calibrate and predict the same model identically.
        assert_allclose(ref.best_loss_, est.best_loss_, rtol=1e-5)
        scale = np.abs(ref.coef_).max()
        assert_allclose(backend.to_numpy(est.coef_), ref.coef_, atol=2e-2 * scale)
        ref.coef_ = backend.to_numpy(est.coef_).copy()
        ref.intercept_ = backend.to_numpy(est.intercept_).copy()
    ref.calibrate_temperature(X[80:], y[80:])
    est.calibrate_temperature(_strict(X[80:]), _strict(y[80:]))
    assert est.temperature_ == pytest.approx(ref.temperature_, rel=1e-6)
    assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-5, atol=1e-7)
    assert_allclose(
        backend.to_numpy(est.predict_proba(_strict(X))), ref.predict_proba(X), atol=1e-6
    )


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft-labels"])
def test_stochastic_features_on_array_api(solver, soft, data):
    """Several minibatches per epoch (n not a multiple of batch_size), soft
    labels, smoothing, elastic-net, early stopping, warm_start and partial_fit
    on array_api_strict give NumPy's model."""
    X, y = data
    Y = np.eye(3)[y] * 0.8 + 0.2 / 3 if soft else y
    kw = dict(
        solver=solver,
        batch_size=50,
        learning_rate_init=0.05,
        max_iter=4,
        random_state=0,
        label_smoothing=0.1,
        l1_ratio=0.3,
    )
    dev = "device1"
    for extra in (
        dict(),
        dict(early_stopping=True, validation_fraction=0.2),
        dict(warm_start=True),
    ):
        ref = SoftmaxRegressionClassifier(**kw, **extra)
        est = SoftmaxRegressionClassifier(**kw, **extra)
        for _ in range(2 if extra.get("warm_start") else 1):
            ref.fit(X, Y)
            est.fit(_strict(X, dev), _strict(Y, dev))
        assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-6, atol=1e-9)
    ref = SoftmaxRegressionClassifier(
        solver=solver, learning_rate_init=0.05, random_state=0
    )
    est = SoftmaxRegressionClassifier(
        solver=solver, learning_rate_init=0.05, random_state=0
    )
    for start in range(0, 120, 50):
        part = slice(start, start + 50)
        ref.partial_fit(X[part], Y[part], classes=[0, 1, 2])
        est.partial_fit(_strict(X[part], dev), _strict(Y[part], dev), classes=[0, 1, 2])
    assert_allclose(backend.to_numpy(est.coef_), ref.coef_, rtol=1e-6, atol=1e-9)
