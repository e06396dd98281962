"""Save and load a fitted model with skops, trusting only the types it needs.

``pickle.load`` runs whatever code a file names; skops' format refuses to
build any type that is not trusted. A Pipeline of a StandardScaler and a
SoftmaxRegressionClassifier (or a SoftmaxRegressionCV) holds NumPy arrays,
scikit-learn types that skops trusts by default, and the sksoftmax classes,
which the loader must trust by name::

    sksoftmax._classifier.SoftmaxRegressionClassifier
    sksoftmax._cv.SoftmaxRegressionCV   (only for SoftmaxRegressionCV)

The names are built from the classes below, so they follow the package. A
model fitted on CuPy or torch arrays must first be copied to NumPy with
``sksoftmax.to_numpy_estimator``. The example checks that the file holds no
other untrusted type, loads it, and compares the predictions.

Run ``python examples/save_load_skops.py [--output-dir DIR]``. It saves
``model.skops`` there.
"""

# %%
import argparse
from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressionClassifier, SoftmaxRegressionCV

# The types to trust when loading a sksoftmax model.
TRUSTED = [
    f"{cls.__module__}.{cls.__qualname__}"
    for cls in (SoftmaxRegressionClassifier, SoftmaxRegressionCV)
]


def main(output_dir):
    # %% Fit a pipeline and save it.
    X, y = load_wine(return_X_y=True)
    for final in (SoftmaxRegressionClassifier(C=1.0), SoftmaxRegressionCV(Cs=4, cv=3)):
        model = make_pipeline(StandardScaler(), final).fit(X, y)
        path = Path(output_dir) / "model.skops"
        sio.dump(model, path)

        # %% Before loading: which types would the file build that skops
        # does not trust by default? Only sksoftmax's classes.
        untrusted = sio.get_untrusted_types(file=path)
        print(f"{type(final).__name__}: untrusted types in the file: {untrusted}")
        unexpected = sorted(set(untrusted) - set(TRUSTED))
        if unexpected:
            raise SystemExit(f"unexpected types in {path}: {unexpected}")

        # %% Load, trusting exactly those types, and compare.
        loaded = sio.load(path, trusted=TRUSTED)
        same = np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
        print(f"  loaded from {path.name}; same probabilities: {same}")
        if not same:
            raise SystemExit("the loaded model predicts differently")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default="examples/output")
    args = parser.parse_args()
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    main(args.output_dir)
