"""SoftmaxRegressionCV against LogisticRegressionCV, and on soft labels."""

import copy
import warnings

import numpy as np
import pytest
from joblib import parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, load_iris, load_wine, make_classification
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import get_scorer, log_loss
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sksoftmax import SoftmaxRegressionClassifier, SoftmaxRegressionCV
from sksoftmax._compat import skip_logistic_regression_cv_reference
from sksoftmax.metrics import cross_entropy, neg_cross_entropy_scorer

TIGHT = dict(tol=1e-10, max_iter=10_000)


def _load(name):
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    if name == "digits":  # a third of the samples keeps the test short
        X, y = X[::3], y[::3]
    return StandardScaler().fit_transform(X), y


def _reference(X, y, Cs, cv, scoring, **kw):
    if reason := skip_logistic_regression_cv_reference():
        pytest.skip(reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarnings of the legacy layout
        return LogisticRegressionCV(
            Cs=Cs,
            cv=cv,
            scoring=scoring,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
            **TIGHT,
            **kw,
        ).fit(X, y)


PARITY = [
    ("iris", [1e-2, 1e-1, 1, 10], "neg_log_loss"),
    ("wine", [1e-2, 1e-1, 1, 10], "accuracy"),
    ("wine", 3, "neg_log_loss"),
    ("digits", [1e-3, 1e-2, 1e-1], "neg_log_loss"),
]


@pytest.mark.parametrize(
    "name, Cs, scoring", PARITY, ids=[f"{p[0]}-{p[2]}" for p in PARITY]
)
def test_same_C_and_coef_as_logistic_regression_cv(name, Cs, scoring):
    X, y = _load(name)
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    ref = _reference(X, y, Cs, cv, scoring)
    ours = SoftmaxRegressionCV(Cs=Cs, cv=cv, scoring=scoring, **TIGHT).fit(X, y)
    assert ours.C_ == ref.C_
    assert ours.l1_ratio_ == ref.l1_ratio_ == 0.0
    assert_allclose(ours.Cs_, ref.Cs_)
    assert_allclose(ours.scores_, ref.scores_, rtol=1e-4, atol=1e-8)
    scale = np.abs(ref.coef_).max()
    assert np.abs(ours.coef_ - ref.coef_).max() <= 1e-4 * scale
    assert_allclose(
        ours.intercept_ - ours.intercept_.mean(),
        ref.intercept_ - ref.intercept_.mean(),
        atol=1e-4 * scale,
    )
    assert ours.coefs_paths_.shape == ref.coefs_paths_.shape
    assert ours.n_iter_.shape == ref.n_iter_.shape == ours.scores_.shape


def test_binary_parity_and_refit_false():
    X, y = load_iris(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[y > 0]), y[y > 0]
    cv = list(StratifiedKFold(4, shuffle=True, random_state=1).split(X, y))
    Cs = [1e-2, 1e-1, 1, 10]
    for refit in (True, False):
        ref = _reference(X, y, Cs, cv, "neg_log_loss", refit=refit)
        ours = SoftmaxRegressionCV(
            Cs=Cs, cv=cv, scoring="neg_log_loss", refit=refit, **TIGHT
        ).fit(X, y)
        assert ours.coef_.shape == (1, X.shape[1])
        assert ours.C_ == pytest.approx(ref.C_)
        assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-6)
        assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-4, atol=1e-6)
        assert_allclose(ours.coefs_paths_, ref.coefs_paths_, rtol=1e-4, atol=1e-6)


def test_path_runs_from_strong_to_weak_penalty_in_any_order():
    """Cs given out of order: attributes follow the given order, results equal."""
    X, y = _load("iris")
    cv = list(KFold(3, shuffle=True, random_state=0).split(X))
    up = SoftmaxRegressionCV(Cs=[0.1, 1.0, 10.0], cv=cv, **TIGHT).fit(X, y)
    mixed = SoftmaxRegressionCV(Cs=[10.0, 0.1, 1.0], cv=cv, **TIGHT).fit(X, y)
    assert_array_equal(mixed.Cs_, [10.0, 0.1, 1.0])
    assert_allclose(mixed.scores_[..., [1, 2, 0]], up.scores_, rtol=1e-7)
    assert mixed.C_ == up.C_
    # Warm starts make the later fits on the path cheap: the largest C needs
    # fewer iterations warm than from zeros.
    cold = SoftmaxRegressionClassifier(C=10.0, **TIGHT).fit(X[cv[0][0]], y[cv[0][0]])
    assert up.n_iter_[0, 0, 2] < cold.n_iter_


