"""SGD/Adam from a numpy.memmap larger than working_memory: streamed in blocks.

No Dask needed. The 2 GB test writes its file in a few seconds and fits one
epoch in a fresh process, whose peak resident set size it reads.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import config_context
from sklearn.datasets import make_classification

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._data import MemmapRows
from sksoftmax._loss import LinearSoftmaxLoss
from sksoftmax._validation import validate_training_data

ROOT = Path(__file__).resolve().parents[1]


def _memmap(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    return np.load(path, mmap_mode="r")


def _objective(clf, X, y, C):
    k, d = clf.coef_.shape
    loss = LinearSoftmaxLoss(len(clf.classes_), d, alpha=1.0 / (C * X.shape[0]))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_]).astype(np.float64)
    return loss.loss(coef, X.astype(np.float64), np.searchsorted(clf.classes_, y))


@pytest.fixture(scope="module")
def small():
    X, y = make_classification(
        n_samples=3_000, n_features=20, n_informative=10, n_classes=4, random_state=0
    )
    return X, y


def _fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs on purpose
        return SoftmaxRegressionClassifier(**params).fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_streamed_memmap_without_shuffle_equals_the_in_memory_fit(
    tmp_path, small, solver
):
    X, y = small
    mm = _memmap(tmp_path, X)
    params = dict(
        solver=solver,
        shuffle=False,
        batch_size=100,
        max_iter=4,
        learning_rate_init=0.01,
    )
    with config_context(working_memory=0.1):  # 100 kB: blocks of 600 rows
        data = validate_training_data(
            mm,
            y,
            None,
            solver=solver,
            class_weight=None,
            early_stopping=False,
            batch_size=100,
            device_param=None,
        )
        streamed = _fit(mm, y, **params)
    assert data.rows.blocks.rows == 600
    in_memory = _fit(X, y, **params)
    assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-12, atol=1e-12)
    assert_allclose(streamed.loss_curve_, in_memory.loss_curve_, rtol=1e-12)
    assert isinstance(streamed.coef_, np.ndarray) and streamed.n_iter_ == 4


def test_copy_on_write_memmap_keeps_its_edits_across_epochs(tmp_path, small):
    X, y = small
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="c")
    mm[:1_500] *= 3.0  # edits live only in this process's private pages
    params = dict(
        solver="sgd", shuffle=False, batch_size=100, max_iter=3, learning_rate_init=0.01
    )
    with config_context(working_memory=0.1):
        streamed = _fit(mm, y, **params)
    in_memory = _fit(np.array(mm), y, **params)
    assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-12, atol=1e-12)
    assert_allclose(mm[:1_500], 3.0 * X[:1_500])


def test_streamed_memmap_with_shuffled_blocks_reaches_the_same_objective(
    tmp_path, small
):
    X, y = small
    mm = _memmap(tmp_path, X)
    params = dict(
        solver="adam",
        batch_size=50,
        max_iter=15,
        learning_rate_init=0.01,
        random_state=0,
    )
    with config_context(working_memory=0.1):
        streamed = _fit(mm, y, **params)
    in_memory = _fit(X, y, **params)
    optimum = SoftmaxRegressionClassifier(tol=1e-8, max_iter=1000).fit(X, y)
    J_star = _objective(optimum, X, y, 1.0)
    J_stream, J_mem = _objective(streamed, X, y, 1.0), _objective(in_memory, X, y, 1.0)
    # Shuffling differs (blocks, then rows within a block), the optimum does not.
    assert not np.allclose(streamed.coef_, in_memory.coef_)
    assert J_star <= J_stream < J_star + 0.01
    assert abs(J_stream - J_mem) < 0.01


def _streams(clf, X, y):
    """Whether the validated training data of ``clf`` reads X in blocks."""
    data = validate_training_data(
        X,
        y,
        None,
        solver=clf.solver,
        class_weight=None,
        early_stopping=clf.early_stopping,
        batch_size=clf.batch_size,
        device_param=None,
    )
    return isinstance(data.rows, MemmapRows)


def test_memmap_routing(tmp_path, small):
    X, y = small
    mm = _memmap(tmp_path, X)
    sgd = SoftmaxRegressionClassifier(solver="sgd")
    with config_context(working_memory=0.1):
        assert _streams(sgd, mm, y)
        assert not _streams(SoftmaxRegressionClassifier(), mm, y)  # lbfgs
        assert not _streams(sgd.set_params(early_stopping=True), mm, y)
        assert not _streams(SoftmaxRegressionClassifier(solver="sgd"), X, y)
    # A file that fits in one block takes the in-memory path: nothing changes.
    assert not _streams(SoftmaxRegressionClassifier(solver="sgd"), mm, y)


def test_streamed_memmap_with_nan_raises(tmp_path, small):
    X, y = small
    X = X.copy()
    X[2_500, 3] = np.nan  # in a late block
    mm = _memmap(tmp_path, X)
    clf = SoftmaxRegressionClassifier(solver="sgd")
    with config_context(working_memory=0.1), pytest.raises(ValueError, match="NaN"):
        clf.fit(mm, y)
    assert not hasattr(clf, "coef_")


# -- 2 GB from disk, peak memory ------------------------------------------------

N_ROWS, N_FEATURES = 2_000_000, 256  # float32: 2.05 GB
BLOCK_MB = 64


def _write_npy(path, rng):
    """A 2 GB float32 .npy of two Gaussian classes, written block by block
    through a file (no mapping of it in this process)."""
    y = rng.integers(0, 2, N_ROWS).astype(np.int8)
    centers = rng.standard_normal((2, N_FEATURES)).astype(np.float32)
    step = 100_000
    noise = rng.standard_normal((step, N_FEATURES), dtype=np.float32)
    header = {"descr": "<f4", "fortran_order": False, "shape": (N_ROWS, N_FEATURES)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for start in range(0, N_ROWS, step):
            (noise + centers[y[start : start + step]]).tofile(f)
    np.save(path.with_suffix(".y.npy"), y)
    return path


CHILD = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    from sklearn import config_context
    from sksoftmax import SoftmaxRegressionClassifier

    def peak_mb():
        # VmHWM: this process's peak RSS (ru_maxrss would carry over the
        # parent's across fork and exec).
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2])
    before = peak_mb()
    with config_context(working_memory=int(sys.argv[3])), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SoftmaxRegressionClassifier(
            solver="sgd", batch_size=2000, max_iter=1, learning_rate_init=0.01,
            random_state=0).fit(X, y)
    peak = peak_mb()
    print(json.dumps({"before_mb": before, "peak_mb": peak,
                      "file_mb": X.nbytes / 2**20,
                      "accuracy": float(clf.score(X[:20000], y[:20000]))}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_sgd_streams_a_2gb_memmap_in_bounded_memory(tmp_path):
    path = _write_npy(tmp_path / "X.npy", np.random.default_rng(0))
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(path),
                str(path.with_suffix(".y.npy")),
                str(BLOCK_MB),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        )
    finally:
        path.unlink()  # pytest keeps the last few tmp dirs: not 2 GB each
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)
    assert report["file_mb"] > 1900
    # Bound: four blocks (the one being read, its mapped pages, the one being
    # fitted, the minibatch copies) plus the labels and their codes; here
    # 290 MB, a seventh of the file. The RSS counts mapped file pages too.
    growth = report["peak_mb"] - report["before_mb"]
    assert growth < 4 * BLOCK_MB + 2 * N_ROWS * 9 / 2**20
    assert growth < report["file_mb"] / 7
    assert report["accuracy"] > 0.9  # it did learn from the stream


def test_largest_row_norm_is_found_in_any_block(tmp_path, small):
    """The automatic SGD step rests on the largest row norm: a streamed
    memmap takes it over every block, not only the first (the top eigenvalue,
    an average, comes from the first block)."""
    from sksoftmax._precondition import (
        block_curvature,
        fit_preconditioner,
        rows_curvature,
    )

    X, y = small
    X = X.copy()
    X[-1] *= 30  # the largest row, in the last block
    mm = _memmap(tmp_path, X)
    with config_context(working_memory=0.1):  # blocks of 600 rows
        data = validate_training_data(
            mm,
            y,
            None,
            solver="sgd",
            class_weight=None,
            early_stopping=False,
            batch_size=100,
            device_param=None,
        )
    assert isinstance(data.rows, MemmapRows) and data.rows.n_chunks == 5
    pre = fit_preconditioner(X, fit_intercept=True)
    lam, max_row_sq, mean_l1 = rows_curvature(data.rows, pre)
    lam_first, _, l1_first = block_curvature(X[:600], pre)
    _, max_all, _ = block_curvature(X, pre)
    assert lam == pytest.approx(lam_first, rel=1e-12)
    assert mean_l1 == pytest.approx(l1_first, rel=1e-12)
    assert max_row_sq == pytest.approx(max_all, rel=1e-12)
    Z = (X - pre.mean) / pre.scale
    assert max_row_sq == pytest.approx(np.max((Z**2).sum(axis=1)), rel=1e-10)
