"""early_stopping, validation_scores_, best_loss_, loss_curve_ and callback."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from sksoftmax import SoftmaxRegressionClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data():
    return make_classification(
        n_samples=600,
        n_features=10,
        n_informative=6,
        n_classes=3,
        weights=[0.6, 0.3, 0.1],
        flip_y=0.1,
        random_state=0,
    )


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_early_stopping_restores_the_best_epoch_and_splits_stratified(solver):
    X, y = _data()
    params = dict(
        solver=solver,
        learning_rate_init=0.05,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
        tol=0,
        random_state=0,
    )
    clf = SoftmaxRegressionClassifier(max_iter=500, **params).fit(X, y)
    scores = clf.validation_scores_
    best = int(np.argmax(scores))  # the first epoch with the best score
    assert len(scores) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.n_iter_ > best + 1  # it trained past the best epoch
    # Reference: the same run cut off right after the best epoch ends with
    # that epoch's parameters (same seed, same split, same minibatches).
    cut = SoftmaxRegressionClassifier(max_iter=best + 1, **params).fit(X, y)
    assert cut.validation_scores_ == scores[: best + 1]
    assert_array_equal(clf.coef_, cut.coef_)
    assert_array_equal(clf.intercept_, cut.intercept_)
    # The validation set is the stratified split drawn from random_state:
    # the restored model scores the best validation score on it ...
    _, val = train_test_split(
        np.arange(len(y)),
        test_size=0.2,
        stratify=y,
        random_state=np.random.RandomState(0),
    )
    assert clf.score(X[val], y[val]) == scores[best]
    # ... and it holds each class in its share of the data.
    assert_allclose(
        np.bincount(y[val]) / len(val), np.bincount(y) / len(y), atol=1 / len(val)
    )
    assert clf.best_loss_ == min(clf.loss_curve_)


def test_without_early_stopping_there_are_no_validation_scores():
    X, y = _data()
    clf = SoftmaxRegressionClassifier(
        solver="sgd", learning_rate_init=0.05, max_iter=5, random_state=0
    ).fit(X, y)
    assert clf.validation_scores_ is None
    assert len(clf.loss_curve_) == 5
    assert clf.best_loss_ == min(clf.loss_curve_)


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(l1_ratio=0.5),
        dict(solver="sgd", learning_rate_init=0.05),
        dict(solver="adam", learning_rate_init=0.05),
    ],
    ids=["lbfgs", "lbfgs-l1", "sgd", "adam"],
)
def test_callback_sees_each_iteration_and_stops_training(params):
    X, y = _data()
    seen = []

    def stop_at_three(estimator, info):
        seen.append((estimator, dict(info)))
        return info["iteration"] == 3

    clf = SoftmaxRegressionClassifier(
        max_iter=100, callback=stop_at_three, **params
    ).fit(X, y)
    assert clf.n_iter_ == 3
    assert [info["iteration"] for _, info in seen] == [1, 2, 3]
    assert all(est is clf for est, _ in seen)
    assert [info["objective"] for _, info in seen] == clf.loss_curve_
    elapsed = [info["elapsed"] for _, info in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    assert hasattr(clf, "coef_")  # a stopped fit is still a fitted model


def test_lbfgs_loss_curve_decreases_to_best_loss():
    X, y = _data()
    clf = SoftmaxRegressionClassifier(tol=1e-8, max_iter=500).fit(X, y)
    curve = np.array(clf.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12)
    assert clf.best_loss_ == curve[-1]
