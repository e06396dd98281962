"""CPU benchmark: sksoftmax's lbfgs, sgd and adam against scikit-learn.

One command::

    python benchmarks/bench_cpu.py                # the full suite (DESIGN.md shapes)
    python benchmarks/bench_cpu.py --quick        # smaller data, under 2 minutes
    python benchmarks/bench_cpu.py --smoke        # tiny data (run by the tests)

Against ``LogisticRegression(solver="lbfgs")``,
``MLPClassifier(hidden_layer_sizes=(), solver="adam")`` (a softmax regression)
and ``SGDClassifier(loss="log_loss")`` (one-vs-rest), on the same data in the
same run, it reports for each fit: the time (median of ``--repeats`` runs),
the training objective J computed here from ``coef_``/``intercept_`` by one
formula for all (LogisticRegression's multinomial objective with the same C),
test accuracy and log-loss, the peak memory allocated during the fit
(tracemalloc, in one extra untimed fit) and the ratio of fit time to
LogisticRegression's. scikit-learn-intelex's LogisticRegression is an
optional anchor: timed where it is installed (``pip install
scikit-learn-intelex``), otherwise skipped with a note in the outputs.

It also times, on every data set, one loss+gradient evaluation against one
read of X (``X.sum()``) and against its two matrix products alone;
``predict_proba`` on 1M x 100 x 10 float32 against one read of X; one
SGD/Adam epoch per batch size against one read of X; the time the stochastic
solvers need to come within 0.5 points of the lbfgs test accuracy; and it
plots the objective against wall time on the 100k set.

Outputs in ``--output-dir`` (default ``benchmarks/results/``): ``results.json``,
``results.md`` and ``objective_vs_time.png``.

Timings on a shared machine are noisy: the load average before and after is
recorded, and every ratio compares fits measured in the same run,
interleaved round by round.
"""

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's package, also when not installed

import sklearn  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402
from sksoftmax._cpu_kernels import numba_kernels, numba_kernels_for  # noqa: E402
from sksoftmax._loss import LinearSoftmaxLoss  # noqa: E402

C = 1.0
TOL = 1e-4

try:  # scikit-learn-intelex: the optional CPU anchor (pip install scikit-learn-intelex)
    from sklearnex.linear_model import LogisticRegression as IntelexLR
except ImportError as exc:
    IntelexLR = None
    INTELEX_MISSING = (
        f"scikit-learn-intelex not installed ({exc}); its rows are skipped"
    )
else:
    INTELEX_MISSING = None

# Per mode: training rows of each set (test sets are a quarter or a fifth
# more), L-BFGS iteration cap (both lbfgs fits), epoch cap of every
# stochastic fit (``epochs_many`` on the many-classes set, where
# SGDClassifier's one-vs-rest would otherwise take minutes), fits per
# estimator, and rounds of the evaluation timing. See DESIGN.md for shapes.
SIZES = {
    "full": dict(
        dense=100_000,
        sparse=20_000,
        many=50_000,
        many_classes=1000,
        lbfgs_iter=300,
        epochs=10,
        epochs_many=3,
        repeats=3,
        eval_rounds=9,
        predict_rows=1_000_000,
    ),
    "quick": dict(
        dense=20_000,
        sparse=10_000,
        many=10_000,
        many_classes=100,
        lbfgs_iter=300,
        epochs=5,
        epochs_many=3,
        repeats=3,
        eval_rounds=5,
        predict_rows=200_000,
    ),
    "smoke": dict(
        dense=400,
        sparse=400,
        many=400,
        many_classes=20,
        lbfgs_iter=500,  # to convergence: both L-BFGS fits end at the optimum
        tol=1e-8,  # ... to about 1e-9 relative, whatever path each takes
        epochs=2,
        epochs_many=2,
        repeats=1,
        eval_rounds=1,
        predict_rows=2_000,
    ),
}


# ----------------------------------------------------------------------- data


