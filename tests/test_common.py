"""scikit-learn's estimator checks over every solver, at default parameters."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._compat import skip_array_api_estimator_check

# No expected failures and no tuned step sizes: the stochastic solvers run
# with learning_rate_init="auto", preconditioning and iterate averaging, and
# even the sample-weight equivalence checks pass because 100 epochs on the
# checks' small data bring both fits to the shared optimum within the checks'
# tolerance.
ESTIMATORS = [
    SoftmaxRegressionClassifier(),
    SoftmaxRegressionClassifier(solver="sgd"),
    SoftmaxRegressionClassifier(solver="adam"),
    SoftmaxRegressionClassifier(l1_ratio=0.5),
    SoftmaxRegressionClassifier(solver="sgd", l1_ratio=0.5),
    SoftmaxRegressionClassifier(solver="adam", l1_ratio=0.5),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    name = getattr(check, "func", check).__name__
    namespace = getattr(check, "keywords", {}).get("array_namespace")
    if name.startswith("check_array_api") and (
        reason := skip_array_api_estimator_check(namespace)
    ):
        pytest.skip(reason)
    check(estimator)
