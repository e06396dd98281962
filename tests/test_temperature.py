"""Temperature scaling against scikit-learn's, and the calibration metric."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import log_softmax as sp_log_softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._calibration import fit_temperature
from sksoftmax._compat import skip_temperature_calibration
from sksoftmax.metrics import expected_calibration_error


def _overconfident_split(n_classes, seed=0):
    """Noisy labels, few training samples and almost no penalty: overconfident."""
    X, y = make_classification(
        n_samples=3000,
        n_features=40,
        n_informative=8,
        n_classes=n_classes,
        flip_y=0.15,
        random_state=seed,
    )
    X_fit, X_rest, y_fit, y_rest = train_test_split(
        X, y, train_size=600, random_state=seed, stratify=y
    )
    X_cal, X_test, y_cal, y_test = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest
    )
    clf = SoftmaxRegressionClassifier(C=1e4, max_iter=2000).fit(X_fit, y_fit)
    return clf, X_cal, y_cal, X_test, y_test


@pytest.mark.skipif(
    skip_temperature_calibration() is not None,
    reason=str(skip_temperature_calibration()),
)
@pytest.mark.parametrize("n_classes", [2, 4], ids=["binary", "multiclass"])
def test_temperature_matches_calibrated_classifier_cv(n_classes):
    clf, X_cal, y_cal, X_test, _ = _overconfident_split(n_classes)
    ref = CalibratedClassifierCV(FrozenEstimator(clf), method="temperature")
    ref.fit(X_cal, y_cal)
    beta = float(ref.calibrated_classifiers_[0].calibrators[0].beta_)
    clf.calibrate_temperature(X_cal, y_cal)
    # scikit-learn fits beta = 1 / T on the decision_function; for two classes
    # it scales the logits (-o, o), so its beta is 1 / (2 T).
    T_ref = 1 / beta if n_classes > 2 else 1 / (2 * beta)
    assert clf.temperature_ > 1.0
    assert_allclose(clf.temperature_, T_ref, rtol=1e-6)
    assert_allclose(
        clf.predict_proba(X_test), ref.predict_proba(X_test), rtol=1e-6, atol=1e-9
    )


def test_temperature_improves_calibration_of_an_overconfident_model():
    clf, X_cal, y_cal, X_test, y_test = _overconfident_split(4)
    pred = clf.predict(X_test)
    proba = clf.predict_proba(X_test)
    ece_before = expected_calibration_error(y_test, proba, labels=clf.classes_)
    clf.calibrate_temperature(X_cal, y_cal)
    proba_T = clf.predict_proba(X_test)
    ece_after = expected_calibration_error(y_test, proba_T, labels=clf.classes_)
    # Measured: ECE 0.092 -> 0.042, T = 1.47.
    assert ece_after < 0.6 * ece_before
    assert log_loss(y_test, proba_T) < log_loss(y_test, proba)
    assert_array_equal(clf.predict(X_test), pred)


def test_temperature_is_used_by_predict_proba_and_reset_by_fit():
    clf, X_cal, y_cal, X_test, _ = _overconfident_split(3)
    logits = clf.decision_function(X_test)
    clf.calibrate_temperature(X_cal, y_cal)
    T = clf.temperature_
    assert_allclose(
        clf.predict_log_proba(X_test), sp_log_softmax(logits / T, axis=1), rtol=1e-12
    )
    assert_allclose(
        clf.predict_proba(X_test),
        np.exp(sp_log_softmax(logits / T, axis=1)),
        rtol=1e-12,
    )
    assert_array_equal(clf.decision_function(X_test), logits)
    clf.fit(X_cal, y_cal)
    assert clf.temperature_ == 1.0


def test_temperature_with_soft_labels_weights_and_string_labels():
    clf, X_cal, y_cal, _, _ = _overconfident_split(3)
    T_labels = clf.calibrate_temperature(X_cal, y_cal).temperature_
    # One-hot rows are the same target as labels.
    T_onehot = clf.calibrate_temperature(X_cal, np.eye(3)[y_cal]).temperature_
    assert_allclose(T_onehot, T_labels, rtol=1e-8)
    # Integer weights are repetitions.
    w = np.arange(len(y_cal)) % 3
    T_weighted = clf.calibrate_temperature(X_cal, y_cal, sample_weight=w).temperature_
    T_repeated = clf.calibrate_temperature(
        np.repeat(X_cal, w, axis=0), np.repeat(y_cal, w)
    ).temperature_
    assert_allclose(T_weighted, T_repeated, rtol=1e-8)
    # String labels map through classes_.
    names = np.array(["a", "b", "c"])
    named = SoftmaxRegressionClassifier(C=1e4, max_iter=2000).fit(X_cal, names[y_cal])
    ints = SoftmaxRegressionClassifier(C=1e4, max_iter=2000).fit(X_cal, y_cal)
    assert_allclose(
        named.calibrate_temperature(X_cal, names[y_cal]).temperature_,
        ints.calibrate_temperature(X_cal, y_cal).temperature_,
    )


def test_calibrate_temperature_errors():
    X, y = make_classification(
        n_samples=50, n_classes=3, n_informative=4, random_state=0
    )
    with pytest.raises(NotFittedError):
        SoftmaxRegressionClassifier().calibrate_temperature(X, y)
    clf = SoftmaxRegressionClassifier().fit(X, y)
    with pytest.raises(ValueError, match="not in classes"):
        clf.calibrate_temperature(X, y + 1)
    with pytest.raises(ValueError, match="features"):
        clf.calibrate_temperature(X[:, :5], y)
    with pytest.raises(ValueError, match="columns of class probabilities"):
        clf.calibrate_temperature(X, np.eye(4)[y])


def test_fit_temperature_on_array_api_strict():
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((200, 4)) * 4
    y = rng.integers(0, 4, size=200)
    T_np = fit_temperature(logits, y)
    T_xp = fit_temperature(xp.asarray(logits), xp.asarray(y))
    assert_allclose(T_xp, T_np, rtol=1e-10)
    # Logits of pure noise: the best model is nearly uniform, so T is large.
    assert T_np > 2


# --------------------------------------------------------------------- ECE


def test_ece_matches_a_hand_computation():
    y_prob = np.array(
        [
            [0.90, 0.10],  # conf .90 -> bin 5 of 5, correct
            [0.75, 0.25],  # conf .75 -> bin 4, wrong (true 1)
            [0.35, 0.65],  # conf .65 -> bin 4, correct
            [0.45, 0.55],
        ]
    )  # conf .55 -> bin 3, correct
    y = np.array([0, 1, 1, 1])
    # bin 5: |1 - .90| * 1/4; bin 4: |1 - (.75 + .65)| = .40 over 2 of 4 samples
    # (|acc - conf| = |1/2 - .70| = .20, times 2/4); bin 3: |1 - .55| * 1/4.
    expected = 0.10 / 4 + 0.20 * 2 / 4 + 0.45 / 4
    assert_allclose(expected_calibration_error(y, y_prob, n_bins=5), expected)
    # The same problem as P(class 1) and with string labels.
    assert_allclose(expected_calibration_error(y, y_prob[:, 1], n_bins=5), expected)
    assert_allclose(
        expected_calibration_error(
            np.array(["n", "p", "p", "p"]), y_prob, n_bins=5, labels=["n", "p"]
        ),
        expected,
    )
    # Weight 2 on the first sample counts it twice.
    twice = expected_calibration_error(
        np.r_[0, y], np.vstack([y_prob[:1], y_prob]), n_bins=5
    )
    weighted = expected_calibration_error(
        y, y_prob, n_bins=5, sample_weight=[2, 1, 1, 1]
    )
    assert_allclose(weighted, twice)


def test_ece_of_a_calibrated_predictor_is_small():
    # Labels drawn from the predicted distributions: calibrated by construction.
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3) * 0.5, size=100_000)
    y = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, p[:, [1, 2, 0]]) > 0.1


def test_ece_errors():
    with pytest.raises(ValueError, match="labels has 3 entries"):
        expected_calibration_error([0, 1], [[0.5, 0.5], [0.2, 0.8]], labels=[0, 1, 2])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], [[0.5, 0.5], [0.2, 0.8]], n_bins=0)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        expected_calibration_error([0, 1, 1], [[0.5, 0.5], [0.2, 0.8]])


def test_fit_temperature_edge_cases():
    y = np.array([0, 1, 2, 0])
    # Logits without spread: every T gives the same NLL; T stays 1.
    assert fit_temperature(np.zeros((4, 3)), y) == 1.0
    # Held-out data separated by the logits: as sharp as the bound allows.
    assert fit_temperature(np.eye(3)[y] * 5.0, y) == pytest.approx(np.exp(-10))
    # Logits that point the wrong way: as flat as the bound allows.
    assert fit_temperature(-np.eye(3)[y] * 5.0, y) == pytest.approx(np.exp(10))
