"""Reliability diagram and expected calibration error (ECE) before and after
``calibrate_temperature``.

A nearly unregularized model (large C) fitted on few, noisy samples is
overconfident: when it says 95 %, it is right far less often. Temperature
scaling fits one number T on a held-out calibration split and divides the
logits by it in ``predict_proba``: predictions (the argmax) do not change, the
probabilities soften. The ECE is computed here, on a separate test split, with
equal-width bins on the largest predicted probability (the confidence):

    ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|

Run ``python examples/plot_calibration.py [--output-dir DIR]``. It saves
``calibration_reliability.png``.
"""

# %%
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402

N_BINS = 10
MIN_SHOWN = 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    return parser.parse_args(argv)


# %% Data: 4 classes, 15 % of the labels flipped at random; three splits.
def load_data():
    X, y = make_classification(
        n_samples=4000,
        n_features=50,
        n_informative=10,
        n_redundant=0,
        n_classes=4,
        n_clusters_per_class=1,
        flip_y=0.15,
        random_state=0,
    )
    X_fit, X_rest, y_fit, y_rest = train_test_split(
        X, y, train_size=300, stratify=y, random_state=0
    )
    X_cal, X_test, y_cal, y_test = train_test_split(
        X_rest, y_rest, train_size=1000, stratify=y_rest, random_state=0
    )
    return X_fit, X_cal, X_test, y_fit, y_cal, y_test


# %% Reliability: per confidence bin, the mean confidence and the accuracy.
def reliability(proba, y, classes, n_bins=N_BINS):
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin b holds confidences in (edges[b], edges[b + 1]]; the first includes 0.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    filled = count > 0
    conf = np.bincount(which, weights=confidence, minlength=n_bins)
    acc = np.bincount(which, weights=correct, minlength=n_bins)
    conf[filled] /= count[filled]
    acc[filled] /= count[filled]
    ece = np.sum(count[filled] / len(y) * np.abs(acc[filled] - conf[filled]))
    return dict(edges=edges, count=count, confidence=conf, accuracy=acc, ece=ece)


def summary(name, proba, y, classes):
    rel = reliability(proba, y, classes)
    acc = accuracy_score(y, classes[proba.argmax(axis=1)])
    ll = log_loss(y, proba, labels=classes)
    print(
        f"{name:<28} {acc:>9.3f} {ll:>9.3f} {rel['ece']:>7.3f} "
        f"{proba.max(axis=1).mean():>16.3f}"
    )
    return rel, ll


# %% Plot: bars of accuracy per bin against the diagonal, with bin counts below.
def plot(panels, path):
    fig, axes = plt.subplots(
        2,
        2,
        figsize=(10, 6.6),
        sharex=True,
        height_ratios=[3, 1],
        constrained_layout=True,
    )
    for col, (title, rel, ll) in enumerate(panels):
        ax, hist = axes[0, col], axes[1, col]
        edges, width = rel["edges"], np.diff(rel["edges"])
        filled = rel["count"] >= MIN_SHOWN  # a handful of samples is noise
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.bar(
            edges[:-1][filled],
            rel["accuracy"][filled],
            width=width[filled],
            align="edge",
            color="tab:blue",
            edgecolor="k",
            alpha=0.8,
            label=f"accuracy in the bin (bins of >= {MIN_SHOWN} samples)",
        )
        centers = (edges[:-1] + width / 2)[filled]
        ax.vlines(
            centers,
            rel["accuracy"][filled],
            rel["confidence"][filled],
            color="tab:red",
            lw=2,
        )
        ax.plot(
            centers,
            rel["confidence"][filled],
            "D",
            color="tab:red",
            ms=5,
            label="mean confidence in the bin (red line: the gap)",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}\nECE = {rel['ece']:.3f}, log-loss = {ll:.3f}")
        ax.legend(loc="upper left", fontsize=8)
        hist.bar(
            edges[:-1],
            rel["count"],
            width=width,
            align="edge",
            color="0.6",
            edgecolor="k",
        )
        hist.set_xlabel("confidence (largest predicted probability)")
        hist.set_ylabel("test samples")
    fig.suptitle(
        "Test split: a model fitted with C=1e4 on 300 noisy samples, "
        "before and after temperature scaling"
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    X_fit, X_cal, X_test, y_fit, y_cal, y_test = load_data()
    print(
        f"splits: fit {len(y_fit)}, calibration {len(y_cal)}, test {len(y_test)}; "
        f"{X_fit.shape[1]} features, 4 classes, 15 % of labels flipped\n"
    )
    clf = SoftmaxRegressionClassifier(C=1e4, max_iter=1000).fit(X_fit, y_fit)
    proba_before = clf.predict_proba(X_test)
    pred_before = clf.predict(X_test)

    clf.calibrate_temperature(X_cal, y_cal)  # fits temperature_ on held-out data
    proba_after = clf.predict_proba(X_test)
    assert np.array_equal(clf.predict(X_test), pred_before)  # argmax unchanged

    print(f"temperature_ fitted on the calibration split: {clf.temperature_:.3f}\n")
    print(
        f"{'test split':<28} {'accuracy':>9} {'log-loss':>9} {'ECE':>7} "
        f"{'mean confidence':>16}"
    )
    before = summary("before (temperature 1)", proba_before, y_test, clf.classes_)
    after = summary(
        f"after (temperature {clf.temperature_:.2f})", proba_after, y_test, clf.classes_
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "calibration_reliability.png"
    plot(
        [
            ("Before: temperature 1", *before),
            (f"After calibrate_temperature: T = {clf.temperature_:.2f}", *after),
        ],
        path,
    )
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
