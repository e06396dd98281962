"""scikit-learn's estimator checks over every solver, at default parameters."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sksoftmax import SoftmaxRegressionClassifier

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
    check(estimator)
