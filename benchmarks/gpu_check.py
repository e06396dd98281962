"""GPU check: tests, GPU-vs-CPU parity, and timings against their targets.

Everything in one call of at most 5 minutes on one H100/H200; it prints one
table (check, value, target, verdict) last:

1. the ``gpu``-marked tests (fused kernels against the generic path,
   placement, one device generator per fit, shuffled minibatches, a
   ``device="cuda"`` sgd/adam model unpickled where CuPy cannot be imported);
2. ``coef_`` parity GPU vs CPU (float64 within 1e-4, float32 within 1e-3,
   lbfgs and sgd);
3. L-BFGS fits on Gaussian-class data made on the device (1M x 256 x 10 and
   200k x 512 x 1000, float32) against scikit-learn's LogisticRegression on
   the same CuPy arrays (``SCIPY_ARRAY_API=1``, ``array_api_dispatch=True``),
   each with its final objective J (target: >= 3x faster at an equal or lower
   J);
4. one loss+gradient evaluation against the time to read X once from GPU
   memory (target: <= 2x);
5. an SGD epoch (batch 1024) on the GPU against the same epoch on 2 CPU
   cores (target: >= 20x).

Usage:

    python benchmarks/gpu_check.py              # on a machine with a GPU
    python benchmarks/gpu_check.py --quick      # smaller timing shapes
    python benchmarks/gpu_check.py --cpu-smoke  # the same code on NumPy with
                                                # tiny shapes (tests run this)
    python benchmarks/gpu_check.py --out DIR    # also write the table and logs

On this workplace's device machine (CuPy, SciPy and pytest are there; nothing
can be downloaded there), from the repository root of the checkout that the
device tool sends:

1. once, here: ``benchmarks/fetch_gpu_wheels.sh`` downloads the wheels the
   check needs (array-api-compat, scikit-learn 1.9.1, array-api-strict, Dask
   for its GPU test) into ``.whl/``, which it adds to ``.git/info/exclude``;
2. one device call with ``carry: [".whl"]`` and ``timeout_s: 300``::

       python3 -m pip install -q --no-index --no-deps --no-compile \\
         --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \\
       && export PYTHONPATH=/tmp/site:$PWD SCIPY_ARRAY_API=1 \\
         PYTHONUNBUFFERED=1 \\
       && python3 benchmarks/gpu_check.py --out $OUT

Each step is guarded: a step that fails or would overrun ``--budget-s``
(default 240 s) becomes a row saying so, and the table is always printed.
"""

import os

# scikit-learn's array API dispatch needs this before SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
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
# SGD epoch: (rows on the device, rows timed on the CPU and scaled up).
FULL_SGD = (1_000_000, 200_000)
QUICK_SGD = (200_000, 50_000)
SMOKE_SGD = (4_096, 2_048)
SGD_BATCH = 1024
CPU_CORES = 2


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
        # scikit-learn keeps some attributes (n_iter_) in NumPy even on CuPy.
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def draws(self, seed):
        """``(normal(shape), integers(high, size))`` drawn on the device in
        float32 (CuPy's legacy RandomState has both with a dtype)."""
        if self.gpu:
            rs = self.xp.random.RandomState(seed)
            return (
                lambda shape: rs.standard_normal(shape, dtype=np.float32),
                lambda high, size: rs.randint(0, high, size=size),
            )
        rng = np.random.default_rng(seed)
        return (
            lambda shape: rng.standard_normal(shape, dtype=np.float32),
            lambda high, size: rng.integers(0, high, size=size),
        )


def gaussian_classes(be, n, d, k, dtype, seed=0):
    """Gaussian clouds around random class centers, drawn on the device."""
    normal, integers = be.draws(seed)
    centers = normal((k, d)) * np.float32(3.0 / np.sqrt(d))
    y = integers(k, n)
    X = centers[y] + normal((n, d))
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


@contextlib.contextmanager
def cpu_cores(n):
    """Run the block on ``n`` CPU cores: BLAS pools limited to ``n`` threads
    and the process pinned to ``n`` cores (where the OS allows it)."""
    from threadpoolctl import threadpool_limits

    pinned = None
    if hasattr(os, "sched_getaffinity"):
        pinned = os.sched_getaffinity(0)
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, sorted(pinned)[:n])
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if pinned is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, pinned)


def verdict(ok):
    return "ok" if ok else "MISS"


# -- the steps -------------------------------------------------------------------


