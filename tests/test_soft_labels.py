"""Probability (soft) labels and label smoothing against independent references."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax
from sklearn.datasets import make_classification
from sklearn.exceptions import DataConversionWarning
from sklearn.preprocessing import StandardScaler

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._loss import LinearSoftmaxLoss, softmax_cross_entropy

TIGHT = dict(tol=1e-10, max_iter=10_000)


def _data(n_classes, n_samples=300, seed=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        flip_y=0.1,
        random_state=seed,
    )
    return StandardScaler().fit_transform(X), y


def _soft(y, n_classes, seed=0):
    """Distributions that lean towards the label: mixed with Dirichlet noise."""
    rng = np.random.default_rng(seed)
    noise = rng.dirichlet(np.ones(n_classes), size=y.shape[0])
    return 0.6 * np.eye(n_classes)[y] + 0.4 * noise


@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multiclass"])
@pytest.mark.parametrize(
    "params",
    [
        dict(TIGHT),
        dict(solver="sgd", learning_rate_init=0.05, max_iter=20, random_state=0),
        dict(solver="adam", learning_rate_init=0.01, max_iter=20, random_state=0),
    ],
    ids=["lbfgs", "sgd", "adam"],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_hot_soft_labels_give_the_hard_label_model(n_classes, params):
    X, y = _data(n_classes)
    hard = SoftmaxRegressionClassifier(**params).fit(X, y)
    soft = SoftmaxRegressionClassifier(**params).fit(X, np.eye(n_classes)[y])
    assert_array_equal(soft.classes_, np.arange(n_classes))
    assert soft.coef_.shape == hard.coef_.shape
    assert_allclose(soft.coef_, hard.coef_, rtol=1e-10, atol=1e-10)
    assert_allclose(soft.intercept_, hard.intercept_, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 4], ids=["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_soft_labels_equal_duplicated_samples_weighted_by_Y(n_classes, weighted):
    # sum_k Y_ik CE(onehot_k, p_i) = CE(Y_i, p_i), and the weights still sum
    # to S, so both problems have the same objective and optimum.
    X, y = _data(n_classes)
    Y = _soft(y, n_classes)
    sw = (
        np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
        if weighted
        else np.ones(len(y))
    )
    X_dup = np.repeat(X, n_classes, axis=0)
    y_dup = np.tile(np.arange(n_classes), X.shape[0])
    w_dup = (Y * sw[:, None]).ravel()
    direct = SoftmaxRegressionClassifier(C=0.5, **TIGHT).fit(X, Y, sample_weight=sw)
    dup = SoftmaxRegressionClassifier(C=0.5, **TIGHT).fit(
        X_dup, y_dup, sample_weight=w_dup
    )
    assert_allclose(direct.coef_, dup.coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(direct.intercept_, dup.intercept_, rtol=1e-6, atol=1e-8)


def test_soft_label_rows_are_validated():
    X, y = _data(3, n_samples=20)
    Y = np.eye(3)[y]
    clf = SoftmaxRegressionClassifier()
    bad = Y.copy()
    bad[0] = [1.2, -0.2, 0.0]
    with pytest.raises(ValueError, match="non-negative and summing to 1"):
        clf.fit(X, bad)
    bad = Y * 0.9
    with pytest.raises(ValueError, match="probability distribution"):
        clf.fit(X, bad)
    multilabel = Y.copy()
    multilabel[:, 0] = 1
    with pytest.raises(ValueError, match="multi-label targets are not supported"):
        clf.fit(X, multilabel)
    # Within float32 rounding is fine.
    clf.fit(X, (Y * (1 + 1e-7)).astype(np.float32))


def test_column_vector_y_warns_and_fits_as_labels():
    X, y = _data(3, n_samples=60)
    with pytest.warns(DataConversionWarning):
        col = SoftmaxRegressionClassifier().fit(X, y[:, None])
    flat = SoftmaxRegressionClassifier().fit(X, y)
    assert_allclose(col.coef_, flat.coef_)


# ---------------------------------------------------------- label smoothing


def _smoothed(y, n_classes, eps):
    return (1 - eps) * np.eye(n_classes)[y] + eps / n_classes


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_label_smoothing_loss_matches_the_formula(n_classes, soft, rng):
    # J = mean_i [-sum_k T_ik log softmax(O_i)_k] + alpha/2 ||W||^2,
    # T = (1 - eps) * target + eps / K, and dJ/dO = (softmax(O) - T) / n.
    eps, n, d = 0.2, 40, 3
    X = rng.standard_normal((n, d))
    y = rng.integers(0, n_classes, size=n)
    target = _soft(y, n_classes) if soft else y
    T = (1 - eps) * (target if soft else np.eye(n_classes)[y]) + eps / n_classes
    loss = LinearSoftmaxLoss(n_classes, d, alpha=0.3, label_smoothing=eps)
    coef = rng.standard_normal(loss.n_params)
    W, b = loss.unpack(coef)
    logits = X @ W.T + b
    if n_classes == 2:
        logits = np.column_stack([np.zeros(n), logits])
    expected = -np.mean(np.sum(T * sp_log_softmax(logits, axis=1), axis=1))
    expected += 0.15 * np.sum(W**2)
    G = (sp_softmax(logits, axis=1) - T) / n
    if n_classes == 2:
        G = G[:, 1:]
    expected_grad = np.concatenate([(G.T @ X + 0.3 * W).ravel(), G.sum(axis=0)])
    value, grad = loss.loss_gradient(coef, X, target)
    assert_allclose(value, expected, rtol=1e-12)
    assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_label_smoothing_matches_torch_cross_entropy(soft, rng):
    torch = pytest.importorskip("torch")
    eps, n, K = 0.15, 50, 4
    logits = rng.standard_normal((n, K)) * 3
    y = rng.integers(0, K, size=n)
    target = _soft(y, K) if soft else y
    ours, _ = softmax_cross_entropy(logits.copy(), target, label_smoothing=eps)
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits),
        torch.from_numpy(target),
        label_smoothing=eps,
        reduction="sum",
    )
    assert_allclose(float(ours), float(ref), rtol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multiclass"])
def test_label_smoothing_fit_equals_fit_on_smoothed_targets(n_classes):
    X, y = _data(n_classes)
    eps = 0.1
    smooth = SoftmaxRegressionClassifier(label_smoothing=eps, **TIGHT).fit(X, y)
    ref = SoftmaxRegressionClassifier(**TIGHT).fit(X, _smoothed(y, n_classes, eps))
    assert_allclose(smooth.coef_, ref.coef_, rtol=1e-6, atol=1e-9)
    assert_allclose(smooth.intercept_, ref.intercept_, rtol=1e-6, atol=1e-9)
