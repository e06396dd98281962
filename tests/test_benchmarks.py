"""The CPU benchmark runs end to end on tiny data (no timing assertions), so
that it never rots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent


def test_bench_cpu_smoke(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_cpu.py"),
            "--smoke",
            "--threads",
            "1",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    estimators = {r["estimator"] for r in res["fits"]}
    assert estimators == {
        "sksoftmax lbfgs",
        "sksoftmax sgd",
        "sksoftmax adam",
        "LogisticRegression",
        "MLPClassifier adam",
        "SGDClassifier",
    }
    assert len({r["dataset"] for r in res["fits"]}) == 5
    for r in res["fits"]:
        assert r["fit_time_s"] > 0 and r["objective"] > 0
        assert 0 <= r["test_accuracy"] <= 1 and r["peak_fit_memory_mb"] >= 0
    assert [e["dtype"] for e in res["evaluation"]] == ["float64", "float32"]
    assert set(res["time_to_accuracy"]["results"]) == {
        "sksoftmax sgd",
        "sksoftmax adam",
        "MLPClassifier adam",
    }
    assert "| data | estimator |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "objective_vs_time.png").stat().st_size > 1000


def test_bench_cv_smoke():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_cv.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3  # header and three data sets
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # no timing or agreement assertion: the ratio is printed, and C_ may
        # differ where both stop at tol=1e-4 on an ill-conditioned C=1e4 fit
        assert float(cells[3]) > 0 and cells[4].startswith(("yes", "no"))
