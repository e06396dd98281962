"""The CPU-side parts of benchmarks/gpu_check.py, so the GPU script never rots."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

from sksoftmax._compat import skip_array_api_dispatch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_objective_matches_closed_form(gpu_check):
    be = gpu_check.Backend(gpu=False)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    y = rng.integers(0, 3, 50)
    W, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    logits = X @ W.T + b
    expected = (
        np.mean(logsumexp(logits, axis=1) - logits[np.arange(50), y])
        + (W**2).sum() / 100
    )
    assert gpu_check.objective(be, X, y, W, b, C=1.0, chunk=7) == pytest.approx(
        expected
    )


def test_gaussian_classes_shapes_and_dtype(gpu_check):
    be = gpu_check.Backend(gpu=False)
    X, y = gpu_check.gaussian_classes(be, 300, 5, 4, np.float32)
    assert X.shape == (300, 5) and X.dtype == np.float32
    assert set(np.unique(y)) == {0, 1, 2, 3}


def test_cpu_smoke_run_prints_a_table(gpu_check, capsys, tmp_path):
    if reason := skip_array_api_dispatch():  # the script compares under dispatch
        pytest.skip(reason)
    rows = gpu_check.main(["--cpu-smoke", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| check" in out and "| target |" in out
    parity = [r for r in rows if r[0].startswith("parity")]
    assert len(parity) == 4 and all(r[3] == "ok" for r in parity)
    assert not [r for r in rows if r[3] in ("ERROR", "SKIP", "FAIL")], rows
    assert sum(r[0].startswith("evaluation") for r in rows) == 2
    assert sum(r[0].startswith("fit") for r in rows) == 4
    assert sum(r[0].startswith("L-BFGS speedup") for r in rows) == 2
    (sgd,) = [r for r in rows if r[0].startswith("SGD epoch")]
    assert "cores" in sgd[1]
    assert (tmp_path / "gpu_check.md").read_text().strip() == out.strip()


def test_a_failing_step_becomes_a_row(gpu_check, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("planted")

    monkeypatch.setattr(gpu_check, "sgd_epoch", broken)
    monkeypatch.setattr(gpu_check, "parity", lambda *a: None)
    monkeypatch.setattr(gpu_check, "fit_timings", lambda *a: None)
    rows = gpu_check.main(["--cpu-smoke"])
    assert ("SGD epoch", "RuntimeError: planted", "", "ERROR") in rows
    assert "| SGD epoch" in capsys.readouterr().out


def test_steps_past_the_budget_are_skipped(gpu_check):
    rows = gpu_check.main(["--cpu-smoke", "--budget-s", "-1"])
    assert rows and all(r[3] == "SKIP" for r in rows)


def test_cpu_cores_pins_and_restores(gpu_check):
    import os

    from threadpoolctl import threadpool_info

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this OS")
    before = os.sched_getaffinity(0)
    with gpu_check.cpu_cores(1):
        assert len(os.sched_getaffinity(0)) == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert os.sched_getaffinity(0) == before
