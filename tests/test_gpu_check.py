"""The CPU-side parts of benchmarks/gpu_check.py, so the GPU script never rots."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

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


def test_cpu_smoke_run_prints_a_table(gpu_check, capsys):
    rows = gpu_check.main(["--cpu-smoke"])
    out = capsys.readouterr().out
    assert "| check" in out
    parity = [r for r in rows if r[0].startswith("parity")]
    assert len(parity) == 4 and all(r[3] == "ok" for r in parity)
    assert any(r[0].startswith("eval") for r in rows)
    fits = [r for r in rows if r[0].startswith("fit")]
    assert len(fits) == 4
