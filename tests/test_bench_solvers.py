"""benchmarks/bench_solvers.py runs end to end on tiny data (no assertions on
its figures, which the full run reports), so that it never rots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_solvers_smoke(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_solvers.py"),
            "--smoke",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "bench_solvers.json").read_text())
    assert {r["kind"] for r in res["lbfgs"]} == {"unscaled", "standardized"}
    assert {r["estimator"] for r in res["stochastic"]} == {
        "sgd defaults",
        "sgd old defaults",
        "adam defaults",
        "adam old defaults",
    }
    assert "L-BFGS (fit)" in res["stream"]
    assert all(0 <= v <= 1 for v in res["stream"].values())
    assert "| data | X | estimator |" in proc.stdout
