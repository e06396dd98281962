"""Training curves: the objective against iterations and against seconds for
lbfgs, sgd and adam, read from ``loss_curve_`` and recorded by a ``callback``.

All three solvers minimize the same objective J (LogisticRegression's), so
their curves head to the same floor J*, taken here from a tightly converged
L-BFGS fit. For L-BFGS a point is J after an iteration; for SGD and Adam it is
the epoch's weighted mean of the minibatch estimates of J (what
``loss_curve_`` holds for them), so it lags the parameters by half an epoch.
The fits run on one BLAS thread: on small matrices more threads gain little,
and on a busy machine their spinning makes the times erratic.

Run ``python examples/plot_training_curves.py [--output-dir DIR]``. It saves
``training_curves.png``.
"""

# %%
import argparse
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402

C = 1.0
SOLVERS = {
    "lbfgs": dict(solver="lbfgs", max_iter=200, tol=1e-6),
    # tol=0 and n_iter_no_change=max_iter: run every epoch, for the picture.
    "sgd": dict(
        solver="sgd",
        learning_rate_init=0.05,
        max_iter=25,
        tol=0.0,
        n_iter_no_change=25,
        random_state=0,
    ),
    "adam": dict(
        solver="adam",
        learning_rate_init=0.005,
        max_iter=25,
        tol=0.0,
        n_iter_no_change=25,
        random_state=0,
    ),
}
COLORS = {"lbfgs": "tab:blue", "sgd": "tab:orange", "adam": "tab:green"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    return parser.parse_args(argv)


# %% Data: 10,000 samples, 40 features, 5 classes, standardized.
def load_data():
    X, y = make_classification(
        n_samples=10_000,
        n_features=40,
        n_informative=20,
        n_redundant=0,
        n_classes=5,
        n_clusters_per_class=1,
        class_sep=0.8,
        random_state=0,
    )
    return StandardScaler().fit_transform(X), y


def objective(clf, X, y):
    """The exact J of a fitted model, computed from its outputs."""
    log_p = clf.predict_log_proba(X)
    ce = -log_p[np.arange(len(y)), np.searchsorted(clf.classes_, y)].mean()
    return ce + np.sum(clf.coef_**2) / (2 * clf.C * len(y))


# %% The callback receives the estimator and a dict after every iteration or
# epoch; returning True would stop the fit.
class Recorder:
    def __init__(self):
        self.rows = []

    def __call__(self, estimator, info):
        self.rows.append((info["iteration"], info["objective"], info["elapsed"]))
        return False


def fit_all(X, y):
    curves = {}
    for name, params in SOLVERS.items():
        recorder = Recorder()
        clf = SoftmaxRegressionClassifier(C=C, callback=recorder, **params)
        with warnings.catch_warnings():
            # sgd/adam run a fixed number of epochs on purpose (tol=0).
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        it, obj, sec = map(np.array, zip(*recorder.rows, strict=True))
        assert np.allclose(obj, clf.loss_curve_)  # callback and loss_curve_ agree
        curves[name] = dict(clf=clf, iteration=it, objective=obj, seconds=sec)
    return curves


def stop_early_demo(X, y, threshold):
    """A callback that stops Adam once its objective is below ``threshold``."""

    def good_enough(estimator, info):
        return info["objective"] < threshold

    clf = SoftmaxRegressionClassifier(
        callback=good_enough, **{"C": C, **SOLVERS["adam"]}
    ).fit(X, y)
    return clf.n_iter_, clf.loss_curve_[-1]


# %% Plot J - J* (log scale) against iterations and against seconds.
def plot(curves, j_star, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for name, c in curves.items():
        gap = c["objective"] - j_star
        keep = gap > 0  # the log scale cannot show the last, exact L-BFGS point
        for ax, x in zip(axes, (c["iteration"], c["seconds"]), strict=True):
            ax.plot(
                x[keep],
                gap[keep],
                marker="o",
                ms=3,
                color=COLORS[name],
                label=f"{name} ({c['iteration'][-1]} "
                f"{'iterations' if name == 'lbfgs' else 'epochs'})",
            )
    for ax, xlabel in zip(
        axes,
        ("iteration (L-BFGS) / epoch (SGD, Adam)", "seconds since the start of fit"),
        strict=True,
    ):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("objective J minus optimum J*")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_title("Objective against iterations")
    axes[1].set_title("Objective against wall-clock time")
    fig.suptitle(
        f"Same objective, three solvers (C={C:g}; 10,000 x 40, 5 classes; "
        "sgd/adam: epoch means of minibatch estimates; 1 BLAS thread)",
        fontsize=10,
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    X, y = load_data()
    print(
        f"data: {X.shape[0]} samples, {X.shape[1]} features, "
        f"{len(np.unique(y))} classes; C={C:g}\n"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        reference = SoftmaxRegressionClassifier(C=C, max_iter=1000, tol=1e-10)
        j_star = objective(reference.fit(X, y), X, y)
        curves = fit_all(X, y)
    print(f"optimum J* (L-BFGS, tol=1e-10) = {j_star:.6f}\n")
    print(
        f"{'solver':<6} {'steps':>6} {'seconds':>8} {'last curve J':>13} "
        f"{'exact final J':>14} {'J - J*':>9}"
    )
    for name, c in curves.items():
        exact = objective(c["clf"], X, y)
        print(
            f"{name:<6} {c['iteration'][-1]:>6} {c['seconds'][-1]:>8.3f} "
            f"{c['objective'][-1]:>13.6f} {exact:>14.6f} {exact - j_star:>9.2e}"
        )
    threshold = j_star + 0.01
    epochs, last = stop_early_demo(X, y, threshold)
    print(
        f"\nA callback returning True once the objective is below J* + 0.01 = "
        f"{threshold:.4f} stopped adam after {epochs} of "
        f"{SOLVERS['adam']['max_iter']} epochs (objective {last:.4f})."
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "training_curves.png"
    plot(curves, j_star, path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
