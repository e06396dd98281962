"""Decision regions and class probabilities on a 2-D "cat, chicken, dog" toy.

The seed chapter classifies images into "cat", "chicken" and "dog". Here each
animal is a Gaussian blob of two made-up features, so the whole model can be
drawn: the regions where each class wins, the probability of each class, and
how the inverse regularization strength ``C`` shrinks them toward the class
frequencies.

Run ``python examples/plot_decision_regions.py [--output-dir DIR]``. It saves
``decision_regions.png`` and ``decision_regions_by_C.png``.
"""

# %%
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from sksoftmax import SoftmaxRegressionClassifier  # noqa: E402

CLASSES = np.array(["cat", "chicken", "dog"])
COLORS = ["tab:orange", "tab:green", "tab:blue"]
CMAPS = ["Oranges", "Greens", "Blues"]
FEATURES = ("ear pointiness (arbitrary units)", "body weight (arbitrary units)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    return parser.parse_args(argv)


# %% Data: three overlapping blobs, more dogs than chickens.
def make_animals(rng):
    centers = {"cat": (1.0, -0.6), "chicken": (-1.2, -1.0), "dog": (0.0, 1.0)}
    sizes = {"cat": 90, "chicken": 40, "dog": 120}
    X = np.vstack([rng.normal(centers[c], 0.7, size=(sizes[c], 2)) for c in CLASSES])
    y = np.repeat(CLASSES, [sizes[c] for c in CLASSES])
    return X, y


def grid_for(X, steps=200):
    lo, hi = X.min(axis=0) - 0.8, X.max(axis=0) + 0.8
    xx, yy = np.meshgrid(
        np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps)
    )
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def scatter(ax, X, y, size=14):
    for name, color in zip(CLASSES, COLORS, strict=True):
        ax.scatter(
            *X[y == name].T, s=size, c=color, edgecolors="k", linewidths=0.4, label=name
        )


def draw_regions(ax, xx, yy, proba, alpha=0.35):
    winner = proba.argmax(axis=1).reshape(xx.shape)
    ax.contourf(
        xx,
        yy,
        winner,
        levels=[-0.5, 0.5, 1.5, 2.5],
        cmap=ListedColormap(COLORS),
        alpha=alpha,
    )


def label_axes(ax):
    ax.set_xlabel(FEATURES[0])
    ax.set_ylabel(FEATURES[1])


# %% One model (C=1): regions, then each class probability as contours.
def plot_model(clf, X, y, path):
    xx, yy, grid = grid_for(X)
    proba = clf.predict_proba(grid)
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.3), constrained_layout=True)
    draw_regions(axes[0], xx, yy, proba)
    scatter(axes[0], X, y)
    axes[0].set_title(f"Decision regions (C={clf.C:g})")
    axes[0].legend(title="class", loc="lower right", fontsize=8)
    for k, ax in enumerate(axes[1:]):
        p = proba[:, k].reshape(xx.shape)
        filled = ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap=CMAPS[k])
        lines = ax.contour(
            xx, yy, p, levels=[0.25, 0.5, 0.75], colors="k", linewidths=0.8
        )
        ax.clabel(lines, fmt="%.2f", fontsize=8)
        scatter(ax, X, y, size=6)
        ax.set_title(f"P({CLASSES[k]} | x)")
        fig.colorbar(filled, ax=ax, label=f"probability of {CLASSES[k]}")
    for ax in axes:
        label_axes(ax)
    axes[1].legend(title="class", loc="lower right", fontsize=7)
    fig.suptitle("Softmax regression on the cat / chicken / dog toy")
    fig.savefig(path, dpi=90)
    plt.close(fig)


# %% How C changes the model: a row of panels, one per C.
def plot_by_C(models, X, y, path):
    xx, yy, grid = grid_for(X)
    fig, axes = plt.subplots(
        1,
        len(models),
        figsize=(4.2 * len(models), 4.4),
        constrained_layout=True,
        sharey=True,
    )
    for ax, clf in zip(axes, models, strict=True):
        proba = clf.predict_proba(grid)
        draw_regions(ax, xx, yy, proba, alpha=0.25)
        top = proba.max(axis=1).reshape(xx.shape)
        lines = ax.contour(
            xx, yy, top, levels=[0.4, 0.6, 0.8, 0.95], colors="k", linewidths=0.8
        )
        ax.clabel(lines, fmt="%.2f", fontsize=8)
        scatter(ax, X, y, size=8)
        ax.set_title(f"C = {clf.C:g}   (‖W‖ = {np.linalg.norm(clf.coef_):.2f})")
        label_axes(ax)
    handles = [
        Patch(color=c, alpha=0.5, label=n) for n, c in zip(CLASSES, COLORS, strict=True)
    ]
    handles.append(
        plt.Line2D([], [], color="k", lw=0.8, label="contours: max class probability")
    )
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    fig.suptitle(
        "Smaller C = stronger penalty: flatter probabilities, "
        "regions drift toward the most frequent class (dog)"
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    X, y = make_animals(rng)
    counts = {str(c): int((y == c).sum()) for c in CLASSES}
    print(f"cat/chicken/dog toy: {len(y)} samples, 2 features, counts {counts}\n")

    clf = SoftmaxRegressionClassifier(C=1.0).fit(X, y)
    print("C=1 model: coef_ (one row per class) and intercept_")
    for name, w, b in zip(clf.classes_, clf.coef_, clf.intercept_, strict=True):
        print(f"  {name:<8} w = [{w[0]:+.3f}, {w[1]:+.3f}]   b = {b:+.3f}")

    Cs = [0.001, 0.01, 0.1, 10.0]
    models = [SoftmaxRegressionClassifier(C=C).fit(X, y) for C in Cs]
    print(
        f"\n{'C':>7} {'accuracy':>9} {'mean max P':>11} {'||W||':>7}  "
        "share of the plane per class (cat/chicken/dog)"
    )
    _, _, grid = grid_for(X, steps=100)
    for m in models:
        top = m.predict_proba(X).max(axis=1).mean()
        share = np.bincount(m.predict_proba(grid).argmax(axis=1), minlength=3)
        share = "/".join(f"{s / share.sum():.2f}" for s in share)
        print(
            f"{m.C:>7g} {m.score(X, y):>9.3f} {top:>11.3f} "
            f"{np.linalg.norm(m.coef_):>7.3f}  {share}"
        )

    args.output_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        args.output_dir / "decision_regions.png",
        args.output_dir / "decision_regions_by_C.png",
    ]
    plot_model(clf, X, y, paths[0])
    plot_by_C(models, X, y, paths[1])
    for p in paths:
        print(f"saved {p}")


if __name__ == "__main__":
    main()
