"""scikit-learn's estimator checks over every solver."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sksoftmax import SoftmaxRegressionClassifier

# No expected failures: even the sample-weight equivalence checks pass for the
# stochastic solvers, because 100 epochs on the checks' small, well-conditioned
# data bring both fits to the shared optimum within the checks' tolerance.
ESTIMATORS = [
    SoftmaxRegressionClassifier(),
    SoftmaxRegressionClassifier(solver="sgd", learning_rate_init=0.05, random_state=0),
    SoftmaxRegressionClassifier(solver="adam", learning_rate_init=0.05, random_state=0),
    SoftmaxRegressionClassifier(l1_ratio=0.5),
    SoftmaxRegressionClassifier(
        solver="sgd", l1_ratio=0.5, learning_rate_init=0.05, random_state=0
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
