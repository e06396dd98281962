"""What only a GPU can show: the fused CuPy kernels against their references
(the generic softmax path, the NumPy update of the optimizers; fits on CuPy
equal to NumPy fits and through the fused update), placement on the input's
GPU, one device generator per fit, shuffled minibatches, the float64 loss,
and a model fitted with ``device="cuda"`` unpickled where CuPy cannot be
imported.

All tests here are marked ``gpu`` (skipped with the reason where no GPU is
found); ``benchmarks/gpu_check.py`` runs them."""

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import sksoftmax._backend as backend
from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._loss import LinearSoftmaxLoss, _softmax_ce_generic

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


@pytest.fixture(scope="module")
def xp(cp):
    from array_api_compat import array_namespace

    return array_namespace(cp.empty(0))


def _logits(cp, n, K, dtype, seed=0):
    rs = cp.random.RandomState(seed)
    Z = rs.standard_normal((n, K)).astype(dtype) * 3
    y = rs.randint(0, K, n)
    w = rs.uniform(0.5, 2.0, n).astype(dtype)
    return Z, y, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K", [2, 3, 10, 33, 1000])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("eps", [0.0, 0.1], ids=["hard", "smoothed"])
def test_fused_softmax_matches_the_generic_path(cp, xp, dtype, K, weighted, eps):
    from sksoftmax._cupy_kernels import softmax_ce_grad

    n = 1037  # not a multiple of any block or lane group
    Z, y, w = _logits(cp, n, K, dtype)
    w = w if weighted else None
    # The reference: the generic path in float64 on the same numbers.
    w64 = None if w is None else w.astype(cp.float64)
    ref_loss, ref_G = _softmax_ce_generic(Z.astype(cp.float64), y, w64, eps, xp)
    Zk = Z.copy()
    poison = cp.full(n + 5, cp.nan, dtype=cp.float64)
    loss, G = softmax_ce_grad(Zk, y, w, eps, ce=poison)
    assert G is Zk and G.dtype == dtype and loss.dtype == cp.float64
    tol = 1e-5 if dtype == np.float32 else 1e-12
    err = float(cp.linalg.norm(G - ref_G) / cp.linalg.norm(ref_G))
    assert err < tol, err
    assert_allclose(G.get(), ref_G.get(), rtol=0, atol=10 * tol)
    assert_allclose(float(loss), float(ref_loss), rtol=tol)
    assert not cp.isnan(poison[:n]).any()  # every row written


