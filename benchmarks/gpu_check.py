"""GPU check: tests, GPU-vs-CPU parity, and timings against scikit-learn on CuPy.

Run on a machine with a CUDA GPU and CuPy (a few minutes):

    python benchmarks/gpu_check.py            # everything, table at the end
    python benchmarks/gpu_check.py --quick    # smaller timing shapes
    python benchmarks/gpu_check.py --cpu-smoke  # the same code path on NumPy,
                                                # tiny shapes (what CI runs)

Steps: (1) the GPU-marked tests; (2) coef_ parity GPU vs CPU (float64 within
1e-4, float32 within 1e-3, lbfgs and sgd); (3) fit timings on Gaussian-class
data generated on the device (1M x 256 x 10 and 200k x 512 x 1000, float32),
beside scikit-learn's LogisticRegression on the same CuPy arrays
(array_api_dispatch) with both final objectives; (4) one loss+gradient
evaluation against its memory floor: the bytes of X read once per product,
over a device-to-device copy bandwidth measured in the same run.
"""

import os

# scikit-learn's array API dispatch needs this before SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402
from sksoftmax._loss import LinearSoftmaxLoss  # noqa: E402

FULL_SHAPES = [(1_000_000, 256, 10), (200_000, 512, 1000)]
QUICK_SHAPES = [(200_000, 256, 10), (50_000, 512, 1000)]
SMOKE_SHAPES = [(2_000, 16, 4), (1_000, 8, 30)]


class Backend:
    """The array module under test and how to wait for it."""

    def __init__(self, gpu):
        self.gpu = gpu
        if gpu:
            import cupy

            self.xp = cupy
            self.name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        else:
            self.xp = np
            self.name = "CPU (NumPy smoke run)"

    def sync(self):
        if self.gpu:
            self.xp.cuda.get_current_stream().synchronize()

    def to_numpy(self, a):
        return a.get() if self.gpu else np.asarray(a)

    def rng(self, seed):
        return self.xp.random.default_rng(seed)


def gaussian_classes(be, n, d, k, dtype, seed=0):
    """Gaussian clouds around random class centers, drawn on the device."""
    rng = be.rng(seed)
    centers = rng.standard_normal((k, d), dtype=np.float32) * (3.0 / np.sqrt(d))
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.standard_normal((n, d), dtype=np.float32)
    return X.astype(dtype, copy=False), y


def objective(be, X, y, coef, intercept, C, chunk=50_000):
    """J = mean CE + ||W||^2 / (2 C n), in float64, independent of the package."""
    xp = be.xp
    W = xp.asarray(coef, dtype=xp.float64)
    b = xp.asarray(intercept, dtype=xp.float64)
    if W.shape[0] == 1:  # binary: one logit against zero
        W = xp.concatenate([xp.zeros_like(W), W])
        b = xp.concatenate([xp.zeros_like(b), b])
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        logits = X[s : s + chunk].astype(xp.float64) @ W.T + b
        m = logits.max(axis=1, keepdims=True)
        lse = xp.log(xp.exp(logits - m).sum(axis=1)) + m[:, 0]
        total += float(
            (lse - logits[xp.arange(logits.shape[0]), y[s : s + chunk]]).sum()
        )
    n = X.shape[0]
    return total / n + float((xp.asarray(coef, dtype=xp.float64) ** 2).sum()) / (
        2 * C * n
    )


