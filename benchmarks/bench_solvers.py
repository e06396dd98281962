"""Solvers that need no tuning: the targets of issue 12, measured in one run.

One command::

    python benchmarks/bench_solvers.py            # the full set (a few minutes)
    python benchmarks/bench_solvers.py --smoke    # tiny data (run by the tests)

Three tables, printed as Markdown and saved with the raw numbers as JSON:

1. L-BFGS on unscaled data (feature scales spread over 1e-3..1e3, means far
   from zero; dense and sparse; and scikit-learn's digits, raw pixel
   counts): the objective J at the default ``max_iter`` relative to a tight
   reference optimum, whether a ConvergenceWarning was
   raised and whether the default ``tol`` was met, and the iterations needed
   to come within 1e-8 of the optimum, against the same data standardized.
   Side by side: sksoftmax without preconditioning (``precondition=False``,
   the behaviour before), LogisticRegression (lbfgs, newton-cholesky) and,
   when installed, scikit-learn-intelex's LogisticRegression.
2. SGD and Adam with every parameter at its default (``max_iter=50``): J
   relative to the L-BFGS optimum, on standardized and on unscaled data,
   against the defaults before (``learning_rate_init=0.001``, no
   preconditioning, no averaging).
3. A ``partial_fit`` stream whose every chunk lacks one class: test accuracy
   against L-BFGS on the same data, with MLPClassifier (no hidden layer) and
   SGDClassifier as anchors.
4. SGD and Adam with every default (``max_iter`` too) on scikit-learn's small
   sets, standardized, at C = 0.01, 1 and 100: J relative to the optimum,
   epochs, and whether a fit that ends more than 1e-3 above the optimum warns
   or stops silently (``--small`` prints only this table).

Only objectives, iteration counts and accuracies are compared: no timings.

``--conditioning`` prints instead the condition number of the Hessian of J
at the optimum (the spread of its eigenvalues, the free direction of the
intercepts left out) in the original variables and in the preconditioner's
scaled ones, for the unscaled and the standardized copy of the dense sets:
how far a diagonal change of variables can take L-BFGS on each.
"""

import argparse
import json
import sys
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
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402
from sksoftmax._loss import LinearSoftmaxLoss  # noqa: E402
from sksoftmax._precondition import fit_preconditioner  # noqa: E402

C = 1.0
OLD_SGD = dict(learning_rate_init=0.001, precondition=False, average=False)


