"""Safe failure: a fit that raises keeps the earlier model; read-only inputs,
threads, seeds and pickles behave."""

import hashlib
import pickle
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import sksoftmax._classifier as classifier_module
import sksoftmax._training as training_module
from sksoftmax import SoftmaxRegressionClassifier

pd = pytest.importorskip("pandas")

SOLVERS = ["lbfgs", "sgd", "adam"]
_rng = np.random.default_rng(0)
X = _rng.normal(size=(60, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int) + 2 * (X[:, 2] > 0.5)  # 4 classes


def _params(solver, **extra):
    if solver == "lbfgs":
        return {"solver": solver, **extra}
    return {
        "solver": solver,
        "learning_rate_init": 0.05,
        "max_iter": 20,
        "random_state": 0,
        **extra,
    }


def _fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


class ArmedCallback:
    """A callback that raises KeyboardInterrupt at iteration 2 once armed."""

    def __init__(self):
        self.armed = False
        self.calls = 0

    def __call__(self, estimator, info):
        self.calls += 1
        if self.armed and info["iteration"] >= 2:
            raise KeyboardInterrupt


def _snapshot(est):
    """Everything in ``__dict__``, as bytes (the callback by identity)."""
    d = dict(est.__dict__)
    callback = d.pop("callback", None)
    return pickle.dumps(d), callback


def _assert_unchanged(est, snapshot, fitted_arrays):
    assert _snapshot(est)[0] == snapshot[0]
    assert est.callback is snapshot[1]
    coef, intercept, classes, n_iter = fitted_arrays
    assert_array_equal(est.coef_, coef)
    assert est.coef_.dtype == coef.dtype
    assert_array_equal(est.intercept_, intercept)
    assert_array_equal(est.classes_, classes)
    assert est.n_iter_ == n_iter


def _fitted_arrays(est):
    return est.coef_.copy(), est.intercept_.copy(), est.classes_.copy(), est.n_iter_


# --------------------------------------------------------------- failing refit


@pytest.fixture(params=SOLVERS)
def fitted(request):
    """A model fitted on a 4-column DataFrame, with an unarmed callback."""
    frame = pd.DataFrame(X, columns=list("abcd"))
    est = SoftmaxRegressionClassifier(
        **_params(request.param), callback=ArmedCallback()
    )
    return _fit_quietly(est, frame, Y)


def test_failed_refit_on_bad_input_keeps_model(fitted):
    # Different width, no names and one class: validation sets n_features_in_
    # and drops feature_names_in_ before it finds the single class.
    snap, arrays = _snapshot(fitted), _fitted_arrays(fitted)
    with pytest.raises(ValueError, match="only one class"):
        fitted.fit(np.ones((10, 7)), np.zeros(10))
    _assert_unchanged(fitted, snap, arrays)
    assert fitted.n_features_in_ == 4
    assert list(fitted.feature_names_in_) == list("abcd")


def test_keyboard_interrupt_mid_training_keeps_model(fitted):
    snap, arrays = _snapshot(fitted), _fitted_arrays(fitted)
    fitted.callback.armed = True
    calls = fitted.callback.calls
    try:
        with pytest.raises(KeyboardInterrupt):
            _fit_quietly(fitted, X[:, ::-1][:50], Y[:50])  # other data
    finally:
        fitted.callback.armed = False
    assert fitted.callback.calls == calls + 2  # training really was under way
    _assert_unchanged(fitted, snap, arrays)
    assert list(fitted.feature_names_in_) == list("abcd")


def test_solver_exception_keeps_model(fitted, monkeypatch):
    def crash_after(original):
        def solver(*args, **kwargs):
            original(*args, **kwargs)
            raise RuntimeError("solver crashed")

        return solver

    for name in ("minimize_lbfgs", "run_epochs"):
        monkeypatch.setattr(
            training_module, name, crash_after(getattr(training_module, name))
        )
    snap, arrays = _snapshot(fitted), _fitted_arrays(fitted)
    with pytest.raises(RuntimeError, match="solver crashed"):
        _fit_quietly(fitted, X[:40, :3], Y[:40])
    _assert_unchanged(fitted, snap, arrays)


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_raised_as_error_keeps_model(solver):
    est = _fit_quietly(SoftmaxRegressionClassifier(**_params(solver)), X, Y)
    snap, arrays = _snapshot(est), _fitted_arrays(est)
    est.set_params(max_iter=1)
    snap = (pickle.dumps({**pickle.loads(snap[0]), "max_iter": 1}), snap[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            est.fit(X * 3, Y)
    _assert_unchanged(est, snap, arrays)


def test_non_finite_solver_result_raises_and_keeps_model(monkeypatch):
    # The solvers' steps are stable now (a proximal L2 step, preconditioned
    # variables), so the non-finite result is planted: whatever produced it,
    # it must be refused and the previous model kept.
    est = _fit_quietly(SoftmaxRegressionClassifier(**_params("sgd")), X, Y)
    snap, arrays = _snapshot(est), _fitted_arrays(est)
    real = classifier_module.train

    def overflowing(*args, **kwargs):
        result = real(*args, **kwargs)
        result.coef = result.coef * np.inf
        return result

    monkeypatch.setattr(classifier_module, "train", overflowing)
    with (
        np.errstate(all="ignore"),
        pytest.raises(
            FloatingPointError,
            match="non-finite coefficients; the previous model is kept",
        ),
    ):
        _fit_quietly(est, X, Y)
    _assert_unchanged(est, snap, arrays)


def test_diverging_sgd_with_finite_parameters_warns():
    # A step far too long for unscaled features (preconditioning and averaging
    # off): the objective grows until "no improvement" stops it, with huge
    # but finite parameters; that must not pass silently as converged.
    est = SoftmaxRegressionClassifier(
        solver="sgd",
        learning_rate_init=1e4,
        momentum=0.99,
        precondition=False,
        average=False,
        max_iter=50,
        random_state=0,
    )
    with (
        np.errstate(all="ignore"),
        pytest.warns(ConvergenceWarning, match="Stochastic optimizer diverged"),
    ):
        est.fit(X * 1e3, Y)
    assert est.n_iter_ < 50
    assert est.loss_curve_[-1] > 1e6 * est.loss_curve_[0]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_healthy_stochastic_fit_does_not_warn_of_divergence(solver):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SoftmaxRegressionClassifier(**_params(solver, max_iter=200)).fit(X, Y)
    assert not [w for w in caught if "diverged" in str(w.message)]


def test_failed_first_fit_leaves_estimator_unfitted():
    est = SoftmaxRegressionClassifier()
    fresh = _snapshot(est)
    with pytest.raises(ValueError, match="only one class"):
        est.fit(pd.DataFrame(X, columns=list("abcd")), np.zeros(len(X)))
    assert _snapshot(est)[0] == fresh[0]
    assert not hasattr(est, "n_features_in_")
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_interrupted_partial_fit_changes_nothing(solver):
    # The RNG and optimizer state are untouched, so the next partial_fit gives
    # exactly what it would have given without the interrupted call.
    def make():
        return SoftmaxRegressionClassifier(**_params(solver)).partial_fit(
            X[:30], Y[:30], classes=np.unique(Y)
        )

    reference = make().partial_fit(X[30:], Y[30:])
    est = make()
    snap, arrays = _snapshot(est), _fitted_arrays(est)

    def interrupt(estimator, info):
        raise KeyboardInterrupt

    est.callback = interrupt
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X[30:], Y[30:])
    est.callback = None
    _assert_unchanged(est, snap, arrays)
    est.partial_fit(X[30:], Y[30:])
    assert_array_equal(est.coef_, reference.coef_)
    assert_array_equal(est.intercept_, reference.intercept_)
    assert est.loss_curve_ == reference.loss_curve_


# -------------------------------------------------------------- read-only input


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_only_memmap_inputs(tmp_path, solver, dtype):
    paths = {}
    for name, a in {
        "X": X.astype(dtype),
        "sw": np.linspace(0.5, 2, len(X)),
        "soft": np.eye(4)[Y] * 0.9 + 0.025,
    }.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], a)
    digests = {name: _sha(p) for name, p in paths.items()}
    Xm = np.load(paths["X"], mmap_mode="r")
    sw = np.load(paths["sw"], mmap_mode="r")
    soft = np.load(paths["soft"], mmap_mode="r")
    assert not Xm.flags.writeable

    params = _params(solver, early_stopping=solver != "lbfgs")
    on_map = _fit_quietly(
        SoftmaxRegressionClassifier(**params), Xm, Y, sample_weight=sw
    )
    in_memory = _fit_quietly(
        SoftmaxRegressionClassifier(**params),
        np.array(Xm),
        Y,
        sample_weight=np.array(sw),
    )
    assert_array_equal(on_map.coef_, in_memory.coef_)
    assert on_map.coef_.dtype == dtype
    assert_array_equal(
        on_map.predict_proba(Xm), in_memory.predict_proba(X.astype(dtype))
    )
    on_soft = _fit_quietly(SoftmaxRegressionClassifier(**_params(solver)), Xm, soft)
    assert np.all(np.isfinite(on_soft.coef_))
    assert {name: _sha(p) for name, p in paths.items()} == digests