def test_elastic_net_grid_and_default_scoring():
    X, y = _load("wine")
    clf = SoftmaxRegressionCV(Cs=[0.1, 1.0], l1_ratios=[0.0, 1.0], cv=3).fit(X, y)
    assert clf.scores_.shape == clf.n_iter_.shape == (3, 2, 2)
    assert clf.coefs_paths_.shape == (3, 2, 2, 3, X.shape[1] + 1)
    best = np.unravel_index(np.argmax(clf.scores_.sum(axis=0)), (2, 2))
    assert (clf.l1_ratio_, clf.C_) == (clf.l1_ratios_[best[0]], clf.Cs_[best[1]])
    # the default scoring is the held-out negative cross-entropy
    assert clf.score(X, y) == pytest.approx(
        -cross_entropy(y, clf.predict_proba(X), labels=clf.classes_)
    )
    assert clf.estimator_.C == clf.C_ and clf.estimator_.l1_ratio == clf.l1_ratio_


def test_soft_labels_are_scored_by_cross_entropy():
    X, y = make_classification(
        n_samples=240,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        random_state=0,
    )
    rng = np.random.default_rng(0)
    Y = 0.7 * np.eye(3)[y] + 0.3 * rng.dirichlet(np.ones(3), size=y.shape[0])
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    clf = SoftmaxRegressionCV(Cs=[0.01, 1.0], cv=cv, **TIGHT).fit(X, Y)
    assert_array_equal(clf.classes_, [0, 1, 2])
    for f, (train, test) in enumerate(cv):
        for i, C in enumerate(clf.Cs_):
            m = SoftmaxRegressionClassifier(C=C, **TIGHT).fit(X[train], Y[train])
            expected = -cross_entropy(Y[test], m.predict_proba(X[test]))
            assert clf.scores_[f, 0, i] == pytest.approx(expected, rel=1e-6)


def test_balanced_class_weight_uses_all_of_y():
    X, y = _load("wine")
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    ref = _reference(X, y, [0.1, 1.0], cv, "neg_log_loss", class_weight="balanced")
    ours = SoftmaxRegressionCV(
        Cs=[0.1, 1.0], cv=cv, scoring="neg_log_loss", class_weight="balanced", **TIGHT
    ).fit(X, y)
    assert_allclose(ours.scores_, ref.scores_, rtol=1e-6)


def test_parallel_folds_give_the_same_result():
    X, y = _load("iris")
    one = SoftmaxRegressionCV(Cs=3, cv=3, n_jobs=1).fit(X, y)
    with parallel_config(backend="threading"):  # no process start-up in CI
        two = SoftmaxRegressionCV(Cs=3, cv=3, n_jobs=2).fit(X, y)
    assert_allclose(one.scores_, two.scores_)
    assert_allclose(one.coef_, two.coef_)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(Cs=[1.0, -1.0]), "Cs must hold values of C > 0"),
        (dict(Cs=[]), "Cs must hold values of C > 0"),
        (dict(l1_ratios=[0.5, 2.0]), "l1_ratios must hold values in"),
    ],
)
def test_bad_grids_are_refused(params, message):
    X, y = _load("iris")
    with pytest.raises(ValueError, match=message):
        SoftmaxRegressionCV(**params).fit(X, y)


def test_fold_missing_a_class_is_refused_before_fitting():
    X, y = _load("iris")
    cv = [(np.flatnonzero(y < 2), np.flatnonzero(y == 2))]
    with pytest.raises(ValueError, match=r"Training fold 0 lacks the classes \[2\]"):
        SoftmaxRegressionCV(cv=cv).fit(X, y)


