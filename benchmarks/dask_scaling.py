"""Dask scaling: fit on 2,000,000 x 100 x 10 float32 with 1 and 2 workers,
beside the in-memory NumPy fit, on this machine.

    python benchmarks/dask_scaling.py            # the full shape (a few minutes)
    python benchmarks/dask_scaling.py --quick    # 200,000 rows

The data are generated on the workers, chunk by chunk from fixed seeds, so
every cluster holds the same X; the in-memory fit gets the same X gathered
once. Each worker is one process with one thread (Dask pins its BLAS to one
thread); the in-memory fit runs once with BLAS on every core and once on
one thread (on a shared machine, OpenBLAS threads competing for busy cores
can cost far more than they bring). Reported per configuration:
L-BFGS fit time, iterations, final objective, the median time of one
loss+gradient evaluation, one Adam epoch, and the bytes that moved between
processes per evaluation (counted by the workers, beside the count on paper).
Scaling efficiency = t(1 worker) / (2 * t(2 workers)).
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402
from sksoftmax._data.dask import (  # noqa: E402
    SPLIT_EVERY,
    DaskSoftmaxLoss,
    dask_training_data,
)
from sksoftmax._loss import LinearSoftmaxLoss  # noqa: E402

SEED = 0


def make_chunk(i, rows, d, k, separation):
    """Rows of chunk ``i``: Gaussian classes around fixed centers."""
    centers = np.random.default_rng(SEED).standard_normal((k, d)).astype(np.float32)
    rng = np.random.default_rng([SEED, i])
    y = rng.integers(0, k, rows)
    X = rng.standard_normal((rows, d), dtype=np.float32)
    X += separation * centers[y]
    return X, y


def dask_data(n, d, k, chunk_rows, separation):
    parts = [
        dask.delayed(make_chunk, nout=2)(i, min(chunk_rows, n - s), d, k, separation)
        for i, s in enumerate(range(0, n, chunk_rows))
    ]
    sizes = [min(chunk_rows, n - s) for s in range(0, n, chunk_rows)]
    X = da.concatenate(
        [
            da.from_delayed(p[0], (m, d), np.float32)
            for p, m in zip(parts, sizes, strict=True)
        ]
    )
    y = da.concatenate(
        [
            da.from_delayed(p[1], (m,), np.int64)
            for p, m in zip(parts, sizes, strict=True)
        ]
    )
    return X, y


def objective(clf, X, y, C):
    loss = LinearSoftmaxLoss(len(clf.classes_), X.shape[1], alpha=1 / (C * len(X)))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_]).astype(np.float64)
    return loss.loss(coef, X, y)


def timed(fn, repeat=1):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SoftmaxRegressionClassifier(**params).fit(X, y)


def outgoing_bytes(client):
    return sum(
        client.run(
            lambda dask_worker: dask_worker.transfer_outgoing_bytes_total
        ).values()
    )


def run_cluster(n_workers, args, X_np, y_np):
    with (
        distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        X, y = dask_data(args.n, args.d, args.k, args.chunk_rows, args.separation)
        X, y = dask.persist(X, y)
        distributed.wait([X, y])
        t_fit, clf = timed(lambda: fit(X, y, C=args.C))
        # One evaluation at a time, on the data as the fit sees them.
        data = dask_training_data(
            X,
            y,
            None,
            class_weight=None,
            device_param=None,
            classes=None,
            given_classes=None,
        )
        loss = LinearSoftmaxLoss(args.k, args.d, alpha=1 / (args.C * args.n))
        dloss = DaskSoftmaxLoss(loss, data.rows.chunks)
        coef = np.concatenate([clf.coef_.ravel(), clf.intercept_]).astype(np.float64)
        dloss.loss_gradient(coef)  # warm
        before = outgoing_bytes(client)
        t_eval, _ = timed(lambda: dloss.loss_gradient(coef), repeat=args.repeat)
        moved = (outgoing_bytes(client) - before) / args.repeat
        t_epoch, _ = timed(lambda: one_adam_epoch(X, y))
        return dict(
            fit=t_fit,
            n_iter=clf.n_iter_,
            J=objective(clf, X_np, y_np, args.C),
            eval=t_eval,
            epoch=t_epoch,
            moved=moved,
            chunks=data.rows.n_chunks,
        )


def one_adam_epoch(X, y):
    """One Adam epoch in batches of 1,000 rows, the per-epoch timing."""
    return fit(
        X,
        y,
        solver="adam",
        max_iter=1,
        batch_size=1000,
        learning_rate_init=1e-3,
        random_state=0,
    )


def run_in_memory(args, X, y, threads=None):
    with threadpool_limits(threads):
        return _run_in_memory(args, X, y)


def _run_in_memory(args, X, y):
    t_fit, clf = timed(lambda: fit(X, y, C=args.C))
    loss = LinearSoftmaxLoss(args.k, args.d, alpha=1 / (args.C * args.n))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_]).astype(np.float64)
    t_eval, _ = timed(lambda: loss.loss_gradient(coef, X, y), repeat=args.repeat)
    t_epoch, _ = timed(lambda: one_adam_epoch(X, y))
    return dict(
        fit=t_fit,
        n_iter=clf.n_iter_,
        J=objective(clf, X, y, args.C),
        eval=t_eval,
        epoch=t_epoch,
        moved=0.0,
        chunks=1,
    )


def bytes_on_paper(d, k, n_chunks, n_workers):
    """Per evaluation: the parameters to each worker once, one partial-sum
    vector per chunk into the tree (the ones a worker sums itself move
    nothing), and one vector to the client."""
    params = 8 * (d * k + k)
    partial = 8 * (d * k + k + 2)
    return params * n_workers + partial * n_chunks + partial


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows")
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=125_000)
    parser.add_argument("--separation", type=float, default=0.25)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.chunk_rows = 200_000, 25_000

    with dask.config.set(scheduler="threads"):
        X, y = dask.compute(
            *dask_data(args.n, args.d, args.k, args.chunk_rows, args.separation)
        )
    print(
        f"X: {args.n:,} x {args.d} float32 ({X.nbytes / 2**20:.0f} MiB), "
        f"{args.k} classes, chunks of {args.chunk_rows:,} rows"
    )
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = {
        "in-memory NumPy, BLAS on all cores": run_in_memory(args, X, y),
        "in-memory NumPy, BLAS on 1 thread": run_in_memory(args, X, y, 1),
    }
    for w in (1, 2):
        rows[f"Dask, {w} worker{'s' * (w > 1)}"] = run_cluster(w, args, X, y)

    print(
        "\n| configuration | L-BFGS fit s | iterations | objective J | "
        "s / evaluation | Adam epoch s | bytes moved / evaluation (counted) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['fit']:.2f} | {r['n_iter']} | {r['J']:.6f} | "
            f"{r['eval']:.3f} | {r['epoch']:.2f} | {r['moved']:,.0f} |"
        )
    one, two = rows["Dask, 1 worker"], rows["Dask, 2 workers"]
    n_chunks = one["chunks"]
    print(
        "\nScaling efficiency, 1 -> 2 workers: "
        f"fit {one['fit'] / (2 * two['fit']):.0%}, "
        f"per evaluation {one['eval'] / (2 * two['eval']):.0%}."
    )
    for name in list(rows)[:2]:
        print(
            f"2 workers vs {name}: fit {rows[name]['fit'] / two['fit']:.2f}x, "
            f"per evaluation {rows[name]['eval'] / two['eval']:.2f}x."
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(
        f"Bytes per evaluation on paper ({n_chunks} chunks, tree fan-in "
        f"{SPLIT_EVERY}): parameters {8 * (args.d * args.k + args.k):,} B to each "
        f"worker, {8 * (args.d * args.k + args.k + 2):,} B per chunk back; at "
        f"most {bytes_on_paper(args.d, args.k, n_chunks, 2):,} B with 2 workers "
        f"({bytes_on_paper(args.d, args.k, n_chunks, 2) / X.nbytes:.1e} of X)."
    )
    return rows


if __name__ == "__main__":
    main()