def unscale(X, seed):
    """Columns times scales spread over 1e-3..1e3, shifted far from zero (a
    sparse X is only scaled: a shift would densify it)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    scales = 10.0 ** rng.uniform(-3, 3, d)
    if sp.issparse(X):
        return sp.csr_matrix(X @ sp.diags(scales))
    return X * scales + rng.uniform(-5, 5, d) * scales * 10


def datasets(smoke, quick=False):
    """name -> (X unscaled, X standardized, y)."""
    shapes = (
        [("dense 600x5x3", 600, 5, 3)]
        if smoke
        else [("dense 30000x60x6", 30000, 60, 6), ("dense 5000x20x3", 5000, 20, 3)]
        if quick
        else [
            ("dense 30000x60x6", 30000, 60, 6),
            ("dense 5000x20x3", 5000, 20, 3),
            ("dense 10000x30x2", 10000, 30, 2),
        ]
    )
    out = {}
    for i, (name, n, d, k) in enumerate(shapes):
        X, y = make_classification(
            n_samples=n,
            n_features=d,
            n_informative=max(2, d // 2),
            n_classes=k,
            n_clusters_per_class=1,
            flip_y=0.05,
            random_state=i,
        )
        Xs = StandardScaler().fit_transform(X)
        out[name] = (unscale(Xs, i), Xs, y)
    if not smoke and not quick:
        # DESIGN.md's digits: raw pixel counts (0..16) are the "unscaled" X;
        # standardized, its rare pixels become large values (rows of squared
        # norm up to ~2,600 where the mean is 64).
        X, y = load_digits(return_X_y=True)
        out["digits 1797x64x10"] = (X, StandardScaler().fit_transform(X), y)
    n, d, k = (600, 40, 3) if smoke else (5000, 500, 10) if quick else (20000, 2000, 20)
    rng = np.random.default_rng(7)
    Xs = sp.random(n, d, density=0.005, format="csr", random_state=7)
    Xs.data = rng.standard_normal(Xs.nnz)
    Wt = rng.standard_normal((k, d)) * 3
    y = np.argmax(Xs @ Wt.T + rng.gumbel(size=(n, k)), axis=1)
    # Standardized for sparse data: unit root mean square per column.
    rms = np.sqrt(np.asarray(Xs.multiply(Xs).mean(axis=0)).ravel())
    Xs = sp.csr_matrix(Xs @ sp.diags(1.0 / np.where(rms > 0, rms, 1.0)))
    out[f"sparse {n}x{d}x{k}"] = (unscale(Xs, 7), Xs, y)
    return out


def objective(coef, intercept, X, y, n_classes, c=C):
    loss = LinearSoftmaxLoss(n_classes, X.shape[1], alpha=1.0 / (c * X.shape[0]))
    coef = np.asarray(coef, dtype=np.float64)
    return loss.loss(np.concatenate([coef.ravel(), intercept]), X, y)


def fit(make, X, y, c=C):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est = make().fit(X, y)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    n_iter = int(np.max(est.n_iter_))
    J = objective(est.coef_, est.intercept_, X, y, len(np.unique(y)), c)
    return est, J, n_iter, warned


_REFERENCES = {}


def reference(X, y):
    """Cached :func:`_reference` (each data set is used by two tables)."""
    key = id(X)
    if key not in _REFERENCES:
        _REFERENCES[key] = _reference(X, y)
    return _REFERENCES[key]


def _reference(X, y):
    """A tight optimum: the lower J of preconditioned L-BFGS at tol=1e-12 and
    LogisticRegression's newton-cholesky at tol=1e-12 (a Newton method, so
    indifferent to the scales); the largest gradient entry there is
    reported beside it."""
    best = None
    makers = [lambda: SoftmaxRegressionClassifier(C=C, tol=1e-12, max_iter=20000)]
    if newton_fits(X, y):
        makers.append(
            lambda: LogisticRegression(
                C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000
            )
        )
    for make in makers:
        est, J, _, _ = fit(make, X, y)
        if best is None or J < best[1]:
            best = (est, J)
    est, J = best
    k = len(np.unique(y))
    loss = LinearSoftmaxLoss(k, X.shape[1], alpha=1.0 / (C * X.shape[0]))
    coef = np.concatenate([np.ravel(est.coef_), np.ravel(est.intercept_)])
    g = loss.gradient(coef, X, y)
    return J, float(np.max(np.abs(g)))


def newton_fits(X, y):
    """newton-cholesky forms the Hessian of all k * d coefficients: skip it
    where that matrix would not fit comfortably in memory (over 1 GB)."""
    n_params = len(np.unique(y)) * (X.shape[1] + 1)
    return n_params**2 * 8 < 2**30


def iterations_to(curve, J_star, rel):
    for i, v in enumerate(curve):
        if (v - J_star) / abs(J_star) <= rel:
            return i + 1
    return None


def anchors(smoke):
    out = {
        "LogisticRegression lbfgs": lambda **kw: LogisticRegression(
            C=C, solver="lbfgs", **kw
        ),
        "LogisticRegression newton-cholesky": lambda **kw: LogisticRegression(
            C=C, solver="newton-cholesky", **kw
        ),
    }
    try:
        from sklearnex.linear_model import LogisticRegression as ExLR
    except ImportError:
        print("scikit-learn-intelex is not installed: its anchor is skipped.")
    else:
        out["intelex LogisticRegression"] = lambda **kw: ExLR(C=C, **kw)
    return out


def lbfgs_table(data, smoke):
    rows = []
    for name, (Xu, Xs, y) in data.items():
        for kind, X in (("unscaled", Xu), ("standardized", Xs)):
            J_star, gmax = reference(X, y)
            ests = {
                "sksoftmax": lambda **kw: SoftmaxRegressionClassifier(C=C, **kw),
                "sksoftmax precondition=False": lambda **kw: (
                    SoftmaxRegressionClassifier(C=C, precondition=False, **kw)
                ),
                **anchors(smoke),
            }
            if not newton_fits(X, y):
                print(f"{name}: newton-cholesky skipped (Hessian over 1 GB).")
                ests.pop("LogisticRegression newton-cholesky")
            for est_name, make in ests.items():
                _, J, n_iter, warned = fit(make, X, y)
                row = dict(
                    data=name,
                    kind=kind,
                    estimator=est_name,
                    J_star=J_star,
                    ref_max_grad=gmax,
                    rel_default=(J - J_star) / J_star,
                    iter_default=n_iter,
                    warned=warned,
                )
                # precondition=False takes thousands of iterations on
                # unscaled data: run to convergence only where it is fast.
                if est_name == "sksoftmax" or (
                    est_name.startswith("sksoftmax") and kind == "standardized"
                ):
                    max_iter = 100 if smoke else 3000
                    est, J_t, n_t, _ = fit(
                        lambda make=make, max_iter=max_iter: make(
                            tol=1e-10, max_iter=max_iter
                        ),
                        X,
                        y,
                    )
                    row["iter_to_1e-8"] = iterations_to(est.loss_curve_, J_star, 1e-8)
                    row["iter_tol_1e-10"] = n_t
                    row["rel_tol_1e-10"] = (J_t - J_star) / J_star
                rows.append(row)
                print(_lbfgs_line(row), flush=True)
    return rows


def _lbfgs_line(r):
    to8 = r.get("iter_to_1e-8", "")
    return (
        f"| {r['data']} | {r['kind']} | {r['estimator']} | {r['rel_default']:.1e} "
        f"| {r['iter_default']} | {'yes' if r['warned'] else 'no'} "
        f"| {'-' if to8 is None else to8} "
        f"| {r.get('iter_tol_1e-10', '')} |"
    )


def stochastic_table(data, smoke):
    rows = []
    for name, (Xu, Xs, y) in data.items():
        for kind, X in (("standardized", Xs), ("unscaled", Xu)):
            J_star, _ = reference(X, y)
            for solver in ("sgd", "adam"):
                for label, params in (("defaults", {}), ("old defaults", OLD_SGD)):
                    est, J, n_iter, warned = fit(
                        lambda solver=solver, params=params: (
                            SoftmaxRegressionClassifier(
                                C=C,
                                solver=solver,
                                max_iter=50,
                                random_state=0,
                                **params,
                            )
                        ),
                        X,
                        y,
                    )
                    row = dict(
                        data=name,
                        kind=kind,
                        estimator=f"{solver} {label}",
                        rel=(J - J_star) / J_star,
                        epochs=n_iter,
                        finite=bool(np.isfinite(J)),
                    )
                    rows.append(row)
                    print(
                        f"| {name} | {kind} | {row['estimator']} | {row['rel']:.1e} "
                        f"| {n_iter} |",
                        flush=True,
                    )
    return rows


SMALL_CS = (0.01, 1.0, 100.0)


def small_table(smoke):
    """Every default, ``max_iter`` included, on scikit-learn's small sets
    (standardized) at several C: how far from the optimum SGD and Adam end,
    and whether a fit that ends more than 1e-3 above it says so (a
    ConvergenceWarning) or stops silently."""
    sets = (
        {"iris": load_iris}
        if smoke
        else {
            "iris": load_iris,
            "wine": load_wine,
            "breast_cancer": load_breast_cancer,
            "digits": load_digits,
        }
    )
    rows = []
    for name, loader in sets.items():
        X, y = loader(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        K = len(np.unique(y))
        for c in SMALL_CS[:1] if smoke else SMALL_CS:
            tight = [
                LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(X, y),
                SoftmaxRegressionClassifier(C=c, tol=1e-12, max_iter=10_000).fit(X, y),
            ]
            J_star = min(objective(e.coef_, e.intercept_, X, y, K, c) for e in tight)
            for solver in ("sgd", "adam"):
                _, J, epochs, warned = fit(
                    lambda solver=solver, c=c: SoftmaxRegressionClassifier(
                        C=c, solver=solver, random_state=0
                    ),
                    X,
                    y,
                    c,
                )
                rel = (J - J_star) / J_star
                row = dict(
                    data=name,
                    C=c,
                    solver=solver,
                    rel=rel,
                    epochs=epochs,
                    warned=warned,
                    silent=bool(rel > 1e-3 and not warned),
                )
                rows.append(row)
                print(
                    f"| {name} | {c:g} | {solver} | {rel:.1e} | {row['epochs']} | "
                    f"{'yes' if warned else 'no'} | "
                    f"{'**yes**' if row['silent'] else 'no'} |",
                    flush=True,
                )
    return rows


def skewed_stream(smoke):
    """Every chunk lacks one class (in turn); 30 passes of 250-row chunks."""
    n, d, k, passes, chunk = (300, 5, 3, 3, 100) if smoke else (2000, 10, 4, 30, 250)
    X, y = make_classification(
        n_samples=2 * n,
        n_features=d,
        n_informative=d // 2 + 1,
        n_classes=k,
        n_clusters_per_class=1,
        flip_y=0.1,
        random_state=3,
    )
    X = StandardScaler().fit_transform(X)
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    rng = np.random.default_rng(0)
    chunks = []
    for p in range(passes):
        order = rng.permutation(n)
        for j in range(n // chunk):
            missing = (p + j) % k
            rows = order[ytr[order] != missing]
            chunks.append(rng.choice(rows, size=chunk, replace=False))
    classes = np.arange(k)
    ref = SoftmaxRegressionClassifier(C=C).fit(Xtr, ytr)
    results = {"L-BFGS (fit)": ref.score(Xte, yte)}
    print(f"| L-BFGS (fit on all the data) | {results['L-BFGS (fit)']:.3f} |")
    # The stream sees the data `passes` times: C / passes is fit's objective.
    streams = {
        "sgd defaults": lambda: SoftmaxRegressionClassifier(
            C=C / passes, solver="sgd", random_state=0
        ),
        "adam defaults": lambda: SoftmaxRegressionClassifier(
            C=C / passes, solver="adam", random_state=0
        ),
        "sgd old defaults": lambda: SoftmaxRegressionClassifier(
            C=C / passes, solver="sgd", random_state=0, **OLD_SGD
        ),
        "adam old defaults": lambda: SoftmaxRegressionClassifier(
            C=C / passes, solver="adam", random_state=0, **OLD_SGD
        ),
        "MLPClassifier (no hidden layer)": lambda: MLPClassifier(
            hidden_layer_sizes=(), random_state=0
        ),
        "SGDClassifier log_loss": lambda: SGDClassifier(
            loss="log_loss", random_state=0
        ),
    }
    for name, make in streams.items():
        est = make()
        for idx in chunks:
            est.partial_fit(Xtr[idx], ytr[idx], classes=classes)
        results[name] = est.score(Xte, yte)
        print(f"| {name} | {results[name]:.3f} |", flush=True)
    return results


def conditioning(X, y):
    """Condition numbers of the Hessian of J at its optimum: in ``[W, b]``
    and in the scaled variables ``z`` of the preconditioner (``W = V / s``,
    ``b = c - W mu``), on the directions that move probabilities."""
    clf = SoftmaxRegressionClassifier(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    n, d = X.shape
    loss = LinearSoftmaxLoss(len(clf.classes_), d, alpha=1.0 / (C * n))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    H = loss.hessian(coef, X)
    # In the scaled variables J is the cross-entropy on X~ = (X - mu) / s with
    # the penalty alpha / 2 sum (V_aj / s_j)^2: its Hessian formed there
    # directly (no rounding of the raw scales carried over).
    pre = fit_preconditioner(X, fit_intercept=True, alpha=loss.alpha)
    Xt = (X - pre.mean) / pre.scale
    V = clf.coef_ * pre.scale
    c = clf.intercept_ + clf.coef_ @ pre.mean
    ce = LinearSoftmaxLoss(len(clf.classes_), d)
    Hz = ce.hessian(np.concatenate([V.ravel(), c]), Xt)
    k, m = ce.n_logits, ce.n_logits * d
    Hz[np.arange(m), np.arange(m)] += loss.alpha / np.tile(pre.scale**2, k)
    # The directions that adding one number to every class's weights of a
    # feature (or to every intercept) spans move no probability: J sees them
    # through the penalty only, the optimum and every gradient from zero have
    # no part there, and L-BFGS never moves along them. The spectrum is taken
    # on their orthogonal complement (an invariant subspace of both Hessians).
    Q = np.eye(H.shape[0])
    if k > 1:
        P = np.zeros((H.shape[0], d + 1))
        for j in range(d):
            P[j:m:d, j] = 1.0 / np.sqrt(k)
        P[m:, d] = 1.0 / np.sqrt(k)
        Q = np.linalg.svd(np.eye(H.shape[0]) - P @ P.T)[0][:, : H.shape[0] - d - 1]
    out = {}
    for name, M in (("original", H), ("scaled", Hz)):
        ev = np.linalg.eigvalsh(Q.T @ M @ Q)
        out[name] = float(ev.max() / ev.min())
    out["lbfgs_iterations_tol_1e-10"] = int(clf.n_iter_)
    return out


def conditioning_table(data):
    print("## Conditioning at the optimum (C=1)")
    print(
        "| data | X | cond, original variables | cond, scaled variables | "
        "L-BFGS iterations at tol=1e-10 |"
    )
    print("|---|---|---|---|---|")
    rows = []
    for name, (X_raw, X_std, y) in data.items():
        if sp.issparse(X_raw):
            continue  # a dense Hessian of 40,000 unknowns: left out
        for label, X in (("unscaled", X_raw), ("standardized", X_std)):
            r = {"data": name, "X": label, **conditioning(X, y)}
            rows.append(r)
            print(
                f"| {name} | {label} | {r['original']:.2e} | {r['scaled']:.2e} | "
                f"{r['lbfgs_iterations_tol_1e-10']} |",
                flush=True,
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data")
    parser.add_argument(
        "--quick", action="store_true", help="DESIGN.md's 30k set and two smaller"
    )
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--conditioning", action="store_true", help="only the conditioning table"
    )
    parser.add_argument(
        "--small", action="store_true", help="only the small-data table"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    data = datasets(args.smoke, args.quick)
    if args.conditioning:
        conditioning_table(data)
        return
    small_header = (
        "\n## SGD and Adam with every default on small data (standardized)\n"
        "| data | C | solver | J/J*-1 | epochs | ConvergenceWarning | "
        "silent stop (J/J*-1 > 1e-3, no warning) |\n|---|---|---|---|---|---|---|"
    )
    if args.small:
        print(small_header)
        small_table(args.smoke)
        return
    print("## L-BFGS on unscaled data")
    print(
        "| data | X | estimator | J/J*-1 at defaults | iterations | "
        "ConvergenceWarning | iterations to 1e-8 | iterations at tol=1e-10 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    lbfgs = lbfgs_table(data, args.smoke)
    print("\n## SGD and Adam with defaults, max_iter=50")
    print("| data | X | solver | J/J*-1 | epochs |")
    print("|---|---|---|---|---|")
    stochastic = stochastic_table(data, args.smoke)
    print("\n## Class-skewed partial_fit stream (test accuracy)")
    print("| estimator | accuracy |")
    print("|---|---|")
    stream = skewed_stream(args.smoke)
    print(small_header)
    small = small_table(args.smoke)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_solvers.json").write_text(
        json.dumps(
            {
                "lbfgs": lbfgs,
                "stochastic": stochastic,
                "stream": stream,
                "small": small,
            },
            indent=1,
            default=float,
        )
    )


if __name__ == "__main__":
    main()
