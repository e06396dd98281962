"""Fitting on Dask arrays on a real distributed cluster (two worker processes).

Every fit is compared with the in-memory NumPy fit on the same data.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._loss import LinearSoftmaxLoss

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402
from dask.sizeof import sizeof  # noqa: E402

N, D, K = 4_000, 12, 4
CHUNK = 1_000


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=N,
        n_features=D,
        n_informative=8,
        n_classes=K,
        n_clusters_per_class=1,
        random_state=0,
    )
    w = np.random.default_rng(0).uniform(0.2, 2.0, N)
    return X, y, w


def chunked(a, rows=CHUNK):
    return da.from_array(a, chunks=(rows,) + a.shape[1:])


def fit(X, y, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs on purpose
        return SoftmaxRegressionClassifier(**params).fit(X, y, sample_weight)


def objective(clf, X, y, C=1.0):
    loss = LinearSoftmaxLoss(len(clf.classes_), X.shape[1], alpha=1.0 / (C * len(X)))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    return loss.loss(coef, X, np.searchsorted(clf.classes_, y))


def test_workers_run_this_checkout(client):
    import sksoftmax

    files = set(client.run(lambda: __import__("sksoftmax").__file__).values())
    assert files == {sksoftmax.__file__}


def test_importing_and_fitting_numpy_never_imports_dask():
    code = (
        "import sys, numpy as np; from sksoftmax import "
        "SoftmaxRegressionClassifier as S; S().fit(np.eye(4), [0, 1, 0, 1]); "
        "assert 'dask' not in sys.modules, 'dask imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- L-BFGS: partial sums on the workers ----------------------------------------


@pytest.mark.parametrize("case", ["multiclass-weights", "binary-balanced-no-intercept"])
def test_lbfgs_equals_the_in_memory_fit(client, data, case):
    X, y, w = data
    if case == "multiclass-weights":
        params, sw_np, sw_dask, y_in = {}, w, chunked(w, 700), y  # y stays NumPy
    else:
        y = (y > 1).astype(int)
        params = dict(class_weight="balanced", fit_intercept=False, C=0.5)
        sw_np = sw_dask = None
        y_in = chunked(y)
    ref = fit(X, y, sw_np, **params)
    got = fit(chunked(X), y_in, sw_dask, **params)
    scale = np.abs(ref.coef_).max()
    assert_allclose(got.coef_, ref.coef_, rtol=1e-6, atol=1e-6 * scale)
    assert_allclose(got.intercept_, ref.intercept_, rtol=1e-6, atol=1e-6 * scale)
    assert got.n_iter_ == ref.n_iter_
    assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-9)
    assert isinstance(got.coef_, np.ndarray) and got.n_features_in_ == D
    assert_allclose(got.predict_proba(X), ref.predict_proba(X), atol=1e-6)


def test_lbfgs_float32_stays_float32(client, data):
    X, y, _ = data
    X = X.astype(np.float32)
    ref, got = fit(X, y), fit(chunked(X), chunked(y))
    assert got.coef_.dtype == np.float32
    assert_allclose(got.coef_, ref.coef_, rtol=1e-3, atol=1e-3)


def test_x_is_never_gathered_on_the_client(client, data, monkeypatch):
    X, y, _ = data
    X_big = np.tile(X, (4, 1))  # 1.5 MB
    received = []
    gather = distributed.Client._gather

    async def counting_gather(self, futures, *args, **kwargs):
        out = await gather(self, futures, *args, **kwargs)
        received.append(sizeof(out))
        return out

    monkeypatch.setattr(distributed.Client, "_gather", counting_gather)
    clf = fit(da.from_array(X_big, chunks=(2_000, D)), np.tile(y, 4))
    sgd = fit(
        da.from_array(X_big, chunks=(2_000, D)),
        np.tile(y, 4),
        solver="adam",
        max_iter=3,
    )
    assert clf.n_iter_ > 5 and sgd.n_iter_ == 3 and len(received) > clf.n_iter_
    # Per evaluation one vector of d*k + k + 2 numbers comes back, plus the
    # checks' results (distinct labels, flags, sums) and the SGD carries.
    assert sum(received) < X_big.nbytes / 10


# -- SGD/Adam: the parameters travel to the chunks -------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sgd_without_shuffle_equals_the_in_memory_fit(client, data, solver):
    """Chunks of whole minibatches visited in order: the very same updates."""
    X, y, w = data
    params = dict(
        solver=solver,
        shuffle=False,
        batch_size=100,
        max_iter=5,
        learning_rate_init=0.01,
    )
    ref = fit(X, y, w, **params)
    got = fit(chunked(X, 500), chunked(y, 500), chunked(w, 500), **params)
    assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-10)
    assert got.n_iter_ == ref.n_iter_ == 5


def test_sgd_one_chunk_shuffles_exactly_as_in_memory(client, data):
    X, y, _ = data
    params = dict(solver="sgd", max_iter=3, learning_rate_init=0.01, random_state=3)
    ref = fit(X, y, **params)
    got = fit(chunked(X, N), chunked(y, N), **params)
    assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-12)


def test_sgd_shuffled_chunks_reach_the_lbfgs_optimum(client, data):
    """Chunk order and rows within a chunk are shuffled: another path from the
    in-memory fit, to the same objective."""
    X, y, _ = data
    params = dict(
        solver="adam",
        batch_size=50,
        max_iter=15,
        learning_rate_init=0.01,
        random_state=0,
    )
    ref = fit(X, y, **params)
    got = fit(chunked(X), chunked(y), **params)
    J_star = objective(fit(X, y, tol=1e-8, max_iter=1000), X, y)
    J_got, J_ref = objective(got, X, y), objective(ref, X, y)
    assert not np.allclose(got.coef_, ref.coef_)
    assert J_star <= J_got < J_star + 0.01
    assert abs(J_got - J_ref) < 0.005
    assert len(got.loss_curve_) == 15


def test_partial_fit_on_a_dask_array_is_one_pass(client, data):
    X, y, _ = data
    params = dict(solver="sgd", shuffle=False, batch_size=100, learning_rate_init=0.01)
    classes = np.unique(y)
    ref = SoftmaxRegressionClassifier(**params)
    got = SoftmaxRegressionClassifier(**params)
    for _ in range(2):
        ref.partial_fit(X, y, classes=classes)
        got.partial_fit(chunked(X, 500), chunked(y, 500), classes=classes)
    assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert got.n_iter_ == ref.n_iter_ == 2
    assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-10)


def test_partial_fit_under_dask_ml_incremental(client, data):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y, _ = data
    params = dict(solver="sgd", learning_rate_init=0.01, random_state=0)
    inc = wrappers.Incremental(
        SoftmaxRegressionClassifier(**params), shuffle_blocks=False
    )
    inc.fit(chunked(X), chunked(y), classes=np.unique(y))
    loop = SoftmaxRegressionClassifier(**params)
    for start in range(0, N, CHUNK):  # what Incremental does, block by block
        loop.partial_fit(
            X[start : start + CHUNK], y[start : start + CHUNK], classes=np.unique(y)
        )
    assert inc.estimator_.n_iter_ == N // CHUNK
    assert_allclose(inc.estimator_.coef_, loop.coef_, rtol=1e-10, atol=1e-12)
    assert inc.score(chunked(X), chunked(y)) > 0.6


# -- bad input -----------------------------------------------------------------


def test_unknown_chunk_sizes_are_computed(client, data):
    X, y, _ = data
    keep = X[:, 0] > -1.0
    Xd = chunked(X)
    Xd, yd = Xd[da.from_array(keep, chunks=CHUNK)], chunked(y)[chunked(keep)]
    assert np.isnan(Xd.shape[0])
    got = fit(Xd, yd)
    ref = fit(X[keep], y[keep])
    assert_allclose(got.coef_, ref.coef_, rtol=1e-6, atol=1e-8)


def test_column_chunks_ask_to_rechunk(client, data):
    X, y, _ = data
    with pytest.raises(ValueError, match=r"rechunk\(\{1: -1\}\)"):
        fit(da.from_array(X, chunks=(CHUNK, 5)), y)


@pytest.mark.parametrize("what", ["y-numpy", "y-dask", "sample_weight"])
def test_lengths_that_differ(client, data, what):
    X, y, w = data
    y_in = chunked(y[:-10]) if what == "y-dask" else y
    y_in = y[:-10] if what == "y-numpy" else y_in
    sw = chunked(w[:-10]) if what == "sample_weight" else None
    name = "sample_weight" if what == "sample_weight" else "y"
    with pytest.raises(ValueError, match=f"X has {N}, {name} has {N - 10}"):
        fit(chunked(X), y_in, sw)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("nan", "NaN or infinity"),
        ("negative-weight", "Negative values"),
        ("zero-weights", "all zero"),
        ("soft-labels", "probability distribution"),
        ("one-class", "only one class"),
        ("early-stopping", "early_stopping is not supported"),
        ("dataframe", "to_dask_array"),
    ],
)
def test_bad_input_is_refused(client, data, bad, match):
    X, y, w = data
    Xd, sw, params = chunked(X), None, {}
    if bad == "nan":
        X = X.copy()
        X[3_500, 2] = np.nan
        Xd = chunked(X)
    elif bad == "negative-weight":
        sw = chunked(np.where(np.arange(N) == 7, -1.0, w))
    elif bad == "zero-weights":
        sw = chunked(np.zeros(N))
    elif bad == "soft-labels":  # rows that do not sum to one
        y = 0.5 * np.eye(K)[y]
    elif bad == "one-class":
        y = np.zeros(N, dtype=int)
    elif bad == "early-stopping":
        params = dict(solver="sgd", early_stopping=True)
    elif bad == "dataframe":
        dd = pytest.importorskip("dask.dataframe")
        Xd = dd.from_array(X, chunksize=CHUNK)
    clf = SoftmaxRegressionClassifier(**params)
    with pytest.raises((ValueError, TypeError), match=match):
        clf.fit(Xd, y, sample_weight=sw)
    assert not hasattr(clf, "coef_")


def test_local_threaded_scheduler_without_a_cluster(data):
    X, y, _ = data
    with dask.config.set(scheduler="threads"):
        got = fit(chunked(X), chunked(y))
    assert_allclose(got.coef_, fit(X, y).coef_, rtol=1e-6, atol=1e-8)


# -- CuPy chunks -----------------------------------------------------------------


def _cupy_or_skip():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no GPU")
    except Exception as exc:  # no driver
        pytest.skip(f"no GPU: {exc}")
    return cupy


@pytest.mark.gpu
@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_cupy_chunks_compute_on_the_gpu(data, solver):
    cupy = _cupy_or_skip()
    X, y, _ = data
    params = (
        dict(
            solver=solver,
            shuffle=False,
            batch_size=100,
            max_iter=5,
            learning_rate_init=0.01,
        )
        if solver == "sgd"
        else {}
    )
    Xg = da.from_array(cupy.asarray(X), chunks=(500, D), asarray=False)
    assert isinstance(Xg._meta, cupy.ndarray)
    with dask.config.set(scheduler="threads"):  # one process owns the GPU
        got = fit(Xg, y, **params)
    ref = fit(X, y, **params)
    assert isinstance(got.coef_, np.ndarray)
    assert_allclose(got.coef_, ref.coef_, rtol=1e-6, atol=1e-8)


def test_a_worker_lost_during_lbfgs_is_recovered(data):
    """Kill one worker process in the middle of an L-BFGS fit: Dask recomputes
    the chunks it held (from X's graph) and the fit ends at the in-memory
    result. Were the chunks not recomputable, the fit would raise and keep
    the earlier model (as every failed fit does)."""
    import os
    import signal

    X, y, w = data
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def kill_one_worker(estimator, info):
            if info["iteration"] == 3 and not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        clf = fit(chunked(X), y, tol=1e-8, callback=kill_one_worker)
    assert killed
    ref = fit(X, y, tol=1e-8)
    assert_allclose(clf.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(clf.loss_curve_[-1], ref.loss_curve_[-1], rtol=1e-10)


def test_largest_row_norm_is_found_in_any_chunk(client, data):
    """As for a streamed memmap: the largest row norm behind the automatic
    SGD step comes from every chunk, the top eigenvalue from the first."""
    from sksoftmax._data.dask import dask_training_data
    from sksoftmax._precondition import (
        block_curvature,
        fit_preconditioner,
        rows_curvature,
    )

    X, y, _ = data
    X = X.copy()
    X[-1] *= 30  # the largest row, in the last chunk
    rows = dask_training_data(
        chunked(X),
        chunked(y),
        None,
        class_weight=None,
        device_param=None,
        classes=None,
        given_classes=None,
    ).rows
    assert rows.n_chunks == N // CHUNK
    pre = fit_preconditioner(X, fit_intercept=True)
    lam, max_row_sq, mean_l1 = rows_curvature(rows, pre)
    lam_first, _, l1_first = block_curvature(X[:CHUNK], pre)
    assert lam == pytest.approx(lam_first, rel=1e-12)
    assert mean_l1 == pytest.approx(l1_first, rel=1e-12)
    Z = (X - pre.mean) / pre.scale
    assert max_row_sq == pytest.approx(np.max((Z**2).sum(axis=1)), rel=1e-10)
