"""GPU speed-up: the same fit on the CPU (NumPy) and on the GPU (CuPy).

``device="cuda"`` runs the arithmetic on the GPU through CuPy even for NumPy
input: X moves to the GPU once, and L-BFGS moves only the parameters and the
gradient per evaluation. Passing a CuPy array keeps everything on the GPU from
the start; the fitted attributes then come back as CuPy arrays. The script
times three ways to fit the same model (median of a few runs, after a warm-up
that pays for CUDA's start-up and kernel compilation) and checks that the
coefficients agree.

Without CuPy or a CUDA GPU it says why it cannot run and exits with status 0.
Install CuPy with ``pip install -e ".[gpu]"`` (cupy-cuda12x, for CUDA 12.x).

Run ``python examples/gpu_speedup.py [--output-dir DIR] [--n-samples N]``. On a
GPU machine it saves ``gpu_speedup.png``.
"""

# %%
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sksoftmax import SoftmaxRegressionClassifier

N_FEATURES, N_CLASSES = 256, 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=200_000,
        help="rows of the float32 data set (default: 200000)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed fits per configuration (default: 3)",
    )
    return parser.parse_args(argv)


# %% Is there a GPU to use? Return CuPy, or None and the reason.
def find_cupy():
    try:
        import cupy
    except ImportError as exc:
        return None, (
            f"CuPy is not installed ({exc}). Install it with "
            'pip install -e ".[gpu]" (cupy-cuda12x, for CUDA 12.x) or '
            "cupy-cuda13x for CUDA 13.x."
        )
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device, or a broken CUDA install
        return None, f"CuPy is installed but no CUDA device can be used: {exc}"
    if n_devices == 0:
        return None, "CuPy is installed but no CUDA device was found."
    return cupy, None


# %% Data: Gaussian class centers, float32 (the project's GPU benchmark shape).
def make_data(n_samples, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.3, size=(N_CLASSES, N_FEATURES)).astype(np.float32)
    y = rng.integers(N_CLASSES, size=n_samples)
    X = rng.standard_normal((n_samples, N_FEATURES), dtype=np.float32) + centers[y]
    return X, y


def time_fit(make, X, y, repeats):
    times = []
    for _ in range(repeats):
        clf = make()
        start = time.perf_counter()
        clf.fit(X, y)  # fit ends by reading the coefficients back: synchronized
        times.append(time.perf_counter() - start)
    return clf, float(np.median(times))


def run(cupy, args):
    X, y = make_data(args.n_samples)
    X_gpu, y_gpu = cupy.asarray(X), cupy.asarray(y)
    params = dict(C=1.0, max_iter=200)
    # Warm-up: CUDA context, cuBLAS handles and kernel compilation.
    SoftmaxRegressionClassifier(device="cuda", **params).fit(X[:2000], y[:2000])
    SoftmaxRegressionClassifier(**params).fit(X_gpu[:2000], y_gpu[:2000])
    cupy.cuda.Device().synchronize()

    setups = {
        "CPU, NumPy": (lambda: SoftmaxRegressionClassifier(**params), X, y),
        'GPU, NumPy input, device="cuda"': (
            lambda: SoftmaxRegressionClassifier(device="cuda", **params),
            X,
            y,
        ),
        "GPU, CuPy input": (
            lambda: SoftmaxRegressionClassifier(**params),
            X_gpu,
            y_gpu,
        ),
    }
    results = {}
    for name, (make, Xs, ys) in setups.items():
        clf, seconds = time_fit(make, Xs, ys, args.repeats)
        results[name] = (
            seconds,
            clf.n_iter_,
            cupy.asnumpy(clf.coef_)
            if not isinstance(clf.coef_, np.ndarray)
            else clf.coef_,
        )
    return X.shape, results


def report(shape, results, cupy):
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(
        f"data: {shape[0]} x {shape[1]} float32, {N_CLASSES} classes; "
        f"GPU: {name}; lbfgs, C=1\n"
    )
    cpu_s, _, cpu_coef = results["CPU, NumPy"]
    print(
        f"{'setup':<34} {'fit (s)':>8} {'speed-up':>9} {'iterations':>11} "
        f"{'max |coef - CPU coef|':>22}"
    )
    for setup, (seconds, n_iter, coef) in results.items():
        print(
            f"{setup:<34} {seconds:>8.3f} {cpu_s / seconds:>8.1f}x {n_iter:>11} "
            f"{np.abs(coef - cpu_coef).max():>22.2e}"
        )
    return name


def plot(results, gpu_name, shape, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    seconds = [results[n][0] for n in names]
    fig, ax = plt.subplots(figsize=(7.5, 3.4), constrained_layout=True)
    bars = ax.barh(names, seconds, color=["tab:gray", "tab:green", "tab:olive"])
    ax.bar_label(
        bars, [f"{s:.3f} s ({seconds[0] / s:.1f}x)" for s in seconds], padding=3
    )
    ax.invert_yaxis()
    ax.set_xlabel("fit time, seconds (median)")
    ax.set_xlim(0, max(seconds) * 1.35)
    ax.set_title(
        f"lbfgs fit, {shape[0]:,} x {shape[1]} float32, {N_CLASSES} "
        f"classes\nCPU vs {gpu_name}"
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    cupy, reason = find_cupy()
    if cupy is None:
        print(f"gpu_speedup.py cannot run here: {reason}")
        return 0
    shape, results = run(cupy, args)
    gpu_name = report(shape, results, cupy)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "gpu_speedup.png"
    plot(results, gpu_name, shape, path)
    print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
