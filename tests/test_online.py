"""partial_fit: true multinomial online learning."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._loss import LinearSoftmaxLoss


def _data():
    X, y = make_classification(
        n_samples=600,
        n_features=10,
        n_informative=6,
        n_classes=3,
        flip_y=0.1,
        random_state=0,
    )
    return StandardScaler().fit_transform(X), y


def _objective(clf, X, target, C):
    """J at the estimator's parameters, with S = the data's weight."""
    loss = LinearSoftmaxLoss(3, X.shape[1], alpha=1.0 / (C * X.shape[0]))
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    return loss.loss_gradient(coef, X, target)[0]


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", learning_rate_init=0.01),
        dict(solver="adam", learning_rate_init=0.01),
    ],
    ids=["sgd", "adam"],
)
def test_partial_fit_rounds_reach_the_lbfgs_optimum(params, soft):
    # partial_fit's penalty is ||W||^2 / (2 C S) with S the weight of every
    # sample passed so far (see its docstring): N rounds over the same data
    # count it N times, so they minimize fit's J at C * N. Streaming with
    # C / N therefore ends on fit's objective at C, and must come within 1e-2
    # of L-BFGS's optimum of it (measured: 6e-5 to 5e-4).
    X, y = _data()
    rng = np.random.default_rng(1)
    target = (
        0.5 * np.eye(3)[y] + 0.5 * rng.dirichlet(np.ones(3), size=len(y)) if soft else y
    )
    C, rounds = 1.0, 20
    stream = SoftmaxRegressionClassifier(
        C=C / rounds, batch_size=32, random_state=0, **params
    )
    order = np.random.default_rng(0)
    for _ in range(rounds):
        for chunk in np.array_split(order.permutation(len(y)), 5):
            stream.partial_fit(X[chunk], target[chunk], classes=[0, 1, 2])
    ref = SoftmaxRegressionClassifier(C=C, tol=1e-10, max_iter=10_000).fit(X, target)
    J_ref = _objective(ref, X, target, C)
    J = _objective(stream, X, target, C)
    assert J_ref <= J <= J_ref * (1 + 1e-2)
    assert stream.n_iter_ == rounds * 5
    assert len(stream.loss_curve_) == rounds * 5


def test_partial_fit_batches_lacking_classes_or_holding_one_class():
    X, y = _data()
    clf = SoftmaxRegressionClassifier(
        solver="sgd", learning_rate_init=0.05, random_state=0
    )
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])  # class 2 absent
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.coef_.shape == (3, 10)
    before = clf.coef_.copy()
    clf.partial_fit(X[y == 2], y[y == 2])  # one class only
    assert not np.array_equal(clf.coef_, before)
    for label in (0, 1, 2):  # one sample at a time
        clf.partial_fit(X[y == label][:1], [label])
    assert_array_equal(clf.classes_, [0, 1, 2])
    # The batches taught it every class.
    for _ in range(20):
        for label in (0, 1, 2):
            clf.partial_fit(X[y == label], y[y == label])
    assert set(clf.predict(X)) == {0, 1, 2}


def test_partial_fit_binary_and_string_classes():
    X, y = _data()
    names = np.array(["cat", "dog", "cat"])[y]
    clf = SoftmaxRegressionClassifier(
        solver="adam", learning_rate_init=0.05, random_state=0
    )
    clf.partial_fit(X[:10], names[:10], classes=["dog", "cat"])
    clf.partial_fit(X[names == "dog"][:5], names[names == "dog"][:5])
    assert_array_equal(clf.classes_, ["cat", "dog"])
    assert clf.coef_.shape == (1, 10)


def test_partial_fit_with_soft_labels_needs_matching_columns():
    X, y = _data()
    Y = np.eye(3)[y]
    clf = SoftmaxRegressionClassifier(solver="sgd", learning_rate_init=0.05)
    clf.partial_fit(X[:50], Y[:50], classes=[0, 1, 2])
    before = clf.coef_.copy()
    # A soft batch with no mass on class 2: its logit is only pushed down.
    clf.partial_fit(X[50:100], np.tile([0.5, 0.5, 0.0], (50, 1)))
    assert np.all(clf.predict_proba(X[50:100])[:, 2] < 0.5)
    assert not np.array_equal(clf.coef_, before)
    assert_array_equal(clf.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match="fitted with 3 classes"):
        clf.partial_fit(X[:5], Y[:5, :2])


def test_partial_fit_errors():
    X, y = _data()
    clf = SoftmaxRegressionClassifier(solver="sgd")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.partial_fit(X, np.zeros_like(y), classes=[0])
    clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"labels \[7\] that are not in classes"):
        clf.partial_fit(X[:2], [0, 7])
    assert not hasattr(SoftmaxRegressionClassifier(), "partial_fit")  # lbfgs
