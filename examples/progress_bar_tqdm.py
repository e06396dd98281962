"""A tqdm progress bar for a long fit, driven by ``callback``.

``callback(estimator, info)`` is called after every L-BFGS iteration or
SGD/Adam epoch with ``info["iteration"]``, ``info["objective"]`` and
``info["elapsed"]``; returning True stops the fit. Here it advances a tqdm bar
(``total=max_iter``), shows the objective beside it, and closes the bar when
the fit ends, whether it converged early or ran all ``max_iter``.

tqdm is needed only by this example (``pip install tqdm``); without it the
example says so and exits.

Run ``python examples/progress_bar_tqdm.py [--output-dir DIR]`` (it writes no
file).
"""

# %%
import argparse
import sys

from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressionClassifier

try:
    from tqdm.auto import tqdm
except ImportError:  # an optional dependency of this example only
    tqdm = None


class TqdmProgress:
    """``callback`` that advances a tqdm bar; use one per fit."""

    def __init__(self, total, **tqdm_kwargs):
        self.bar = tqdm(total=total, **tqdm_kwargs)

    def __call__(self, estimator, info):
        self.bar.update(info["iteration"] - self.bar.n)
        self.bar.set_postfix(objective=f"{info['objective']:.5f}", refresh=False)
        return False  # True would stop the fit here

    def close(self):
        self.bar.close()


def fit_with_progress(clf, X, y):
    progress = TqdmProgress(total=clf.max_iter, desc=clf.solver, file=sys.stdout)
    try:
        clf.set_params(callback=progress).fit(X, y)
    finally:
        progress.close()  # also when the fit raises or is interrupted
    return clf.set_params(callback=None)  # the bar does not pickle: drop it


def main():
    X, y = make_classification(
        n_samples=5_000,
        n_features=30,
        n_informative=15,
        n_classes=5,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    for clf in (
        SoftmaxRegressionClassifier(max_iter=200),
        SoftmaxRegressionClassifier(
            solver="adam", learning_rate_init=0.01, max_iter=15, random_state=0
        ),
    ):
        fit_with_progress(clf, X, y)
        print(f"{clf.solver}: {clf.n_iter_} iterations, objective {clf.best_loss_:.5f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default=None, help="unused: writes no file")
    parser.parse_args()
    if tqdm is None:
        print("This example needs tqdm, which is not installed: pip install tqdm")
        sys.exit(0)
    main()
