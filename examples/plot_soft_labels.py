"""Soft labels: training on annotator-vote distributions against majority-vote
hard labels.

Each item is labelled "cat", "chicken" or "dog" by five annotators. The items
are genuinely ambiguous: every annotator draws a label from the item's true
class probabilities p(y | x), so they disagree. One can keep the majority
vote (a hard label, ties broken at random) or pass the share of votes as a
probability row, ``y`` of shape (n_samples, 3), which
``SoftmaxRegressionClassifier.fit`` accepts as it is. The vote shares are an
unbiased estimate of p(y | x); the majority vote throws that uncertainty away
and makes the model overconfident. Both are judged by the held-out log-loss
of a fresh annotation: the cross-entropy between the true p(y | x) and the
predicted probabilities (its floor is the entropy of p, reached by the true
model).

Run ``python examples/plot_soft_labels.py [--output-dir DIR]``. It saves
``soft_labels.png``.
"""

# %%
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402

CLASSES = np.array(["cat", "chicken", "dog"])
N_FEATURES = 8
N_ANNOTATORS = 5
SIZES = [50, 100, 200, 400, 800, 1600]
N_REPEATS = 5
C = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    return parser.parse_args(argv)


# %% The world: a true softmax model, and annotators who sample from it.
def true_model(rng):
    W = rng.normal(scale=0.6, size=(len(CLASSES), N_FEATURES))
    b = np.array([0.3, -0.3, 0.0])
    return W, b


def true_proba(X, W, b):
    logits = X @ W.T + b
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def annotate(P, rng):
    """Votes (n, n_annotators): each annotator draws a class from p(y | x)."""
    u = rng.random((P.shape[0], N_ANNOTATORS, 1))
    return (u > np.cumsum(P, axis=1)[:, None, :]).sum(axis=2)


def soft_and_hard(votes, rng):
    counts = np.stack([(votes == k).sum(axis=1) for k in range(len(CLASSES))], 1)
    shares = counts / N_ANNOTATORS
    # Majority vote, ties broken at random by a tiny jitter.
    hard = np.argmax(counts + rng.random(counts.shape) * 0.1, axis=1)
    return shares, CLASSES[hard]


def cross_entropy(P_true, P_pred):
    """Expected log-loss of a fresh annotation: -sum_k p_k log q_k, averaged."""
    return float(-np.mean(np.sum(P_true * np.log(P_pred), axis=1)))


# %% Fit both ways for several training sizes; score on held-out items.
def experiment(rng):
    W, b = true_model(rng)
    X_test = rng.normal(size=(5000, N_FEATURES))
    P_test = true_proba(X_test, W, b)
    floor = cross_entropy(P_test, P_test)
    results = {
        "soft": np.zeros((len(SIZES), N_REPEATS)),
        "hard": np.zeros((len(SIZES), N_REPEATS)),
    }
    example = None
    for i, n in enumerate(SIZES):
        for r in range(N_REPEATS):
            X = rng.normal(size=(n, N_FEATURES))
            shares, hard = soft_and_hard(annotate(true_proba(X, W, b), rng), rng)
            soft_clf = SoftmaxRegressionClassifier(C=C).fit(X, shares)
            hard_clf = SoftmaxRegressionClassifier(C=C).fit(X, hard)
            # Soft labels have no names: columns follow the order of CLASSES.
            q_soft = soft_clf.predict_proba(X_test)
            q_hard = hard_clf.predict_proba(X_test)
            results["soft"][i, r] = cross_entropy(P_test, q_soft)
            results["hard"][i, r] = cross_entropy(P_test, q_hard)
            if n == 400 and r == 0:
                example = (P_test, q_soft, q_hard)
    # One fresh annotation per test item, scored by sklearn's log_loss as a check.
    P_test, q_soft, q_hard = example
    fresh = annotate(P_test, rng)[:, 0]
    fresh_ll = {
        "soft": log_loss(fresh, q_soft, labels=[0, 1, 2]),
        "hard": log_loss(fresh, q_hard, labels=[0, 1, 2]),
    }
    return results, floor, example, fresh_ll


def plot(results, floor, example, path):
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.5), constrained_layout=True)
    ax = axes[0]
    for name, color, label in (
        ("soft", "tab:blue", "vote shares (soft labels)"),
        ("hard", "tab:red", "majority vote (hard labels)"),
    ):
        mean, sd = results[name].mean(axis=1), results[name].std(axis=1)
        ax.errorbar(
            SIZES, mean, yerr=sd, marker="o", capsize=3, color=color, label=label
        )
    ax.axhline(floor, color="k", ls="--", lw=1, label="true model (floor)")
    ax.set_xscale("log")
    ax.set_xticks(SIZES, [str(s) for s in SIZES])
    ax.set_xlabel(f"training items ({N_ANNOTATORS} annotations each)")
    ax.set_ylabel("held-out log-loss of a fresh annotation")
    ax.set_title(f"Held-out log-loss (mean ± sd of {N_REPEATS} repeats, C={C:g})")
    ax.legend()
    ax.grid(True, alpha=0.3)

    P_test, q_soft, q_hard = example
    ax = axes[1]
    show = slice(0, 600)
    ax.scatter(
        P_test[show].ravel(),
        q_hard[show].ravel(),
        s=5,
        alpha=0.4,
        color="tab:red",
        label="majority vote (hard labels)",
    )
    ax.scatter(
        P_test[show].ravel(),
        q_soft[show].ravel(),
        s=5,
        alpha=0.4,
        color="tab:blue",
        label="vote shares (soft labels)",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="predicted = true")
    ax.set_xlabel("true class probability p(y | x)")
    ax.set_ylabel("predicted class probability")
    ax.set_title("400 training items: predicted against true probabilities")
    ax.legend(loc="upper left", markerscale=3)
    fig.suptitle(
        "Training on annotator votes: keep the distribution, not just the majority"
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    results, floor, example, fresh_ll = experiment(rng)
    print(
        f"{len(CLASSES)} classes, {N_FEATURES} features, {N_ANNOTATORS} annotators "
        f"per item; held-out log-loss, mean of {N_REPEATS} repeats "
        f"(true model: {floor:.4f})\n"
    )
    print(f"{'items':>6} {'soft labels':>12} {'majority vote':>14}")
    for i, n in enumerate(SIZES):
        print(
            f"{n:>6} {results['soft'][i].mean():>12.4f} "
            f"{results['hard'][i].mean():>14.4f}"
        )
    print(
        f"\n400 items, log-loss on one fresh annotation per test item "
        f"(sklearn.metrics.log_loss): soft {fresh_ll['soft']:.4f}, "
        f"majority {fresh_ll['hard']:.4f}"
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "soft_labels.png"
    plot(results, floor, example, path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