# --------------------------------------------------------------------- threads


def _thread_jobs():
    jobs = []
    for i, solver in enumerate(SOLVERS * 2):
        rows = np.random.default_rng(i).permutation(len(X))[:50]
        jobs.append((_params(solver, C=0.5 + i), X[rows], Y[rows]))
    return jobs


def test_fits_in_threads_equal_sequential_fits():
    jobs = _thread_jobs()
    sequential = [
        _fit_quietly(SoftmaxRegressionClassifier(**p), Xj, yj) for p, Xj, yj in jobs
    ]
    # A barrier in the callback keeps every fit mid-training at the same time.
    barrier = threading.Barrier(len(jobs), timeout=60)

    def meet(estimator, info):
        if info["iteration"] == 1:
            barrier.wait()

    def fit_one(job):
        p, Xj, yj = job
        return SoftmaxRegressionClassifier(**p, callback=meet).fit(Xj, yj)

    # Warning filters are process-wide: set them here, not in the threads.
    with warnings.catch_warnings(), ThreadPoolExecutor(len(jobs)) as pool:
        warnings.simplefilter("ignore", ConvergenceWarning)
        threaded = list(pool.map(fit_one, jobs))
    for seq, thr in zip(sequential, threaded, strict=True):
        assert_array_equal(thr.coef_, seq.coef_)
        assert_array_equal(thr.intercept_, seq.intercept_)
        assert thr.n_iter_ == seq.n_iter_
        assert thr.loss_curve_ == seq.loss_curve_


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_same_random_state_gives_bit_identical_models(solver, dtype, early_stopping):
    def fit(seed):
        est = SoftmaxRegressionClassifier(
            **_params(
                solver, random_state=seed, early_stopping=early_stopping, batch_size=16
            )
        )
        return _fit_quietly(est, X.astype(dtype), Y)

    a, b, other = fit(0), fit(0), fit(1)
    assert_array_equal(a.coef_, b.coef_)
    assert_array_equal(a.intercept_, b.intercept_)
    assert a.loss_curve_ == b.loss_curve_
    assert a.validation_scores_ == b.validation_scores_
    # The seed matters (shuffling order), so the equality above says something.
    assert not np.array_equal(a.coef_, other.coef_)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_random_state_gives_identical_partial_fit_streams(solver):
    def stream():
        est = SoftmaxRegressionClassifier(**_params(solver, batch_size=8))
        for start in range(0, len(X), 20):
            est.partial_fit(
                X[start : start + 20], Y[start : start + 20], classes=np.unique(Y)
            )
        return est

    a, b = stream(), stream()
    assert_array_equal(a.coef_, b.coef_)
    assert_array_equal(a.intercept_, b.intercept_)


# ---------------------------------------------------------------------- pickle


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("labels", ["binary", "strings", "ints"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pickle_round_trip_predicts_identically(solver, labels, dtype):
    y = {
        "binary": Y % 2,
        "strings": np.array(["w", "x", "y", "z"])[Y],
        "ints": Y * 10 - 5,
    }[labels]
    Xd = X.astype(dtype)
    est = _fit_quietly(SoftmaxRegressionClassifier(**_params(solver)), Xd, y)
    loaded = pickle.loads(pickle.dumps(est))
    for method in (
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
    ):
        expected = getattr(est, method)(Xd)
        got = getattr(loaded, method)(Xd)
        assert_array_equal(got, expected)
        assert got.dtype == expected.dtype
    if solver != "lbfgs":  # the RNG and optimizer state travel too
        est.partial_fit(Xd[:20], y[:20])
        loaded.partial_fit(Xd[:20], y[:20])
        assert_array_equal(loaded.coef_, est.coef_)
