"""benchmarks/bench_solvers.py runs end to end on tiny data, so that it never
rots: no assertions on its figures, which the full run reports, except the
conditioning table's, which are properties of the change of variables."""

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
    # the small-data table: iris at C=0.01 (well conditioned) is reached
    assert {(r["data"], r["solver"]) for r in res["small"]} == {
        ("iris", "sgd"),
        ("iris", "adam"),
    }
    assert all(r["rel"] <= 1e-3 and not r["silent"] for r in res["small"])
    assert "| data | X | estimator |" in proc.stdout
    assert "| data | C | solver |" in proc.stdout


def test_bench_solvers_conditioning_smoke():
    """The conditioning table: on the unscaled set the preconditioner's
    variables are far better conditioned than the original ones (scales
    spread over 1e-3..1e3), and a standardized set stays as it was."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_solvers.py"),
            "--smoke",
            "--conditioning",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[1] in ("unscaled", "standardized"):
            rows[cells[1]] = (float(cells[2]), float(cells[3]), int(cells[4]))
    assert set(rows) == {"unscaled", "standardized"}
    original, scaled, _ = rows["unscaled"]
    assert scaled < original / 1e6
    original, scaled, _ = rows["standardized"]
    assert 1 <= original and scaled <= 10 * original