def run_gpu_tests(rows, out_dir, timeout):
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "gpu",
        "-p",
        "no:cacheprovider",
        "-rfEs",
        str(ROOT / "tests"),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        rows.append(("gpu-marked tests", f"over {timeout} s", "pass", "FAIL"))
        return
    log = proc.stdout + proc.stderr
    if out_dir:
        (out_dir / "gpu_tests.log").write_text(log)
    lines = proc.stdout.strip().splitlines()
    tail = lines[-1].strip("= ") if lines else "(no output)"
    rows.append(
        ("gpu-marked tests", tail, "all pass", "ok" if proc.returncode == 0 else "FAIL")
    )
    for line in lines:
        if line.startswith(("FAILED", "ERROR")):
            rows.append(("  " + line.split(" - ")[0][:70], "", "", "FAIL"))


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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
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


def fit_timings(be, shape, repeats, rows, bandwidth):
    """L-BFGS against LogisticRegression on the same device arrays, and one
    evaluation against one read of X."""
    from sklearn import config_context
    from sklearn.linear_model import LogisticRegression

    n, d, k = shape
    X, y = gaussian_classes(be, n, d, k, np.float32)
    label = f"{n:,} x {d} x {k}"

    def ours_fit():
        return SoftmaxRegressionClassifier(C=1.0).fit(X, y)

    def ref_fit():
        return LogisticRegression(C=1.0).fit(X, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_fit()  # warm-up: kernel compilation, cuBLAS handles
        ours_t, ours = timed(be, ours_fit, repeats)
        with config_context(array_api_dispatch=True):
            ref_fit()
            ref_t, ref = timed(be, ref_fit, repeats)
    J_ours = objective(be, X, y, ours.coef_, ours.intercept_, 1.0)
    J_ref = objective(be, X, y, ref.coef_, ref.intercept_, 1.0)
    ref_it = int(np.max(be.to_numpy(ref.n_iter_)))
    rows.append(
        (
            f"fit {label} sksoftmax",
            f"{ours_t:.3f} s, {ours.n_iter_} it",
            f"J={J_ours:.6f}",
            "",
        )
    )
    rows.append(
        (f"fit {label} sklearn LR", f"{ref_t:.3f} s, {ref_it} it", f"J={J_ref:.6f}", "")
    )
    speedup = ref_t / ours_t
    rows.append(
        (
            f"L-BFGS speedup {label}",
            f"{speedup:.2f}x, J {'<=' if J_ours <= J_ref * (1 + 1e-6) else '>'} LR's",
            ">= 3x at J <= LR's",
            verdict(speedup >= 3 and J_ours <= J_ref * (1 + 1e-6)),
        )
    )
    loss = LinearSoftmaxLoss(k, d, fit_intercept=True, alpha=1.0 / n)
    W = be.xp.asarray(ours.coef_, dtype=X.dtype)
    b = be.xp.asarray(ours.intercept_, dtype=X.dtype)

    def evaluate():
        return loss.loss_gradient_arrays(W, b, X, y)

    evaluate()
    ev_t, _ = timed(be, evaluate, 20)
    if bandwidth:
        read = X.nbytes / bandwidth
        rows.append(
            (
                f"evaluation {label}",
                f"{ev_t * 1e3:.2f} ms = {ev_t / read:.1f}x one read of X",
                f"<= 2x ({read * 1e3:.2f} ms)",
                verdict(ev_t <= 2 * read),
            )
        )
    else:
        rows.append((f"evaluation {label}", f"{ev_t * 1e3:.2f} ms", "-", "-"))
    if be.gpu:  # a lead for a faster evaluation: X in chunks that fit in L2
        from sksoftmax._loss import GENERIC_NK_TEMPORARIES, GENERIC_ROW_VECTORS

        l2 = be.xp.cuda.Device().attributes.get("L2CacheSize", 50 * 2**20)
        chunk = max(1024, l2 // 2 // (d * X.itemsize))
        per_row = GENERIC_NK_TEMPORARIES * k * X.itemsize + 8 * GENERIC_ROW_VECTORS
        with config_context(working_memory=chunk * per_row / 2**20):
            evaluate()
            l2_t, _ = timed(be, evaluate, 20)
        rows.append(
            (
                f"  in L2-sized chunks {label}",
                f"{l2_t * 1e3:.2f} ms ({chunk:,} rows a chunk)",
                "diagnostic",
                "",
            )
        )
    # Where the evaluation's time goes: its two products alone.
    logits = X @ W.T
    fwd_t, _ = timed(be, lambda: X @ W.T, 20)
    bwd_t, _ = timed(be, lambda: logits.T @ X, 20)
    rows.append(
        (
            f"  of which products {label}",
            f"X W^T {fwd_t * 1e3:.2f} ms + G^T X {bwd_t * 1e3:.2f} ms",
            f"rest {max(ev_t - fwd_t - bwd_t, 0) * 1e3:.2f} ms",
            "",
        )
    )


@contextlib.contextmanager
def counting_fused_updates():
    """A list that gets one entry per fused SGD update (one kernel launch per
    minibatch on CuPy); empty if the fit took another path."""
    import sksoftmax._cupy_kernels as kernels

    calls, real = [], kernels.sgd_update

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    kernels.sgd_update = counted
    try:
        yield calls
    finally:
        kernels.sgd_update = real


def sgd_epoch(be, sizes, rows):
    """One SGD epoch (batch 1024) on the device against 2 CPU cores, each
    measured as (time of 3 epochs - time of 1 epoch) / 2. On the GPU the
    epoch must go through the fused update (one launch per minibatch): a
    fit that took the generic path is reported as such."""
    n_dev, n_cpu = sizes
    d, k = 256, 10
    X, y = gaussian_classes(be, n_dev, d, k, np.float32, seed=1)
    params = dict(
        solver="sgd",
        batch_size=SGD_BATCH,
        learning_rate_init=0.01,
        tol=0,
        n_iter_no_change=1000,
        shuffle=True,
        random_state=0,
    )

    def per_epoch(Xa, ya, repeats):
        def fit(epochs):
            return SoftmaxRegressionClassifier(max_iter=epochs, **params).fit(Xa, ya)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit(1)  # warm-up
            t1, _ = timed(be, lambda: fit(1), repeats)
            t3, _ = timed(be, lambda: fit(3), repeats)
        return max(t3 - t1, 1e-9) / 2

    with counting_fused_updates() as fused:
        dev_t = per_epoch(X, y, 3)
    Xh, yh = be.to_numpy(X[:n_cpu]), be.to_numpy(y[:n_cpu])
    with cpu_cores(CPU_CORES):
        cpu_t = per_epoch(Xh, yh, 1) * (n_dev / n_cpu)
    ratio = cpu_t / dev_t
    path = f", {len(fused)} fused updates" if fused else ", generic update path"
    rows.append(
        (
            f"SGD epoch {n_dev:,} x {d} x {k}, batch {SGD_BATCH}",
            f"{dev_t * 1e3:.1f} ms vs {cpu_t * 1e3:.0f} ms on {CPU_CORES} cores "
            f"= {ratio:.1f}x" + (path if be.gpu else ""),
            ">= 20x, fused" if be.gpu else "-",
            verdict(ratio >= 20 and bool(fused)) if be.gpu else "-",
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description="GPU checks and timings")
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run the same code on NumPy with tiny shapes",
    )
    parser.add_argument("--out", type=Path, default=None, help="write table/logs")
    parser.add_argument("--budget-s", type=float, default=240.0)
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    be = Backend(gpu=not args.cpu_smoke)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    rows = []

    def step(name, fn, needs_s=0.0):
        """Run one step; a failure or a step past the budget becomes a row."""
        left = args.budget_s - (time.perf_counter() - t_start)
        if left < needs_s:
            rows.append((name, f"skipped: {left:.0f} s left", "", "SKIP"))
            return
        try:
            fn()
        except Exception as exc:  # the table must still come out
            rows.append((name, f"{type(exc).__name__}: {exc}"[:120], "", "ERROR"))
            if args.out:
                with open(args.out / "errors.log", "a") as fh:
                    fh.write(f"== {name}\n{traceback.format_exc()}\n")
            else:
                traceback.print_exc()

    if be.gpu:
        step("gpu-marked tests", lambda: run_gpu_tests(rows, args.out, 120))
    step("parity", lambda: parity(be, rows))
    shapes = (
        SMOKE_SHAPES if args.cpu_smoke else QUICK_SHAPES if args.quick else FULL_SHAPES
    )
    repeats = 1 if args.cpu_smoke else 3
    bandwidth = {}
    if be.gpu:
        step("copy bandwidth", lambda: bandwidth.setdefault("bw", copy_bandwidth(be)))
        if "bw" in bandwidth:
            rows.append(
                ("device copy bandwidth", f"{bandwidth['bw'] / 1e12:.2f} TB/s", "", "")
            )
    for shape in shapes:
        step(
            f"fits {shape}",
            lambda shape=shape: fit_timings(
                be, shape, repeats, rows, bandwidth.get("bw")
            ),
            needs_s=0 if args.cpu_smoke else 40,
        )
        if be.gpu:
            be.xp.get_default_memory_pool().free_all_blocks()
    sgd = SMOKE_SGD if args.cpu_smoke else QUICK_SGD if args.quick else FULL_SGD
    step(
        "SGD epoch",
        lambda: sgd_epoch(be, sgd, rows),
        needs_s=0 if args.cpu_smoke else 30,
    )

    width = max(len(r[0]) for r in rows)
    lines = [
        "",
        f"{be.name}, {time.perf_counter() - t_start:.0f} s",
        f"| {'check':<{width}} | value | target | verdict |",
        f"|{'-' * (width + 2)}|---|---|---|",
    ]
    lines += [f"| {r[0]:<{width}} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        (args.out / "gpu_check.md").write_text(table + "\n")
    return rows


if __name__ == "__main__":
    main()
