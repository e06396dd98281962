"""Quickstart: softmax regression on scikit-learn's digits, beside LogisticRegression.

Run ``python examples/quickstart.py [--output-dir DIR]``. It prints a table of
accuracy, log-loss and fit time and saves a confusion matrix as a PNG.
"""

# %%
import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressionClassifier


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent / "output",
        help="folder for the figures (default: examples/output)",
    )
    return parser.parse_args(argv)


# %% Data: 8x8 digit images, 10 classes, standardized.
def load_data():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


# %% Fit each model and measure it.
MODELS = {
    "sksoftmax lbfgs": lambda: SoftmaxRegressionClassifier(C=1.0, max_iter=500),
    "sksoftmax sgd": lambda: SoftmaxRegressionClassifier(
        solver="sgd",
        learning_rate_init=0.05,
        tol=1e-3,
        n_iter_no_change=5,
        max_iter=200,
        random_state=0,
    ),
    "sksoftmax adam": lambda: SoftmaxRegressionClassifier(
        solver="adam",
        learning_rate_init=0.01,
        tol=1e-3,
        n_iter_no_change=5,
        max_iter=200,
        random_state=0,
    ),
    "LogisticRegression lbfgs": lambda: LogisticRegression(C=1.0, max_iter=500),
}


def evaluate(make, X_train, X_test, y_train, y_test):
    times = []
    for _ in range(3):
        model = make()
        start = time.perf_counter()
        model.fit(X_train, y_train)
        times.append(time.perf_counter() - start)
    proba = model.predict_proba(X_test)
    return model, {
        "accuracy": accuracy_score(y_test, model.predict(X_test)),
        "log_loss": log_loss(y_test, proba, labels=model.classes_),
        "fit_s": float(np.median(times)),
    }


def save_confusion_matrix(model, X_test, y_test, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(6, 5.5))
    ConfusionMatrixDisplay.from_estimator(model, X_test, y_test, ax=ax, colorbar=False)
    ax.set_title("Digits: SoftmaxRegressionClassifier (lbfgs), test set")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    X_train, X_test, y_train, y_test = load_data()
    print(
        f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test samples, "
        f"{X_train.shape[1]} features, {len(np.unique(y_train))} classes\n"
    )
    print(f"{'model':<26} {'accuracy':>9} {'log-loss':>9} {'fit (s)':>9}")
    fitted = {}
    for name, make in MODELS.items():
        model, m = evaluate(make, X_train, X_test, y_train, y_test)
        fitted[name] = model
        print(
            f"{name:<26} {m['accuracy']:>9.4f} {m['log_loss']:>9.4f} {m['fit_s']:>9.4f}"
        )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "quickstart_confusion_matrix.png"
    save_confusion_matrix(fitted["sksoftmax lbfgs"], X_test, y_test, path)
    print(f"\nconfusion matrix saved to {path}")


if __name__ == "__main__":
    main()
