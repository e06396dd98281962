"""Pipeline, GridSearchCV and cross_validate with SoftmaxRegressionClassifier.

It drops in wherever a scikit-learn classifier goes. Here a
``Pipeline(StandardScaler, SoftmaxRegressionClassifier)`` on the wine data is
tuned over ``C`` and ``solver`` by a 5-fold grid search (refit on log-loss),
checked on a held-out test split, and then cross-validated beside
``LogisticRegression`` with the same ``C``. At large ``C``, sgd and adam stop
on ``tol`` before they reach the optimum that lbfgs finds; stopping early acts
as extra regularization, which is why their scores differ there.

Run ``python examples/pipeline_gridsearch.py [--output-dir DIR]``. It saves
``gridsearch_heatmap.png``.
"""

# %%
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    StratifiedKFold,
    cross_validate,
    train_test_split,
)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402

CS = [0.01, 0.1, 1.0, 10.0, 100.0]
SOLVERS = ["lbfgs", "sgd", "adam"]
SCORING = {"log_loss": "neg_log_loss", "accuracy": "accuracy"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    return parser.parse_args(argv)


# %% The pipeline and the grid. sgd/adam settings are ignored by lbfgs.
def make_pipeline():
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "clf",
                SoftmaxRegressionClassifier(
                    batch_size=16, learning_rate_init=0.01, max_iter=300, random_state=0
                ),
            ),
        ]
    )


def grid_search(X, y, cv):
    search = GridSearchCV(
        make_pipeline(),
        {"clf__C": CS, "clf__solver": SOLVERS},
        scoring=SCORING,
        refit="log_loss",
        cv=cv,
    )
    return search.fit(X, y)


# %% Mean CV log-loss over the grid, as a heatmap.
def plot_heatmap(search, path):
    res = search.cv_results_
    table = np.full((len(SOLVERS), len(CS)), np.nan)
    for params, score in zip(res["params"], res["mean_test_log_loss"], strict=True):
        table[SOLVERS.index(params["clf__solver"]), CS.index(params["clf__C"])] = -score
    fig, ax = plt.subplots(figsize=(6.8, 3.6), constrained_layout=True)
    image = ax.imshow(table, cmap="viridis_r", aspect="auto")
    for (i, j), value in np.ndenumerate(table):
        ax.text(
            j,
            i,
            f"{value:.3f}",
            ha="center",
            va="center",
            color="w" if value > np.nanmean(table) else "k",
            fontsize=9,
        )
    ax.set_xticks(range(len(CS)), [f"{c:g}" for c in CS])
    ax.set_yticks(range(len(SOLVERS)), SOLVERS)
    ax.set_xlabel("C (inverse regularization strength)")
    ax.set_ylabel("solver")
    best = search.best_params_
    ax.set_title(
        f"Wine, 5-fold CV log-loss (lower is better)\nbest: "
        f"solver={best['clf__solver']}, C={best['clf__C']:g}"
    )
    fig.colorbar(image, ax=ax, label="mean CV log-loss")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    print(
        f"wine: {len(y_train)} train / {len(y_test)} test samples, "
        f"{X.shape[1]} features, {len(np.unique(y))} classes\n"
    )
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    search = grid_search(X_train, y_train, cv)
    res = search.cv_results_
    print(f"{'solver':<6} {'C':>7} {'CV log-loss':>12} {'CV accuracy':>12}")
    for params, ll, acc in zip(
        res["params"], res["mean_test_log_loss"], res["mean_test_accuracy"], strict=True
    ):
        print(
            f"{params['clf__solver']:<6} {params['clf__C']:>7g} {-ll:>12.4f} "
            f"{acc:>12.4f}"
        )
    print(
        "(at large C, sgd/adam stop on tol short of the optimum lbfgs reaches: "
        "early stopping regularizes too)"
    )
    print(f"\nbest parameters: {search.best_params_}")
    print(f"best CV log-loss: {-search.best_score_:.4f}")
    proba = search.predict_proba(X_test)
    print(
        f"test split: accuracy {accuracy_score(y_test, search.predict(X_test)):.4f},"
        f" log-loss {log_loss(y_test, proba):.4f}\n"
    )

    best_C = search.best_params_["clf__C"]
    contenders = {
        "sksoftmax (best)": search.best_estimator_,
        f"LogisticRegression C={best_C:g}": Pipeline(
            [("scale", StandardScaler()), ("clf", LogisticRegression(C=best_C))]
        ),
    }
    print(f"cross_validate on all {len(y)} samples, 5 folds:")
    print(f"{'model':<28} {'log-loss':>9} {'accuracy':>9} {'fit (s)':>8}")
    for name, model in contenders.items():
        scores = cross_validate(model, X, y, cv=cv, scoring=SCORING)
        print(
            f"{name:<28} {-scores['test_log_loss'].mean():>9.4f} "
            f"{scores['test_accuracy'].mean():>9.4f} "
            f"{scores['fit_time'].mean():>8.4f}"
        )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "gridsearch_heatmap.png"
    plot_heatmap(search, path)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
