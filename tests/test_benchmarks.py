"""The CPU benchmark runs end to end on tiny data (no timing assertions), so
that it never rots."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sksoftmax._compat import skip_cpu_benchmark, skip_logistic_regression_cv_reference

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(skip_cpu_benchmark() is not None, reason=str(skip_cpu_benchmark()))
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
    expected = {
        "sksoftmax lbfgs",
        "sksoftmax sgd",
        "sksoftmax adam",
        "LogisticRegression",
        "MLPClassifier adam",
        "SGDClassifier",
    }
    # scikit-learn-intelex is an optional anchor: its rows, or a note why not.
    if res["intelex_missing"] is None:
        expected.add("intelex LogisticRegression")
    else:
        assert "not installed" in res["intelex_missing"]
        assert res["intelex_missing"] in (tmp_path / "results.md").read_text()
    assert estimators == expected
    datasets = {r["dataset"] for r in res["fits"]}
    assert len(datasets) == 5
    for r in res["fits"]:
        assert r["fit_time_s"] > 0 and r["objective"] > 0
        assert 0 <= r["test_accuracy"] <= 1 and r["peak_fit_memory_mb"] >= 0
    # Both L-BFGS fits minimize the same objective; the smoke runs them at
    # tol=1e-8, where ours ends at the optimum and LogisticRegression's
    # L-BFGS-B near it (its relative-reduction rule stops it first: measured
    # up to 1.5e-6 above ours). At the default tol=1e-4 the 400-row sets,
    # whose weakest curvature is small, left the two up to 4e-4 apart, in
    # either direction and by machine.
    assert res["settings"]["tol"] == 1e-8
    J = {(r["dataset"], r["estimator"]): r["objective"] for r in res["fits"]}
    for name in datasets:
        ours, ref = J[name, "sksoftmax lbfgs"], J[name, "LogisticRegression"]
        assert ours <= ref * (1 + 1e-9)
        assert ref - ours <= 1e-5 * ref
    # One evaluation per data set (two on the many-classes one), with the
    # times it is compared to.
    evals = res["evaluation"]
    assert [e["dtype"][-2:] for e in evals] == ["64", "64", "32", "64", "64", "32"]
    assert {e["data"] for e in evals} == datasets
    for e in evals:
        assert min(e["read_ms"], e["products_ms"], e["evaluation_ms"]) > 0
        assert e["ratio_to_read"] == pytest.approx(e["evaluation_ms"] / e["read_ms"])
    pp = res["predict_proba"]
    assert pp["shape"] == [2000, 100, 10]
    assert min(pp[k] for k in ("read_ms", "predict_proba_ms", "kernel_ms")) > 0
    assert {(e["solver"], e["batch_size"], e["dtype"]) for e in res["epochs"]} == {
        (s, b, d)
        for s in ("sgd", "adam")
        for b in (256, 1024)
        for d in ("float64", "float32")
    }
    assert set(res["time_to_accuracy"]["results"]) == {
        "sksoftmax sgd",
        "sksoftmax adam",
        "MLPClassifier adam",
    }
    assert "| data | estimator |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "objective_vs_time.png").stat().st_size > 1000


@pytest.mark.skipif(
    skip_logistic_regression_cv_reference() is not None,
    reason=str(skip_logistic_regression_cv_reference()),
)
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