def _split(X, y, n_test, seed=0):
    return train_test_split(X, y, test_size=n_test, random_state=seed, stratify=y)


def data_digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return _split(X, y, 0.25)


def data_dense(n, dtype):
    """DESIGN.md's synthetic set; n training rows plus n/4 test rows."""
    X, y = make_classification(
        n_samples=n + n // 4,
        n_features=200,
        n_informative=64,
        n_redundant=0,
        n_classes=10,
        n_clusters_per_class=1,
        class_sep=1.0,
        random_state=0,
    )
    X_tr, X_te, y_tr, y_te = _split(X, y, n // 4)
    return (
        np.ascontiguousarray(X_tr, dtype=dtype),
        np.ascontiguousarray(X_te, dtype=dtype),
        y_tr,
        y_te,
    )


def data_sparse(n, d=2000, n_classes=20, density=0.005):
    """CSR, ``density`` nonzeros, labels from a random linear model + noise."""
    rng = np.random.default_rng(0)
    n_all = n + n // 4
    X = sp.random(
        n_all,
        d,
        density=density,
        format="csr",
        random_state=0,
        data_rvs=lambda k: rng.standard_normal(k),
    )
    W = rng.standard_normal((n_classes, d))
    logits = np.asarray(X @ W.T) + rng.gumbel(size=(n_all, n_classes))
    y = logits.argmax(axis=1)
    return _split(X, y, n // 4)


def data_many_classes(n, n_classes, d=128):
    """Gaussian class centers, many classes."""
    rng = np.random.default_rng(0)
    n_all = n + n // 5
    centers = rng.standard_normal((n_classes, d))
    y = np.arange(n_all) % n_classes
    X = centers[y] + 0.8 * rng.standard_normal((n_all, d))
    return _split(X, y, n // 5)


# ----------------------------------------------------------------- estimators


def estimators(n_train, sizes, solvers):
    """The fits to compare, each made fresh per run. The stochastic ones run
    at most ``epochs`` epochs; MLPClassifier's and SGDClassifier's L2
    strengths are set so that each minimizes the same J as C does."""
    epochs, it = sizes["epochs"], sizes["lbfgs_iter"]
    tol = sizes.get("tol", TOL)
    mlp_alpha = min(200, n_train) / (C * n_train)  # its penalty is per batch
    all_ = {
        "sksoftmax lbfgs": lambda: SoftmaxRegressionClassifier(
            C=C, tol=tol, max_iter=it
        ),
        "sksoftmax sgd": lambda: SoftmaxRegressionClassifier(
            C=C, solver="sgd", max_iter=epochs, random_state=0
        ),
        "sksoftmax adam": lambda: SoftmaxRegressionClassifier(
            C=C, solver="adam", max_iter=epochs, random_state=0
        ),
        "LogisticRegression": lambda: LogisticRegression(C=C, tol=tol, max_iter=it),
        "intelex LogisticRegression": lambda: IntelexLR(C=C, tol=tol, max_iter=it),
        "MLPClassifier adam": lambda: MLPClassifier(
            hidden_layer_sizes=(),
            solver="adam",
            alpha=mlp_alpha,
            max_iter=epochs,
            random_state=0,
        ),
        "SGDClassifier": lambda: SGDClassifier(
            loss="log_loss", alpha=1 / (C * n_train), max_iter=epochs, random_state=0
        ),
    }
    if IntelexLR is None:
        del all_["intelex LogisticRegression"]
    return {k: v for k, v in all_.items() if k in solvers}


def objective(est, X, y):
    """J = mean_i CE_i + ||W||^2 / (2 C n): float64, from coef_/intercept_."""
    if hasattr(est, "coefs_"):  # MLPClassifier without hidden layers
        W, b = est.coefs_[0].T, est.intercepts_[0]
    else:
        W, b = est.coef_, est.intercept_
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = X.shape[0]
    total = 0.0
    for start in range(0, n, 8192):
        Xc = X[start : start + 8192]
        logits = np.asarray(Xc @ W.T, dtype=np.float64) + b
        if logits.shape[1] == 1:  # binary: logits (0, o)
            logits = np.hstack([np.zeros_like(logits), logits])
        yc = y[start : start + 8192]
        total += float(
            (logsumexp(logits, axis=1) - logits[np.arange(len(yc)), yc]).sum()
        )
    return total / n + float((W * W).sum()) / (2 * C * n)


def n_iter(est):
    it = est.n_iter_
    return int(np.max(it)) if np.ndim(it) else int(it)


def peak_fit_memory(make, X, y):
    """Peak bytes allocated (tracemalloc) during one fit, above the start."""
    est = make()
    tracemalloc.start()
    try:
        est.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def bench_dataset(name, data, makers, repeats, quiet):
    """Interleaved rounds: each round fits every estimator once."""
    X_tr, X_te, y_tr, y_te = data
    times = {k: [] for k in makers}
    fitted = {}
    for _ in range(repeats):
        for key, make in makers.items():
            est = make()
            t0 = time.perf_counter()
            est.fit(X_tr, y_tr)
            times[key].append(time.perf_counter() - t0)
            fitted[key] = est
    rows = []
    base = (
        np.median(times["LogisticRegression"])
        if "LogisticRegression" in times
        else None
    )
    for key, est in fitted.items():
        t = float(np.median(times[key]))
        proba = est.predict_proba(X_te)
        rows.append(
            {
                "dataset": name,
                "estimator": key,
                "fit_time_s": t,
                "fit_times_s": [round(v, 4) for v in times[key]],
                "ratio_to_lr": None if base is None else t / base,
                "objective": objective(est, X_tr, y_tr),
                "n_iter": n_iter(est),
                "test_accuracy": float(est.score(X_te, y_te)),
                "test_log_loss": float(log_loss(y_te, proba, labels=est.classes_)),
                "peak_fit_memory_mb": peak_fit_memory(makers[key], X_tr, y_tr) / 2**20,
            }
        )
        if not quiet:
            r = rows[-1]
            print(
                f"  {key:20s} {t:8.3f}s  x{(r['ratio_to_lr'] or 0):5.2f}  "
                f"J={r['objective']:.8f}  acc={r['test_accuracy']:.4f}  "
                f"it={r['n_iter']}  mem={r['peak_fit_memory_mb']:.1f}MB",
                flush=True,
            )
    return rows


# ----------------------------------------------------------- loss evaluation


def read_once(X):
    """One pass over X's stored numbers (the floor of anything that reads X)."""
    if sp.issparse(X):
        return X.data.sum() + X.indices.sum()
    return X.sum()


def _interleaved(fns, rounds):
    """Median and minimum seconds of each function, interleaved round by round
    after one untimed call each."""
    for f in fns.values():
        f()
    t = {k: [] for k in fns}
    for _ in range(max(rounds, 1)):
        for key, f in fns.items():
            t0 = time.perf_counter()
            f()
            t[key].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in t.items()}, {
        k: float(np.min(v)) for k, v in t.items()
    }


def numba_on():
    """Turn the optional numba kernels on (they are opt-in, SKSOFTMAX_NUMBA=1)
    for the whole run where numba imports: the sksoftmax rows use them, and
    the evaluation and predict_proba rows time the NumPy path beside them."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    os.environ["SKSOFTMAX_NUMBA"] = "1"
    return True


def numpy_path(fn):
    """``fn`` with the optional numba kernel turned off (SKSOFTMAX_NUMBA=0)."""

    def run():
        old = os.environ.get("SKSOFTMAX_NUMBA")
        os.environ["SKSOFTMAX_NUMBA"] = "0"
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["SKSOFTMAX_NUMBA"]
            else:
                os.environ["SKSOFTMAX_NUMBA"] = old

    return run


def bench_evaluation(name, X, y, n_classes, rounds):
    """One loss+gradient evaluation against one read of X and against its two
    products alone (``W @ X.T`` and ``G @ X`` into preallocated outputs, the
    same shapes and dtype), interleaved round by round. Where the optional
    numba kernel applies, the NumPy path (SKSOFTMAX_NUMBA=0) is timed too,
    in the same rounds."""
    n, d = X.shape
    rng = np.random.default_rng(0)
    dt = X.dtype
    k = 1 if n_classes == 2 else n_classes
    W = (0.05 * rng.standard_normal((k, d))).astype(dt)
    G = rng.standard_normal((k, n)).astype(dt)
    Z = np.empty((k, n), dtype=dt)
    gW = np.empty((k, d), dtype=dt)
    loss = LinearSoftmaxLoss(n_classes, d, alpha=1 / (C * n))
    coef = np.concatenate([W.ravel(), np.zeros(k)]).astype(np.float64)

    def products():
        if sp.issparse(X):
            X @ W.T
            X.T @ G.T
        else:
            np.matmul(W, X.T, out=Z)
            np.matmul(G, X, out=gW)

    fns = {
        "read": lambda: read_once(X),
        "products": products,
        "evaluation": lambda: loss.loss_gradient(coef, X, y),
    }
    path = "numba" if loss._numba_kernels_for(X) is not None else "numpy"
    if path == "numba":
        fns["numpy_path"] = numpy_path(fns["evaluation"])
    med, low = _interleaved(fns, rounds)
    out = {
        "data": name,
        "shape": [n, d, n_classes],
        "dtype": str(dt),
        "sparse": sp.issparse(X),
        "path": path,
        "read_ms": 1e3 * med["read"],
        "products_ms": 1e3 * med["products"],
        "evaluation_ms": 1e3 * med["evaluation"],
        "ratio_to_read": med["evaluation"] / med["read"],
        "ratio": med["evaluation"] / med["products"],
        "ratio_of_minima": low["evaluation"] / low["products"],
        "rounds": rounds,
    }
    if path == "numba":
        out["numpy_path_ms"] = 1e3 * med["numpy_path"]
        out["numpy_path_ratio_to_read"] = med["numpy_path"] / med["read"]
        out["numpy_path_ratio"] = med["numpy_path"] / med["products"]
    return out


def bench_predict_proba(n, d, n_classes, rounds):
    """``predict_proba`` on n x d float32 against one read of X: the
    estimator's method (validation included), the blocked kernel alone and
    the plain NumPy expression it replaces."""
    from sksoftmax._cpu_kernels import predict_proba_numpy
    from sksoftmax._functional import softmax

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((n_classes, d)).astype(np.float32)
    y = np.arange(n) % n_classes
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 65536):  # in chunks: no float64 n x d temporary
        stop = min(n, start + 65536)
        X[start:stop] = centers[y[start:stop]]
        X[start:stop] += rng.standard_normal((stop - start, d), dtype=np.float32)
    est = SoftmaxRegressionClassifier(max_iter=30).fit(X[:5000], y[:5000])
    W, b = est.coef_, est.intercept_
    fns = {
        "read": lambda: X.sum(),
        "predict_proba": lambda: est.predict_proba(X),
        "kernel": lambda: predict_proba_numpy(X, W, b),
        "plain": lambda: softmax(X @ W.T + b, axis=1),
    }
    path = "numba" if numba_kernels_for(X, W.shape[0]) is not None else "numpy"
    if path == "numba":
        fns["predict_proba_numpy_path"] = numpy_path(fns["predict_proba"])
        fns["kernel_numpy_path"] = numpy_path(fns["kernel"])
    med, _ = _interleaved(fns, rounds)
    out = {
        "shape": [n, d, n_classes],
        "dtype": "float32",
        "rounds": rounds,
        "path": path,
    }
    for key, v in med.items():
        out[f"{key}_ms"] = 1e3 * v
        if key != "read":
            out[f"{key}_ratio_to_read"] = v / med["read"]
    return out


def bench_epochs(data, batch_sizes, rounds):
    """Seconds per SGD/Adam epoch (``partial_fit`` on all rows, shuffling
    included) against one read of X."""
    X, _, y, _ = data
    classes = np.unique(y)
    rows = []
    for solver in ("sgd", "adam"):
        for bs in batch_sizes:
            est = SoftmaxRegressionClassifier(
                C=C, solver=solver, batch_size=bs, random_state=0
            )
            med, _ = _interleaved(
                {
                    "read": lambda: X.sum(),
                    "epoch": lambda est=est: est.partial_fit(X, y, classes=classes),
                },
                rounds,
            )
            rows.append(
                {
                    "solver": solver,
                    "batch_size": bs,
                    "dtype": str(X.dtype),
                    "shape": list(X.shape),
                    "read_ms": 1e3 * med["read"],
                    "epoch_ms": 1e3 * med["epoch"],
                    "ratio_to_read": med["epoch"] / med["read"],
                }
            )
    return rows


# ------------------------------------------------------- time to accuracy


def time_to_accuracy(data, target, max_epochs, seeds, makers):
    """Wall time of whole epochs (partial_fit, one per call) until the test
    accuracy reaches ``target``; the accuracy checks are not timed."""
    X_tr, X_te, y_tr, y_te = data
    classes = np.unique(y_tr)
    out = {}
    for key, make in makers.items():
        runs = []
        for seed in seeds:
            est, spent, reached = make(seed), 0.0, None
            for epoch in range(1, max_epochs + 1):
                t0 = time.perf_counter()
                est.partial_fit(X_tr, y_tr, classes=classes)
                spent += time.perf_counter() - t0
                if est.score(X_te, y_te) >= target:
                    reached = epoch
                    break
            runs.append(
                {"seed": seed, "epochs": reached, "time_s": spent if reached else None}
            )
        done = [r["time_s"] for r in runs if r["time_s"] is not None]
        out[key] = {
            "runs": runs,
            "median_time_s": float(np.median(done)) if len(done) == len(runs) else None,
        }
    return out


# ------------------------------------------------------------------- plot


def objective_curves(data, sizes):
    """Objective against wall time from the estimator's callback."""
    X_tr, _, y_tr, _ = data
    curves = {}
    for solver in ("lbfgs", "sgd", "adam"):
        pts = []

        def record(est, info, pts=pts):
            pts.append((info["elapsed"], info["objective"]))

        kw = (
            {"max_iter": sizes["lbfgs_iter"], "tol": sizes.get("tol", TOL)}
            if solver == "lbfgs"
            else {"max_iter": sizes["epochs"], "random_state": 0}
        )
        SoftmaxRegressionClassifier(C=C, solver=solver, callback=record, **kw).fit(
            X_tr, y_tr
        )
        curves[f"sksoftmax {solver}"] = pts
    return curves


def plot(curves, points, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = min(
        [v for pts in curves.values() for _, v in pts] + [p[1] for p in points.values()]
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in curves.items():
        t, v = zip(*pts, strict=True)
        label = name + (" (epoch mean of minibatch J)" if "lbfgs" not in name else "")
        ax.plot(t, np.maximum(np.subtract(v, best), 1e-10), marker=".", label=label)
    colors = ("black", "red", "purple")
    for (name, (t, v)), color in zip(
        points.items(), colors[: len(points)], strict=True
    ):
        ax.scatter(
            [t],
            [max(v - best, 1e-10)],
            marker="x",
            s=60,
            color=color,
            label=f"{name} (final; median fit time)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("J - min J (floored at 1e-10)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------- main


def environment():
    blas = [
        {
            k: lib.get(k)
            for k in (
                "filepath",
                "internal_api",
                "version",
                "architecture",
                "num_threads",
            )
        }
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    return {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
        "sklearn": sklearn.__version__,
        "blas": blas,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }


def markdown(res):
    lines = [
        f"Command: `{res['environment']['command']}`  ",
        f"Machine: {res['environment']['cpu_count']} cores; BLAS: "
        + ", ".join(
            f"{Path(b['filepath']).name} {b['version']} "
            f"({b['architecture']}, {b['num_threads']} threads)"
            for b in res["environment"]["blas"]
        )
        + (f"; limited to {res['threads']} thread(s)" if res["threads"] else "")
        + f"; load average before/after: {res['load_before']} / "
        f"{res['load_after']}",
        "",
        "| data | estimator | fit time (s) | ratio to LR | J (train) | iters "
        "| test acc | test log-loss | peak fit mem (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["fits"]:
        ratio = "" if r["ratio_to_lr"] is None else f"{r['ratio_to_lr']:.2f}"
        lines.append(
            f"| {r['dataset']} | {r['estimator']} | {r['fit_time_s']:.3f} | {ratio} "
            f"| {r['objective']:.8f} | {r['n_iter']} | {r['test_accuracy']:.4f} "
            f"| {r['test_log_loss']:.4f} | {r['peak_fit_memory_mb']:.1f} |"
        )
    lines += [
        "",
        "One loss+gradient evaluation against one read of X (`X.sum()`; for CSR "
        "its data and indices) and against its two matrix products alone "
        "(median of interleaved rounds); path: the numba kernel (optional, "
        "`pip install sksoftmax[fast]`) or the NumPy blocks, and where the "
        "kernel ran, the NumPy path (`SKSOFTMAX_NUMBA=0`) in the same rounds"
        + ("" if res.get("numba") else " (numba not installed here)")
        + ":",
        "",
        "| data | shape (n, d, K) | dtype | read X (ms) | products (ms) "
        "| path | evaluation (ms) | eval / read | eval / products "
        "| NumPy path (ms) | NumPy / read | NumPy / products |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for e in res["evaluation"]:
        numpy_cols = (
            f"| {e['numpy_path_ms']:.2f} | {e['numpy_path_ratio_to_read']:.2f} "
            f"| {e['numpy_path_ratio']:.2f} |"
            if "numpy_path_ms" in e
            else "| | | |"
        )
        lines.append(
            f"| {e['data']} | {tuple(e['shape'])} | {e['dtype']} "
            f"| {e['read_ms']:.2f} | {e['products_ms']:.2f} | {e['path']} "
            f"| {e['evaluation_ms']:.2f} | {e['ratio_to_read']:.2f} "
            f"| {e['ratio']:.2f} " + numpy_cols
        )
    pp = res["predict_proba"]
    lines += [
        "",
        f"`predict_proba` on {' x '.join(map(str, pp['shape']))} float32 "
        "(median of interleaved rounds; ratio to one read of X):",
        "",
        "| what | ms | ratio to read |",
        "|---|---:|---:|",
        f"| read X once (`X.sum()`) | {pp['read_ms']:.1f} | 1.00 |",
        f"| `est.predict_proba(X)` (validation included) "
        f"| {pp['predict_proba_ms']:.1f} | {pp['predict_proba_ratio_to_read']:.2f} |",
        f"| blocked kernel alone (`predict_proba_numpy`, {pp['path']} path) "
        f"| {pp['kernel_ms']:.1f} | {pp['kernel_ratio_to_read']:.2f} |",
    ]
    if "kernel_numpy_path_ms" in pp:
        lines += [
            "| `est.predict_proba(X)`, NumPy path (`SKSOFTMAX_NUMBA=0`) "
            f"| {pp['predict_proba_numpy_path_ms']:.1f} "
            f"| {pp['predict_proba_numpy_path_ratio_to_read']:.2f} |",
            "| blocked kernel alone, NumPy path "
            f"| {pp['kernel_numpy_path_ms']:.1f} "
            f"| {pp['kernel_numpy_path_ratio_to_read']:.2f} |",
        ]
    lines += [
        f"| plain `softmax(X @ W.T + b)` | {pp['plain_ms']:.1f} "
        f"| {pp['plain_ratio_to_read']:.2f} |",
        "",
        "SGD/Adam: one epoch (`partial_fit` over all training rows of the "
        "synthetic set, shuffling included) against one read of X:",
        "",
        "| solver | batch | dtype | read X (ms) | epoch (ms) | ratio |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for e in res["epochs"]:
        lines.append(
            f"| {e['solver']} | {e['batch_size']} | {e['dtype']} "
            f"| {e['read_ms']:.1f} | {e['epoch_ms']:.1f} | {e['ratio_to_read']:.2f} |"
        )
    if res.get("intelex_missing"):
        lines += ["", f"Note: {res['intelex_missing']}."]
    tta = res["time_to_accuracy"]
    lines += [
        "",
        f"Time to a test accuracy of {tta['target']:.4f} (lbfgs's "
        f"{tta['lbfgs_accuracy']:.4f} minus 0.5 points) on "
        f"{tta['dataset']}, whole epochs, median over seeds:",
        "",
        "| estimator | median time (s) | ratio to MLPClassifier | epochs per seed |",
        "|---|---:|---:|---|",
    ]
    mlp = tta["results"].get("MLPClassifier adam", {}).get("median_time_s")
    for key, r in tta["results"].items():
        t = r["median_time_s"]
        ratio = f"{t / mlp:.2f}" if t and mlp else ""
        lines.append(
            f"| {key} | {'not reached' if t is None else f'{t:.3f}'} "
            f"| {ratio} | {[x['epochs'] for x in r['runs']]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller data, < 2 min")
    mode.add_argument("--smoke", action="store_true", help="tiny data (tests)")
    parser.add_argument("--output-dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="fits per estimator (median); default 3 (1 in smoke)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="run only the data sets whose name contains this "
        "(e.g. 'synthetic'); the evaluation timing, time to "
        "accuracy and plot always use the synthetic set",
    )
    parser.add_argument(
        "--estimators",
        default=None,
        help="comma-separated subset of the fits to run (default: all), e.g. "
        "'sksoftmax lbfgs,LogisticRegression' on a busy machine",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS and OpenMP threads of every fit to this "
        "(threadpoolctl); default: as installed",
    )
    parser.add_argument(
        "--numba",
        action="store_true",
        help="turn the optional numba kernels on (SKSOFTMAX_NUMBA=1) where "
        "numba imports: sksoftmax's rows use them, and the evaluation and "
        "predict_proba rows time the NumPy path beside them",
    )
    args = parser.parse_args(argv)
    if args.numba and not numba_on():
        print("--numba: numba is not installed; the NumPy path only")
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            return run(args)
    return run(args)


def run(args):
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = dict(SIZES[size])
    if args.repeats:
        sizes["repeats"] = args.repeats
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore", ConvergenceWarning)
    quiet = args.smoke
    res = {
        "mode": size,
        "environment": environment(),
        "threads": args.threads,
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "fits": [],
        "intelex_missing": INTELEX_MISSING,
        "numba": numba_kernels() is not None,
        "settings": {"C": C, "tol": TOL, **sizes},  # sizes["tol"] overrides
    }
    n = sizes["dense"]
    dense64 = data_dense(n, np.float64)
    dense_name = f"synthetic {n // 1000}k x 200 x 10"
    sets = [
        ("digits", data_digits),
        (f"{dense_name} float64", lambda: dense64),
        (f"{dense_name} float32", lambda: data_dense(n, np.float32)),
        (
            f"sparse CSR {sizes['sparse'] // 1000}k x 2k 0.5% x 20",
            lambda: data_sparse(sizes["sparse"]),
        ),
        (
            f"{sizes['many'] // 1000}k x 128 x {sizes['many_classes']} classes",
            lambda: data_many_classes(sizes["many"], sizes["many_classes"]),
        ),
    ]
    every = [
        "sksoftmax lbfgs",
        "sksoftmax sgd",
        "sksoftmax adam",
        "LogisticRegression",
        "intelex LogisticRegression",
        "MLPClassifier adam",
        "SGDClassifier",
    ]
    if args.estimators:
        every = [e for e in every if e in args.estimators.split(",")]
    if INTELEX_MISSING and not quiet:
        print(INTELEX_MISSING, flush=True)
    if args.only:
        sets = [(k, v) for k, v in sets if args.only in k or k.startswith(dense_name)]
    res["evaluation"] = []
    for name, load in sets:
        data = load()
        if not quiet:
            print(f"{name}: train {data[0].shape}, test {data[1].shape[0]}", flush=True)
        many = "classes" in name
        makers = estimators(
            data[0].shape[0],
            dict(sizes, epochs=sizes["epochs_many"]) if many else sizes,
            every,
        )
        res["fits"] += bench_dataset(name, data, makers, sizes["repeats"], quiet)
        X, y = data[0], data[2]
        kinds = [X, X.astype(np.float32)] if many else [X]
        for Xe in kinds:
            res["evaluation"].append(
                bench_evaluation(name, Xe, y, int(y.max()) + 1, sizes["eval_rounds"])
            )
            if not quiet:
                print("  evaluation", res["evaluation"][-1], flush=True)

    res["predict_proba"] = bench_predict_proba(
        sizes["predict_rows"], 100, 10, sizes["eval_rounds"]
    )
    if not quiet:
        print("  predict_proba", res["predict_proba"], flush=True)
    res["epochs"] = []
    for dt in (np.float64, np.float32):
        data = tuple(a.astype(dt) if a.ndim == 2 else a for a in dense64)
        res["epochs"] += bench_epochs(data, (256, 1024), sizes["eval_rounds"])
    if not quiet:
        print("  epochs", res["epochs"], flush=True)

    lbfgs_acc = next(
        r["test_accuracy"]
        for r in res["fits"]
        if r["dataset"] == f"{dense_name} float64"
        and r["estimator"] == "sksoftmax lbfgs"
    )
    target = lbfgs_acc - 0.005
    n_tr = dense64[0].shape[0]
    tta_makers = {
        "sksoftmax sgd": lambda s: SoftmaxRegressionClassifier(
            C=C, solver="sgd", random_state=s
        ),
        "sksoftmax adam": lambda s: SoftmaxRegressionClassifier(
            C=C, solver="adam", random_state=s
        ),
        "MLPClassifier adam": lambda s: MLPClassifier(
            hidden_layer_sizes=(),
            solver="adam",
            alpha=min(200, n_tr) / (C * n_tr),
            random_state=s,
        ),
    }
    seeds = list(range(max(1, sizes["repeats"])))
    res["time_to_accuracy"] = {
        "dataset": f"{dense_name} float64",
        "lbfgs_accuracy": lbfgs_acc,
        "target": target,
        "settings": "defaults (batch 200, learning_rate_init "
        "1e-3) for all three; MLPClassifier alpha matched to C",
        "results": time_to_accuracy(
            dense64, target, 3 * sizes["epochs"], seeds, tta_makers
        ),
    }

    curves = objective_curves(dense64, sizes)
    finals = {
        r["estimator"]: (r["fit_time_s"], r["objective"])
        for r in res["fits"]
        if r["dataset"] == f"{dense_name} float64"
        and r["estimator"] in ("LogisticRegression", "MLPClassifier adam")
    }
    res["curves"] = {k: [[round(t, 4), v] for t, v in pts] for k, pts in curves.items()}
    plot(curves, finals, out / "objective_vs_time.png", f"{dense_name} float64, C={C}")
    res["load_after"] = [round(v, 2) for v in os.getloadavg()]
    (out / "results.json").write_text(json.dumps(res, indent=1))
    table = markdown(res)
    (out / "results.md").write_text(table)
    if not quiet:
        print(table)
    return res


if __name__ == "__main__":
    main()
