"""sksoftmax: scikit-learn compatible softmax (multinomial logistic) regression.

Trained by scipy's L-BFGS or by minibatch SGD/Adam, with array work written
against the Array API so it runs on NumPy or, unchanged, on other namespaces.
"""

from . import functional, metrics
from ._calibration import TemperatureBoundWarning
from ._classifier import SoftmaxRegressionClassifier
from ._cv import SoftmaxRegressionCV
from ._export import to_numpy_estimator

__all__ = [
    "SoftmaxRegressionCV",
    "SoftmaxRegressionClassifier",
    "TemperatureBoundWarning",
    "functional",
    "metrics",
    "to_numpy_estimator",
]
__version__ = "0.1.0.dev0"