@pytest.fixture
def fused_calls(monkeypatch):
    """A list that gets the name of each fused update kernel call."""
    import sksoftmax._cupy_kernels as kernels

    calls = []
    for name in ("sgd_update", "adam_update"):
        real = getattr(kernels, name)

        def counted(*args, __real=real, __name=name, **kwargs):
            calls.append(__name)
            return __real(*args, **kwargs)

        monkeypatch.setattr(kernels, name, counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "solver,options",
    [
        ("sgd", {}),
        ("sgd", {"nesterovs_momentum": False, "l1": 0.3, "average": True}),
        ("sgd", {"momentum": 0.0, "l2": 2.0}),
        ("adam", {}),
        ("adam", {"l1": 1.0, "l2": 0.5, "average": True}),
    ],
)
@pytest.mark.parametrize("per_feature", [False, True], ids=["scalar", "per-feature"])
def test_fused_updates_match_the_numpy_update(
    cp, xp, fused_calls, solver, options, per_feature, dtype
):
    """The CuPy branch of the optimizers (one fused launch per step) against
    their NumPy update, step after step: momentum, Nesterov, the prox of
    L1/L2 on W only, averaging."""
    from sksoftmax._solvers.optimizers import make_optimizer

    rng = np.random.default_rng(0)
    k, d = 4, 300
    if per_feature:
        scale = np.linspace(0.2, 2.0, d)
        options = {
            key: value * scale if key in ("l1", "l2") else value
            for key, value in options.items()
        }
    params = [(0.2 * rng.standard_normal((k, d))).astype(dtype), np.ones(k, dtype)]
    ref = make_optimizer(solver, learning_rate_init=0.05, **options)
    fused = make_optimizer(solver, learning_rate_init=0.05, **options)
    host = [p.copy() for p in params]
    dev = [cp.asarray(p) for p in params]
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for step in range(6):
        grads = [(0.5 * rng.standard_normal(p.shape)).astype(dtype) for p in params]
        host = ref.update(host, grads, np)
        dev = fused.update(dev, [cp.asarray(g) for g in grads], xp)
        assert len(fused_calls) == step + 1
        for got, want in zip(dev, host, strict=True):
            assert got.dtype == dtype
            assert_allclose(got.get(), want, rtol=tol, atol=tol)
    if "l1" in options:
        assert (host[0] == 0).any()
        if dtype == np.float64:  # float32 may differ next to a threshold
            assert_array_equal(dev[0].get() == 0, host[0] == 0)
    if options.get("average"):
        averages = zip(fused.state["average"], ref.state["average"], strict=True)
        for got, want in averages:
            assert_allclose(got.get(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("target", ["codes", "soft"])
def test_cupy_fit_with_l1_and_average_equals_the_numpy_fit(
    cp, fused_calls, solver, l1_ratio, dtype, target
):
    """The same minibatches (shuffle=False) on CuPy and on NumPy give the
    same model, through the fused update: one launch per minibatch. With
    l1_ratio > 0 the reported model is the last proximal iterate (an average
    would lose its zeros), so l1_ratio=0 checks the averaging end to end.
    Sample weights and soft targets go through the reused gather buffers."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    n, d, K, batch, epochs = 640, 12, 4, 64, 4
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + 1.0
    y = np.argmax(X[:, :K] + rng.standard_normal((n, K)), axis=1)
    if target == "soft":
        y = 0.7 * np.eye(K)[y] + 0.3 * rng.dirichlet(np.ones(K), n)
    X = X.astype(dtype)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype)
    params = dict(
        solver=solver,
        C=0.05,
        l1_ratio=l1_ratio,
        average=True,
        batch_size=batch,
        max_iter=epochs,
        shuffle=False,
        tol=0,
        n_iter_no_change=100,
        learning_rate_init=0.05,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cpu = SoftmaxRegressionClassifier(**params).fit(X, y, sample_weight=sw)
        assert fused_calls == []
        gpu = SoftmaxRegressionClassifier(**params).fit(
            cp.asarray(X), cp.asarray(y), sample_weight=cp.asarray(sw)
        )
    assert fused_calls == [f"{solver}_update"] * (epochs * n // batch)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    coef, intercept = backend.to_numpy(gpu.coef_), backend.to_numpy(gpu.intercept_)
    assert_allclose(coef, cpu.coef_, rtol=tol, atol=tol)
    assert_allclose(intercept, cpu.intercept_, rtol=tol, atol=tol)
    if l1_ratio:
        assert (cpu.coef_ == 0).any()
        if dtype == np.float64:  # float32 may differ next to a threshold
            assert_array_equal(coef == 0, cpu.coef_ == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K", [2, 7])
def test_loss_gradient_on_cupy_matches_numpy(cp, dtype, K, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 9)).astype(dtype)
    y = rng.integers(0, K, 500)
    w = rng.uniform(0.5, 2, 500).astype(dtype)
    loss = LinearSoftmaxLoss(K, 9, alpha=0.01, label_smoothing=0.05)
    coef = rng.standard_normal(loss.n_params) * 0.1
    J_ref, g_ref = loss.loss_gradient(coef, X, y, w)
    calls = []
    real = backend.to_numpy
    monkeypatch.setattr(
        "sksoftmax._loss.to_numpy", lambda a: calls.append(1) or real(a)
    )
    J, g = loss.loss_gradient(coef, cp.asarray(X), cp.asarray(y), cp.asarray(w))
    assert len(calls) == 1
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert_allclose(J, J_ref, rtol=tol)
    assert_allclose(g, g_ref, rtol=tol, atol=tol)


def test_float32_loss_is_summed_in_float64(cp):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 4)).astype(np.float32)
    y = rng.integers(0, 3, 200_000)
    loss = LinearSoftmaxLoss(3, 4)
    W = rng.standard_normal((3, 4)).astype(np.float32)
    b = np.zeros(3, dtype=np.float32)
    J_cpu = float(loss.loss_gradient_arrays(W, b, X, y)[0])
    J, gW, _ = loss.loss_gradient_arrays(
        cp.asarray(W), cp.asarray(b), cp.asarray(X), cp.asarray(y)
    )
    assert J.dtype == cp.float64 and gW.dtype == cp.float32
    assert float(J) == pytest.approx(J_cpu, rel=1e-6)


def test_temporaries_are_made_on_the_input_gpu(cp):
    """With X on the last GPU and GPU 0 current, the evaluation runs there."""
    n_gpus = cp.cuda.runtime.getDeviceCount()
    target_id = n_gpus - 1
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 5)), rng.integers(0, 4, 300)
    loss = LinearSoftmaxLoss(4, 5, alpha=0.1)
    with cp.cuda.Device(target_id):
        Xd, yd = cp.asarray(X), cp.asarray(y)
        W, b = cp.zeros((4, 5)), cp.zeros(4)
    with cp.cuda.Device(0):
        with backend.on_device(Xd):
            assert cp.cuda.Device().id == target_id
        J, gW, gb = loss.loss_gradient_arrays(W, b, Xd, yd)
        assert gW.device.id == gb.device.id == J.device.id == target_id
        assert cp.cuda.Device().id == 0  # the context is left again
        J_host, _ = loss.loss_gradient(np.zeros(loss.n_params), Xd, yd)
    # With one GPU this checks the context on GPU 0 only; with two or more,
    # that nothing is made on GPU 0 for data on another.
    assert J_host == pytest.approx(np.log(4))


def test_one_device_generator_per_fit(cp):
    X = np.random.default_rng(0).standard_normal((512, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0)
    before = dict(backend._DEVICE_GENERATORS)
    est = SoftmaxRegressionClassifier(
        solver="sgd",
        batch_size=64,
        max_iter=5,
        tol=0,
        n_iter_no_change=100,
        random_state=0,
        learning_rate_init=0.05,
    )
    with pytest.warns(Warning):
        est.fit(cp.asarray(X), cp.asarray(y))
    new = [k for k in backend._DEVICE_GENERATORS if k not in before]
    assert len(new) == 1  # five epochs, one generator


def test_shuffled_minibatches_on_the_gpu(cp):
    """Shuffled minibatches (several per epoch, not one full batch): the same
    random_state gives the same model, another one another model, and the
    fit reaches the CPU's objective."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 8)).astype(np.float32)
    y = np.argmax(X[:, :4] + 0.5 * rng.standard_normal((2000, 4)), axis=1)
    params = dict(
        solver="sgd",
        batch_size=32,
        max_iter=8,
        learning_rate_init=0.05,
        tol=0,
        n_iter_no_change=100,
        shuffle=True,
    )

    def fit(seed, device):
        with pytest.warns(Warning):
            return SoftmaxRegressionClassifier(
                random_state=seed, device=device, **params
            ).fit(X, y)

    a, b, c = fit(0, "cuda"), fit(0, "cuda"), fit(1, "cuda")
    assert_allclose(a.coef_, b.coef_)
    assert np.max(np.abs(a.coef_ - c.coef_)) > 1e-4
    unshuffled = SoftmaxRegressionClassifier(
        device="cuda", random_state=0, **{**params, "shuffle": False}
    )
    with pytest.warns(Warning):
        unshuffled.fit(X, y)
    assert np.max(np.abs(a.coef_ - unshuffled.coef_)) > 1e-4
    cpu = fit(0, "cpu")
    assert a.loss_curve_[-1] == pytest.approx(cpu.loss_curve_[-1], rel=0.05)
    assert len(a.loss_curve_) == 8


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_cuda_model_unpickles_where_cupy_cannot_be_imported(solver, tmp_path):
    """Everything stored on the estimator is NumPy (optimizer state too): it
    unpickles without CuPy, and predicts there once ``device="cpu"``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = rng.integers(0, 3, 300)
    est = SoftmaxRegressionClassifier(
        solver=solver, device="cuda", max_iter=3, random_state=0
    )
    with pytest.warns(Warning):
        est.fit(X, y)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "proba.npy", est.predict_proba(X))
    code = textwrap.dedent(
        f"""
        import importlib.abc, pickle, sys
        import numpy as np

        class NoCuPy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cupy", "cupyx", "cupy_backends"):
                    raise ImportError("CuPy is blocked in this process")
                return None

        sys.meta_path.insert(0, NoCuPy())
        sys.path.insert(0, {str(backend.__file__.rsplit("/", 2)[0])!r})
        est = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        try:  # device="cuda" still asks for CuPy, and says so
            est.predict_proba(X)
            raise AssertionError("device='cuda' predicted without CuPy")
        except ImportError as exc:
            assert "CuPy" in str(exc), exc
        proba = est.set_params(device="cpu").predict_proba(X)
        np.testing.assert_allclose(proba, np.load({str(tmp_path / "proba.npy")!r}))
        assert not any(m.startswith("cupy") for m in sys.modules)
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_compute_target_context_and_gather_into_a_buffer(cp):
    X = cp.arange(40, dtype=cp.float32).reshape(10, 4)
    place = backend.ComputeTarget(None, X)
    with place.context():
        assert cp.cuda.Device().id == X.device.id
    out = cp.empty((8, 4), dtype=cp.float32)
    idx = cp.asarray([3, 1, 7])
    got = backend.take_rows(X, idx, None, out=out)
    assert got.data.ptr == out.data.ptr  # written into the buffer
    assert_allclose(got.get(), X.get()[[3, 1, 7]])