# refit=False builds its model from the folds' averaged coefficients; it is
# checked against LogisticRegressionCV above, the API checks run on the default.
@parametrize_with_checks([SoftmaxRegressionCV(Cs=3, cv=3)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_array_api_input_stays_in_its_namespace():
    xps = pytest.importorskip("array_api_strict")
    X, y = _load("iris")
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    for refit in (True, False):
        params = dict(Cs=[0.1, 1.0], cv=cv, refit=refit, **TIGHT)
        ref = SoftmaxRegressionCV(**params).fit(X, y)
        clf = SoftmaxRegressionCV(**params).fit(xps.asarray(X), xps.asarray(y))
        assert type(clf.coef_) is type(xps.asarray(0.0))
        assert_allclose(clf.scores_, ref.scores_, rtol=1e-7)
        assert clf.C_ == ref.C_
        assert_allclose(np.asarray(clf.coef_), ref.coef_, rtol=1e-5, atol=1e-7)
        pred = clf.predict(xps.asarray(X))
        assert_array_equal(np.asarray(pred), ref.predict(X))


def _warm_path(X, y, sw, Cs, **params):
    """The public route the CV's path must equal: one estimator, warm-started
    from C to C; a copy of its state after each fit."""
    est = SoftmaxRegressionClassifier(warm_start=True, **params)
    fits = []
    for C in Cs:
        est.set_params(C=C).fit(X, y, sample_weight=sw)
        fits.append(copy.deepcopy(est))
    return fits


@pytest.mark.parametrize(
    "dtype, weighted, binary",
    [(np.float64, False, False), (np.float64, True, True), (np.float32, True, False)],
    ids=["f64", "f64-weights-binary", "f32-weights"],
)
def test_fold_path_equals_warm_started_public_fits(dtype, weighted, binary):
    """Each fit of a fold's path is exactly SoftmaxRegressionClassifier(C=...,
    warm_start=True).fit on that fold after the previous C, and each score is
    the scorer's on that fit."""
    X, y = _load("wine")
    if binary:
        X, y = X[y > 0], y[y > 0]
    X = X.astype(dtype)
    sw = np.random.default_rng(0).uniform(0.2, 3.0, y.shape[0]) if weighted else None
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [0.01, 1.0, 100.0]
    for scoring in (None, "neg_log_loss"):
        cv = SoftmaxRegressionCV(
            Cs=Cs,
            cv=[(train, test)],
            scoring=scoring,
            class_weight="balanced",
            solver="lbfgs",  # "auto" would take Newton's method on wine
        ).fit(X, y, sample_weight=sw)
        sw_train = None if sw is None else sw[train]
        sw_test = None if sw is None else sw[test]
        # "balanced" comes from all of y: the same weights as a dict
        cw = dict(zip(*np.unique(y, return_counts=True), strict=True))
        cw = {c: y.shape[0] / (len(cw) * n) for c, n in cw.items()}
        fits = _warm_path(X[train], y[train], sw_train, Cs, class_weight=cw)
        scorer = get_scorer(scoring or "neg_log_loss")
        for i, est in enumerate(fits):
            W = np.column_stack([est.coef_, est.intercept_])
            assert_array_equal(cv.coefs_paths_[0, 0, i], W)
            assert cv.n_iter_[0, 0, i] == est.n_iter_
            kw = {} if sw_test is None else {"sample_weight": sw_test}
            expected = (
                neg_cross_entropy_scorer(est, X[test], y[test], **kw)
                if scoring is None
                else scorer(est, X[test], y[test], **kw)
            )
            rtol = 1e-12 if dtype == np.float64 else 1e-6
            assert cv.scores_[0, 0, i] == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
def test_neg_log_loss_from_logits_equals_log_loss(binary):
    """The held-out neg_log_loss is scikit-learn's log_loss of predict_proba,
    with sample weights, also where probabilities are clipped (C large)."""
    X, y = _load("iris")
    if binary:
        X, y = X[y > 0], y[y > 0]
    sw = np.random.default_rng(1).uniform(0.0, 2.0, y.shape[0])
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    Cs = [0.1, 1e4]
    cv = SoftmaxRegressionCV(
        Cs=Cs, cv=[(train, test)], scoring="neg_log_loss", max_iter=1000, solver="lbfgs"
    ).fit(X, y, sample_weight=sw)
    fits = _warm_path(X[train], y[train], sw[train], Cs, max_iter=1000)
    for i, est in enumerate(fits):
        proba = est.predict_proba(X[test])
        expected = -log_loss(y[test], proba, sample_weight=sw[test])
        assert cv.scores_[0, 0, i] == pytest.approx(expected, rel=1e-12)


def test_neg_log_loss_on_a_test_fold_lacking_a_class_keeps_the_scorer_error():
    X, y = _load("iris")
    train = np.flatnonzero((np.arange(y.shape[0]) % 3 != 0) | (y == 2))
    test = np.setdiff1d(np.arange(y.shape[0]), train)  # classes 0 and 1 only
    with pytest.raises(ValueError, match="different number of classes"):
        SoftmaxRegressionCV(Cs=[1.0], cv=[(train, test)], scoring="neg_log_loss").fit(
            X, y
        )
