"""sksoftmax: scikit-learn compatible softmax (multinomial logistic) regression.

Trained by scipy's L-BFGS or by minibatch SGD/Adam, with array work written
against the Array API so it runs on NumPy or, unchanged, on other namespaces.
"""

from ._compat import check_dependency_versions

# Before anything else: an unsupported scikit-learn, NumPy or SciPy fails here,
# with the versions needed, not later with an obscure error inside a fit.
check_dependency_versions()

from . import functional, metrics  # noqa: E402
from ._calibration import TemperatureBoundWarning  # noqa: E402
from ._classifier import SoftmaxRegressionClassifier  # noqa: E402
from ._cv import SoftmaxRegressionCV  # noqa: E402
from ._export import to_numpy_estimator  # noqa: E402

__all__ = [
    "SoftmaxRegressionCV",
    "SoftmaxRegressionClassifier",
    "TemperatureBoundWarning",
    "functional",
    "metrics",
    "to_numpy_estimator",
]
__version__ = "0.1.0.dev0"
