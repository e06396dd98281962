"""SoftmaxRegressionCV against LogisticRegressionCV: same Cs, folds and scoring.

One command::

    python benchmarks/bench_cv.py            # DESIGN.md's CPU shapes
    python benchmarks/bench_cv.py --quick    # smaller data (minutes)
    python benchmarks/bench_cv.py --smoke    # tiny data (run by the tests)
    python benchmarks/bench_cv.py --only 100k,CSR   # the rows whose name holds one
    python benchmarks/bench_cv.py --newton   # where Newton pays (solver="auto")
    python benchmarks/bench_cv.py --parity   # C_ and coef_ at tol=1e-10

For each data set both estimators cross-validate the same grid of ``Cs`` on
the same (stratified) folds with the same scoring (``neg_log_loss``) and
``tol``, sequentially (``n_jobs=1``), fitted in turn round by round, after one
untimed fit of each on iris (so that one-time costs of a fresh process,
imports and the discovery of the BLAS thread pools, are not charged to the
first data set). It prints the
median fit time of each, their ratio (sksoftmax / scikit-learn; the target is
<= 0.5), whether ``C_`` agrees and the largest difference of ``coef_``
relative to the largest coefficient. Timings on a shared machine are noisy:
the load average is printed, and only ratios measured in the same run mean
anything.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's package, also when not installed

from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.linear_model import LogisticRegressionCV  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sksoftmax import SoftmaxRegressionCV  # noqa: E402
from sksoftmax._solvers import _newton  # noqa: E402

# (n_samples, n_features, n_classes) of the --newton table: around the rule's
# bound (newton_work = NEWTON_MAX_WORK), on both sides.
NEWTON_SHAPES = [
    (8000, 6, 2),
    (400, 10, 3),
    (20000, 8, 2),
    (300, 30, 3),
    (3000, 12, 3),
    (150, 60, 3),
    (500, 30, 4),
    (2000, 20, 3),
    (2000, 30, 5),
]


def _bundled(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _large(n_samples, dtype):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=200,
        n_informative=64,
        n_redundant=0,
        n_classes=10,
        n_clusters_per_class=1,
        class_sep=1.0,
        random_state=0,
    )
    return X.astype(dtype), y


def _sparse(n_samples, n_features, n_classes=20):
    rng = np.random.default_rng(0)
    X = sp.random(n_samples, n_features, density=0.005, format="csr", random_state=rng)
    W = rng.standard_normal((n_classes, n_features)) * 10
    y = np.asarray((X @ W.T).argmax(axis=1)).ravel()
    return X, y


def datasets(quick, smoke=False):
    yield "iris", *_bundled(load_iris)
    if smoke:  # tiny: the test that keeps this script from rotting
        X, y = make_classification(
            n_samples=300, n_features=10, n_informative=5, n_classes=3, random_state=0
        )
        yield "300 x 10 x 3", X, y
        yield "CSR 900 x 100 x 5", *_sparse(900, 100, 5)
        return
    yield "wine", *_bundled(load_wine)
    yield "breast_cancer", *_bundled(load_breast_cancer)
    yield "digits", *_bundled(load_digits)
    n = 10_000 if quick else 100_000
    yield f"{n // 1000}k x 200 x 10 f64", *_large(n, np.float64)
    yield f"{n // 1000}k x 200 x 10 f32", *_large(n, np.float32)
    rows, cols = (4_000, 500) if quick else (20_000, 2_000)
    yield f"CSR {rows // 1000}k x {cols} x 20", *_sparse(rows, cols)


def _time_interleaved(makers, X, y, repeats):
    """Median fit time of each estimator, fitted in turn round by round so
    that a change of machine load hits both alike."""
    times = [[] for _ in makers]
    models = [None] * len(makers)
    for _ in range(repeats):
        for i, make in enumerate(makers):
            t0 = time.perf_counter()
            models[i] = make().fit(X, y)
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times], models


def newton_table(folds, n_Cs, repeats):
    """SoftmaxRegressionCV's folds solved by L-BFGS and by Newton's method
    (the rule overridden), on NEWTON_SHAPES: the measurement behind
    ``NEWTON_MAX_WORK``."""
    print(
        "Newton's method against L-BFGS for the folds' paths; auto takes Newton "
        "where n p^2 + p^3 / 3 <= "
        f"{_newton.NEWTON_MAX_WORK:.2e}"
    )
    print(
        "| n x d x K | params p | n p^2 + p^3 / 3 (n: training rows) | auto takes "
        "| L-BFGS s | Newton s | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    bound = _newton.NEWTON_MAX_WORK
    for n, d, K in NEWTON_SHAPES:
        X, y = make_classification(
            n_samples=n,
            n_features=d,
            n_informative=min(d - 3, 8),
            n_classes=K,
            n_clusters_per_class=1,
            random_state=0,
        )
        p = (1 if K == 2 else K) * (d + 1)
        n_train = n * (folds - 1) // folds
        takes = "Newton" if _newton.newton_pays(n_train, p) else "L-BFGS"
        cv = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y))
        times = []
        for solver, limit in (("lbfgs", bound), ("auto", np.inf)):
            _newton.NEWTON_MAX_WORK = limit
            est = SoftmaxRegressionCV(Cs=n_Cs, cv=cv, solver=solver)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)  # warm-up
                t = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    est.fit(X, y)
                    t.append(time.perf_counter() - t0)
            times.append(min(t))
        _newton.NEWTON_MAX_WORK = bound
        print(
            f"| {n} x {d} x {K} | {p} | {_newton.newton_work(n_train, p):.1e} | "
            f"{takes} | "
            f"{times[0]:.3f} | {times[1]:.3f} | {times[1] / times[0]:.2f} |"
        )


# tests/test_cv.py's parity sets: (data, Cs, scoring)
PARITY = [
    ("iris", [1e-2, 1e-1, 1, 10], "neg_log_loss"),
    ("wine", [1e-2, 1e-1, 1, 10], "accuracy"),
    ("wine", 3, "neg_log_loss"),
    ("digits", [1e-3, 1e-2, 1e-1], "neg_log_loss"),
]


def parity_table():
    """Both estimators at tol=1e-10 on the parity sets (standardized, 3
    stratified folds): whether C_ agrees and how far coef_ is."""
    loaders = {"iris": load_iris, "wine": load_wine, "digits": load_digits}
    tight = dict(tol=1e-10, max_iter=10_000)
    print("| data | Cs | scoring | same C_ | max coef diff / max coef |")
    print("|---|---|---|---|---|")
    for name, Cs, scoring in PARITY:
        X, y = _bundled(loaders[name])
        cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = LogisticRegressionCV(
                Cs=Cs,
                cv=cv,
                scoring=scoring,
                l1_ratios=(0.0,),
                use_legacy_attributes=False,
                **tight,
            ).fit(X, y)
        ours = SoftmaxRegressionCV(Cs=Cs, cv=cv, scoring=scoring, **tight).fit(X, y)
        diff = np.abs(ours.coef_ - ref.coef_).max() / np.abs(ref.coef_).max()
        print(
            f"| {name} | {Cs} | {scoring} | "
            f"{'yes' if ours.C_ == ref.C_ else 'no'} | {diff:.1e} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data")
    parser.add_argument("--smoke", action="store_true", help="tiny data (tests)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--Cs", type=int, default=None, help="5 (3 with --smoke)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument(
        "--only", default=None, help="comma-separated parts of data set names"
    )
    parser.add_argument(
        "--newton", action="store_true", help="only the Newton/L-BFGS table"
    )
    parser.add_argument(
        "--parity", action="store_true", help="only the parity table (tol=1e-10)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit the BLAS threads of both estimators to this many "
        "(threadpoolctl): on a busy machine LogisticRegressionCV's two-thread "
        "BLAS calls wait for descheduled workers and its times inflate",
    )
    args = parser.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            _run(args)
    else:
        _run(args)


def _run(args):
    repeats = args.repeats or (1 if args.quick or args.smoke else 3)
    args.Cs = args.Cs or (3 if args.smoke else 5)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    if args.threads:
        print(f"BLAS limited to {args.threads} thread(s) for both")
    if args.parity:
        parity_table()
        return
    if args.newton:
        newton_table(args.folds, args.Cs, repeats)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return
    print(f"Cs={args.Cs} (1e-4..1e4), {args.folds} folds, tol={args.tol}, n_jobs=1")
    print(
        "| data | LogisticRegressionCV s | SoftmaxRegressionCV s | ratio | "
        "same C_ | max coef diff / max coef |"
    )
    print("|---|---|---|---|---|---|")
    common = dict(Cs=args.Cs, scoring="neg_log_loss", tol=args.tol, max_iter=1000)
    makers = [
        lambda cv: LogisticRegressionCV(
            cv=cv, l1_ratios=(0.0,), use_legacy_attributes=False, **common
        ),
        lambda cv: SoftmaxRegressionCV(cv=cv, **common),
    ]
    _, X, y = next(datasets(args.quick, args.smoke))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for make in makers:  # warm-up, untimed
            make(3).fit(X, y)
    only = None if args.only is None else args.only.split(",")
    ratios = []
    for name, X, y in datasets(args.quick, args.smoke):
        if only is not None and not any(part in name for part in only):
            continue
        splitter = (
            KFold(args.folds, shuffle=True, random_state=0)
            if sp.issparse(X)
            else StratifiedKFold(args.folds, shuffle=True, random_state=0)
        )
        cv = list(splitter.split(X, y))
        # the large sets repeat once: a fit takes minutes there
        reps = repeats if X.shape[0] < 50_000 else 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (t_ref, t_ours), (ref, ours) = _time_interleaved(
                [lambda make=make, cv=cv: make(cv) for make in makers], X, y, reps
            )
        diff = np.abs(ours.coef_ - ref.coef_).max() / np.abs(ref.coef_).max()
        ratios.append(t_ours / t_ref)
        print(
            f"| {name} | {t_ref:.2f} | {t_ours:.2f} | {t_ours / t_ref:.2f} | "
            f"{'yes' if ours.C_ == ref.C_ else f'no ({ours.C_:g} vs {ref.C_:g})'} | "
            f"{diff:.1e} |"
        )
    print(f"geometric mean ratio: {np.exp(np.mean(np.log(ratios))):.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