def timed(be, fn, repeats):
    """Median wall time of ``fn`` with the device synchronised around it."""
    times, out = [], None
    for _ in range(repeats):
        be.sync()
        t0 = time.perf_counter()
        out = fn()
        be.sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def copy_bandwidth(be, nbytes=1 << 30):
    """Device-to-device copy bandwidth in bytes/s (read plus write)."""
    xp = be.xp
    src = xp.ones(nbytes // 4, dtype=xp.float32)
    dst = xp.empty_like(src)
    t, _ = timed(be, lambda: dst.__setitem__(slice(None), src), 10)
    return 2 * src.nbytes / t


def run_gpu_tests():
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "gpu",
        "-p",
        "no:cacheprovider",
        str(ROOT / "tests"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return proc.returncode, tail


def parity(be, rows):
    """GPU (device="cuda") against CPU coef_ for lbfgs and sgd, both dtypes."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=3000, n_features=20, n_informative=10, n_classes=5, random_state=0
    )
    settings = {
        "lbfgs": dict(tol=1e-8, max_iter=1000),
        "sgd": dict(
            solver="sgd",
            learning_rate_init=0.05,
            max_iter=5,
            random_state=0,
            shuffle=False,
        ),
    }
    for dtype, tol in ((np.float64, 1e-4), (np.float32, 1e-3)):
        for solver, kw in settings.items():
            Xd = X.astype(dtype)
            cpu = SoftmaxRegressionClassifier(**kw).fit(Xd, y)
            dev = SoftmaxRegressionClassifier(
                device="cuda" if be.gpu else "cpu", **kw
            ).fit(Xd, y)
            diff = float(np.max(np.abs(dev.coef_ - cpu.coef_)))
            rows.append(
                (
                    f"parity {solver} {np.dtype(dtype).name}",
                    f"{diff:.2e}",
                    f"<= {tol:g}",
                    "ok" if diff <= tol else "FAIL",
                )
            )


def timings(be, shapes, repeats, rows):
    from sklearn import config_context
    from sklearn.linear_model import LogisticRegression

    bandwidth = copy_bandwidth(be) if be.gpu else None
    for n, d, k in shapes:
        X, y = gaussian_classes(be, n, d, k, np.float32)
        label = f"{n:,} x {d} x {k}"
        # Data bound as defaults: the arrays are deleted before the next shape.
        ours_t, ours = timed(
            be, lambda X=X, y=y: SoftmaxRegressionClassifier(C=1.0).fit(X, y), repeats
        )
        with config_context(array_api_dispatch=True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_t, ref = timed(
                be, lambda X=X, y=y: LogisticRegression(C=1.0).fit(X, y), repeats
            )
        J_ours = objective(be, X, y, ours.coef_, ours.intercept_, 1.0)
        J_ref = objective(be, X, y, ref.coef_, ref.intercept_, 1.0)
        rows.append(
            (
                f"fit {label} sksoftmax",
                f"{ours_t:.3f} s",
                f"J={J_ours:.6f}",
                f"{ours.n_iter_} it",
            )
        )
        rows.append(
            (
                f"fit {label} sklearn LR",
                f"{ref_t:.3f} s",
                f"J={J_ref:.6f}",
                f"{int(np.max(ref.n_iter_))} it",
            )
        )
        speedup = ref_t / ours_t
        ok = speedup >= 3 and J_ours <= J_ref * (1 + 1e-6)
        rows.append(
            (
                f"speedup {label}",
                f"{speedup:.2f}x",
                "target >= 3x, J <=",
                "ok" if ok else "MISS",
            )
        )
        # One loss+gradient evaluation against its memory floor.
        loss = LinearSoftmaxLoss(k, d, fit_intercept=True, alpha=1.0 / n)
        W = be.xp.asarray(ours.coef_, dtype=X.dtype)
        b = be.xp.asarray(ours.intercept_, dtype=X.dtype)
        ev_t, _ = timed(
            be,
            lambda X=X, y=y, loss=loss, W=W, b=b: loss.loss_gradient_arrays(W, b, X, y),
            20,
        )
        if bandwidth:
            floor = 2 * X.nbytes / bandwidth
            rows.append(
                (
                    f"eval {label}",
                    f"{ev_t * 1e3:.2f} ms",
                    f"floor {floor * 1e3:.2f} ms",
                    f"{ev_t / floor:.1f}x floor (target <= 2x)",
                )
            )
        else:
            rows.append((f"eval {label}", f"{ev_t * 1e3:.2f} ms", "-", "-"))
        del X, y


def main(argv=None):
    parser = argparse.ArgumentParser(description="GPU checks and timings")
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run the same code on NumPy with tiny shapes",
    )
    args = parser.parse_args(argv)
    be = Backend(gpu=not args.cpu_smoke)
    rows = []
    if be.gpu:
        code, tail = run_gpu_tests()
        rows.append(
            ("gpu-marked tests", tail, f"exit {code}", "ok" if code == 0 else "FAIL")
        )
    parity(be, rows)
    shapes = (
        SMOKE_SHAPES if args.cpu_smoke else QUICK_SHAPES if args.quick else FULL_SHAPES
    )
    timings(be, shapes, 1 if args.cpu_smoke else 3, rows)
    width = max(len(r[0]) for r in rows)
    print(f"\n{be.name}")
    print(f"| {'check':<{width}} | value | reference | verdict |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for r in rows:
        print(f"| {r[0]:<{width}} | {r[1]} | {r[2]} | {r[3]} |")
    return rows


if __name__ == "__main__":
    main()
