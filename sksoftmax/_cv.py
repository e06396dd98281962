"""SoftmaxRegressionCV: choose ``C`` (and ``l1_ratio``) by cross-validation.

Built on the public :class:`SoftmaxRegressionClassifier` only: each fold fits
one estimator with ``warm_start=True`` along the path of ``C`` from the
strongest penalty to the weakest, so each fit starts next to its optimum.
"""

import copy
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _prediction as prediction
from ._backend import (
    asarray_like,
    get_namespace,
    index_on_device,
    is_cupy_sparse,
    is_foreign_array,
    limit_scipy_blas_threads,
    take_rows,
    to_numpy,
)
from ._classifier import SoftmaxRegressionClassifier, fit_warm_path
from ._docs import doc_link_params, doc_link_template
from ._functional import log_softmax, softmax
from ._solvers._newton import newton_pays
from ._validation import validate_X
from .metrics import (
    _as_target_matrix,
    _neg_cross_entropy,
    neg_cross_entropy_scorer,
)

__all__ = ["SoftmaxRegressionCV"]

# Parameters handed unchanged to every SoftmaxRegressionClassifier it fits.
_PASSED_ON = (
    "fit_intercept",
    "solver",
    "tol",
    "max_iter",
    "label_smoothing",
    "batch_size",
    "learning_rate_init",
    "random_state",
    "device",
)


class SoftmaxRegressionCV(ClassifierMixin, BaseEstimator):
    """Softmax regression with ``C`` (and ``l1_ratio``) chosen by cross-validation.

    The counterpart of scikit-learn's ``LogisticRegressionCV``: for every
    training fold and every ``l1_ratio`` it fits a
    :class:`SoftmaxRegressionClassifier` along the grid of ``Cs`` from the
    strongest penalty (smallest ``C``) to the weakest, each fit warm-started
    from the previous one, and scores each on the held-out fold. The folds
    (times the ``l1_ratios``) run in parallel with joblib. The ``(C,
    l1_ratio)`` with the best mean score is refitted on all the data
    (``refit=True``), else the best coefficients of each fold are averaged.
    For the same ``Cs``, folds and scoring it picks the same ``C_`` as
    ``LogisticRegressionCV`` and, at a small ``tol``, the same ``coef_``.

    Parameters
    ----------
    Cs : int or array-like of float > 0, default=10
        The values of ``C`` to try. An int ``n`` means ``n`` values on a log
        scale between 1e-4 and 1e4, as LogisticRegressionCV.
    l1_ratios : array-like of float in [0, 1], default=(0.0,)
        The values of ``l1_ratio`` to try (elastic-net mixing; 0 is L2).
    fit_intercept : bool, default=True
        Whether to fit the intercept.
    cv : int, cross-validation generator or iterable, default=None
        As in scikit-learn: None is 5 folds, stratified for class labels and
        plain ``KFold`` for soft labels. To stratify soft labels, pass the
        splits of their most probable class, e.g.
        ``cv=list(StratifiedKFold(5).split(X, Y.argmax(axis=1)))``.
    scoring : str, callable or None, default=None
        A scikit-learn scorer name or ``scorer(estimator, X, y)``. None is
        :data:`sksoftmax.metrics.neg_cross_entropy_scorer`, the negative mean
        cross-entropy of the predicted probabilities against the targets:
        ``neg_log_loss`` for class labels, and defined as well for soft
        labels (probability rows), where ``neg_log_loss`` is not.
    solver : {"auto", "lbfgs", "sgd", "adam"}, default="auto"
        The solver of every fit. ``"auto"`` is ``"lbfgs"``, except that on
        small in-memory data (NumPy or SciPy sparse, where a Newton
        iteration takes at most 2**21 multiply-adds, ``n_samples * p**2 +
        p**3 / 3`` for ``p = k * (n_features + 1)`` parameters, as on iris,
        wine or breast_cancer; no L1 term) each fold's path of ``Cs`` is
        solved by Newton's method with the exact Hessian: the same objective
        and the same stopping rule (the largest entry of the gradient at
        most ``tol``), reached in a few iterations warm-started along the
        path, where L-BFGS takes tens (``n_iter_`` counts Newton iterations
        there). The final model is always fitted by L-BFGS
        (``estimator_.solver == "lbfgs"``).
    tol : float >= 0, default=1e-4
        Stopping tolerance of every fit.
    max_iter : int >= 1, default=100
        Iterations (L-BFGS) or epochs (SGD/Adam) of every fit.
    class_weight : dict, "balanced" or None, default=None
        Weights per class. For class labels ``"balanced"`` is computed once
        on all of ``y`` (as LogisticRegressionCV does), so every fold uses
        the same weights; for soft labels each fit computes it on its fold.
    label_smoothing : float in [0, 1), default=0.0
        Passed on to each fit; the scores use the unsmoothed targets.
    batch_size : int >= 1 or "auto", default="auto"
        Minibatch size of SGD/Adam.
    learning_rate_init : float > 0, default=0.001
        Initial step size of SGD/Adam.
    n_jobs : int or None, default=None
        Number of joblib workers over the (fold, l1_ratio) paths.
    verbose : int, default=0
        Passed to joblib.
    refit : bool, default=True
        Refit the best ``(C, l1_ratio)`` on all the data; if False, average
        the coefficients of each fold's best fit (and ``C_``, ``l1_ratio_``
        are the means of each fold's best values).
    random_state : int, RandomState instance or None, default=None
        Passed on to each fit (SGD/Adam shuffling); the folds come from ``cv``.
    device : {"cpu", "cuda"} or None, default=None
        Where the arithmetic of each fit runs.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (``0 .. n_classes - 1`` for soft labels).
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Coefficients of the final model.
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Intercepts of the final model.
    Cs_ : ndarray of shape (n_cs,)
        The values of ``C`` tried, in the order given.
    l1_ratios_ : ndarray of shape (n_l1_ratios,)
        The values of ``l1_ratio`` tried.
    C_ : float
        The chosen ``C``.
    l1_ratio_ : float
        The chosen ``l1_ratio``.
    scores_ : ndarray of shape (n_folds, n_l1_ratios, n_cs)
        The score of every fit on its held-out fold.
    coefs_paths_ : ndarray of shape (n_folds, n_l1_ratios, n_cs, n_rows, n_dof)
        The coefficients of every fit, ``n_rows`` being 1 for binary problems
        and ``n_classes`` otherwise, ``n_dof = n_features + fit_intercept``
        (the intercept last).
    n_iter_ : ndarray of shape (n_folds, n_l1_ratios, n_cs)
        Iterations (or epochs) of every fit.
    estimator_ : SoftmaxRegressionClassifier
        The final model, which ``predict`` and friends use.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` has string column names.

    Notes
    -----
    The layout of ``C_``, ``l1_ratio_``, ``scores_``, ``coefs_paths_`` and
    ``n_iter_`` is LogisticRegressionCV's with ``use_legacy_attributes=False``
    (the layout that becomes its default).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sksoftmax import SoftmaxRegressionCV
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxRegressionCV(Cs=[0.1, 1.0, 10.0], cv=3, max_iter=1000).fit(X, y)
    >>> clf.C_
    10.0
    >>> clf.scores_.shape
    (3, 1, 3)
    """

    _doc_link_module = "sksoftmax"
    _doc_link_template = property(lambda self: doc_link_template())
    _doc_link_url_param_generator = doc_link_params

    _parameter_constraints = {
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "l1_ratios": ["array-like"],
        "fit_intercept": ["boolean"],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "solver": [StrOptions({"auto", "lbfgs", "sgd", "adam"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "device": [StrOptions({"cpu", "cuda"}), None],
    }

    def __init__(
        self,
        *,
        Cs=10,
        l1_ratios=(0.0,),
        fit_intercept=True,
        cv=None,
        scoring=None,
        solver="auto",
        tol=1e-4,
        max_iter=100,
        class_weight=None,
        label_smoothing=0.0,
        batch_size="auto",
        learning_rate_init=0.001,
        n_jobs=None,
        verbose=0,
        refit=True,
        random_state=None,
        device=None,
    ):
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.refit = refit
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, sample_weight=None, groups=None):
        """Cross-validate every ``(C, l1_ratio)`` and fit the final model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or rows of class probabilities (soft labels).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights per sample, used by every fit and passed to the scorer
            for the held-out fold.
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware splitters given as ``cv``.

        Returns
        -------
        self : SoftmaxRegressionCV
            The fitted estimator.
        """
        self._validate_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        Cs = self._grid_of_C()
        l1_ratios = self._grid_of_l1_ratio()
        if not is_foreign_array(X):
            X, y = validate_data(
                self,
                X,
                y,
                accept_sparse=["csr", "csc"],
                dtype=[np.float64, np.float32],
                multi_output=True,
            )
        y_np = to_numpy(y) if is_foreign_array(y) else np.asarray(y)
        if sample_weight is not None and not is_foreign_array(sample_weight):
            sample_weight = _check_sample_weight(sample_weight, y_np)
        soft = np.ndim(y_np) == 2 and np.shape(y_np)[1] > 1
        classes = self._classes(y_np, soft)
        folds = list(
            check_cv(self.cv, None if soft else y_np, classifier=True).split(
                X, None if soft else y_np, groups
            )
        )
        if not soft:
            _check_every_class_in_every_fold(np.asarray(y_np).ravel(), folds, classes)
        params = {name: getattr(self, name) for name in _PASSED_ON}
        params["class_weight"] = self._fold_class_weight(y_np, soft, classes)
        if self.solver == "auto":  # the estimator's solver is L-BFGS
            params["solver"] = "lbfgs"
        path_solver = self._path_solver(X, len(classes), folds)
        _scorer(self.scoring)  # an unknown name fails here, before any fit
        order = np.argsort(Cs, kind="stable")  # strong -> weak penalty
        paths = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fit_path)(
                X,
                y,
                sample_weight,
                train,
                test,
                Cs[order],
                l1,
                params,
                self.scoring,
                path_solver if l1 == 0 else None,
            )
            for train, test in folds
            for l1 in l1_ratios
        )
        self._store_paths(paths, order, Cs, l1_ratios, len(folds))
        self._fit_final(X, y, sample_weight, params, paths)
        return self

    def _path_solver(self, X, n_classes, folds):
        """``"newton"`` where ``solver="auto"`` solves the folds' paths by
        Newton's method (small in-memory data, see :func:`newton_pays`),
        else None (the estimator's solver)."""
        if self.solver != "auto" or self.device == "cuda":
            return None
        if not (type(X) is np.ndarray or sp.issparse(X)):
            return None
        n_logits = 1 if n_classes == 2 else n_classes
        n_params = n_logits * (X.shape[1] + int(self.fit_intercept))
        n_train = max(len(train) for train, _ in folds)  # the largest fold
        return "newton" if newton_pays(n_train, n_params) else None

    def _grid_of_C(self):
        if isinstance(self.Cs, Integral):
            return np.logspace(-4, 4, self.Cs)
        Cs = np.asarray(self.Cs, dtype=np.float64).ravel()
        if Cs.size == 0 or not np.all(Cs > 0):
            raise ValueError(f"Cs must hold values of C > 0, got {self.Cs!r}.")
        return Cs

    def _grid_of_l1_ratio(self):
        l1 = np.asarray(self.l1_ratios, dtype=np.float64).ravel()
        if l1.size == 0 or not np.all((l1 >= 0) & (l1 <= 1)):
            raise ValueError(
                f"l1_ratios must hold values in [0, 1], got {self.l1_ratios!r}."
            )
        return l1

    def _classes(self, y, soft):
        if soft:
            return np.arange(np.shape(y)[1])
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        check_classification_targets(y)
        classes = np.unique(y)
        if classes.shape[0] < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes[0]!r}."
            )
        return classes

    def _fold_class_weight(self, y, soft, classes):
        # "balanced" from all of y, as LogisticRegressionCV: each fold sees the
        # same weights, so the folds' objectives differ only by their data.
        if self.class_weight != "balanced" or soft:
            return self.class_weight
        weights = compute_class_weight(
            "balanced", classes=classes, y=np.asarray(y).ravel()
        )
        return dict(zip(classes.tolist(), weights.tolist(), strict=True))

    def _store_paths(self, paths, order, Cs, l1_ratios, n_folds):
        back = np.argsort(order)  # the fits ran in increasing C: undo it
        shape = (n_folds, len(l1_ratios))
        scores = np.array([p["scores"][back] for p in paths]).reshape(*shape, -1)
        n_iter = np.array([p["n_iter"][back] for p in paths]).reshape(*shape, -1)
        coefs = np.array([p["coefs"][back] for p in paths])
        self.Cs_ = Cs
        self.l1_ratios_ = l1_ratios
        self.scores_ = scores
        self.n_iter_ = n_iter
        self.coefs_paths_ = coefs.reshape(*shape, *coefs.shape[1:])

    def _fit_final(self, X, y, sample_weight, params, paths):
        n_cs, n_l1 = len(self.Cs_), len(self.l1_ratios_)
        if self.refit:
            # Best mean score; ties go to the first in (C, l1_ratio) order,
            # as LogisticRegressionCV.
            total = self.scores_.sum(axis=0).T  # (n_cs, n_l1)
            i_c, i_l1 = np.unravel_index(np.argmax(total), total.shape)
            self.C_ = float(self.Cs_[i_c])
            self.l1_ratio_ = float(self.l1_ratios_[i_l1])
            # Start from the folds' mean solution (as LogisticRegressionCV):
            # warm_start=True makes fit begin at the coef_/intercept_ it finds.
            start = _with_coefficients(
                paths[0]["estimator"],
                self.coefs_paths_[:, i_l1, i_c].mean(axis=0),
                self.fit_intercept,
            )
            final = start.set_params(C=self.C_, l1_ratio=self.l1_ratio_)
            final.fit(X, y, sample_weight=sample_weight)
            self.estimator_ = final.set_params(warm_start=False)
        else:
            flat = np.swapaxes(self.scores_, 1, 2).reshape(self.scores_.shape[0], -1)
            best = np.unravel_index(np.argmax(flat, axis=1), (n_cs, n_l1))
            coefs = [
                self.coefs_paths_[f, i_l1, i_c]
                for f, (i_c, i_l1) in enumerate(zip(*best, strict=True))
            ]
            self.C_ = float(np.mean(self.Cs_[best[0]]))
            self.l1_ratio_ = float(np.mean(self.l1_ratios_[best[1]]))
            self.estimator_ = _with_coefficients(
                paths[0]["estimator"], np.mean(coefs, axis=0), self.fit_intercept
            ).set_params(C=self.C_, l1_ratio=self.l1_ratio_, warm_start=False)
        for name in ("classes_", "coef_", "intercept_"):
            setattr(self, name, getattr(self.estimator_, name))

    # ------------------------------------------------------------ predict

    def _checked_X(self, X):
        """X as the final model was fitted on (names checked here, not there)."""
        check_is_fitted(self)
        if is_foreign_array(X):
            return X
        return validate_data(
            self,
            X,
            reset=False,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
        )

    def decision_function(self, X):
        """Logits of the final model; see SoftmaxRegressionClassifier."""
        X = self._checked_X(X)
        return self.estimator_.decision_function(X)

    def predict_proba(self, X):
        """Class probabilities of the final model, columns in ``classes_``."""
        X = self._checked_X(X)
        return self.estimator_.predict_proba(X)

    def predict_log_proba(self, X):
        """Log-probabilities of the final model."""
        X = self._checked_X(X)
        return self.estimator_.predict_log_proba(X)

    def predict(self, X):
        """The most probable class of each sample."""
        X = self._checked_X(X)
        return self.estimator_.predict(X)

    def score(self, X, y, sample_weight=None):
        """The ``scoring`` used to choose ``C``, on ``X`` and ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or rows of class probabilities.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights per sample.

        Returns
        -------
        score : float
            Higher is better (the default is the negative cross-entropy).
        """
        check_is_fitted(self)
        scorer = _scorer(self.scoring)
        if sample_weight is None:
            return float(scorer(self, X, y))
        return float(scorer(self, X, y, sample_weight=sample_weight))


def _scorer(scoring):
    if scoring is None:
        return neg_cross_entropy_scorer
    return get_scorer(scoring)


def _check_every_class_in_every_fold(y, folds, classes):
    for k, (train, _) in enumerate(folds):
        missing = np.setdiff1d(classes, y[train])
        if missing.size:
            raise ValueError(
                f"Training fold {k} lacks the classes {missing.tolist()!r}; every "
                "training fold must hold every class. Use fewer folds or a "
                "stratified splitter."
            )


def _fit_path(
    X, y, sample_weight, train, test, Cs, l1_ratio, params, scoring, solver=None
):
    """One training fold, one ``l1_ratio``, every ``C`` in increasing order,
    each fit warm-started from the previous one; the fold is checked once
    (:func:`~sksoftmax._classifier.fit_warm_path`). ``solver`` replaces the
    estimator's for the path (``"newton"``)."""
    X_train, X_test = _rows(X, train), _rows(X, test)
    y_train, y_test = _rows(y, train), _rows(y, test)
    sw_train = sw_test = None
    if sample_weight is not None:
        sw = np.asarray(to_numpy(sample_weight))
        sw_train, sw_test = sw[train], sw[test]
    # Python floats: a NumPy scalar parameter meets Array API arrays badly.
    est = SoftmaxRegressionClassifier(l1_ratio=float(l1_ratio), **params)
    held_out = _HeldOut(X_test, y_test, sw_test, scoring)
    scores, n_iter, coefs = [], [], []
    # One limit of SciPy's BLAS threads for the whole path, not one per fit.
    with limit_scipy_blas_threads():
        path = fit_warm_path(
            est, X_train, y_train, sw_train, [float(C) for C in Cs], solver=solver
        )
        for fitted in path:
            scores.append(held_out.score(fitted))
            n_iter.append(fitted.n_iter_)
            W = to_numpy(fitted.coef_)
            if params["fit_intercept"]:
                W = np.column_stack([W, to_numpy(fitted.intercept_)])
            coefs.append(np.asarray(W, dtype=np.float64))
    return {
        "scores": np.array(scores),
        "n_iter": np.array(n_iter),
        "coefs": np.array(coefs),
        "estimator": est,
    }


class _HeldOut:
    """The score of each fit of a path on the held-out rows of its fold.

    The default scoring (:data:`~sksoftmax.metrics.neg_cross_entropy_scorer`)
    and ``"neg_log_loss"`` are computed here from the model's probabilities,
    the same numbers as the scorers give, without their checks of the
    targets at every ``C`` (the targets are encoded once per fold). Any
    other scoring calls its scorer.
    """

    def __init__(self, X, y, sample_weight, scoring):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.scorer = _scorer(scoring)
        self.rule = None
        y = np.asarray(to_numpy(y))
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        self.y_np = y
        self._Y = None
        if self.scorer is neg_cross_entropy_scorer:
            self.rule = "cross_entropy"
        elif isinstance(scoring, str) and scoring == "neg_log_loss" and y.ndim == 1:
            self.rule = "log_loss"
            self.n_labels = np.unique(y).shape[0]
        if self.rule is not None:
            # as the classifier's predict methods check X (the CV checked
            # NumPy and SciPy input already)
            foreign = is_foreign_array(X) or is_cupy_sparse(X)
            self.X_checked = validate_X(X) if foreign else X

    def score(self, est):
        if self.rule == "cross_entropy":
            return self._cross_entropy(est, est.classes_)
        # scikit-learn's log_loss takes the classes from y_true: a fold that
        # lacks one is left to its scorer (and its error).
        if self.rule == "log_loss" and self.n_labels == est.classes_.shape[0]:
            return self._log_loss(est, est.classes_)
        if self.sample_weight is None:
            return float(self.scorer(est, self.X, self.y))
        return float(self.scorer(est, self.X, self.y, sample_weight=self.sample_weight))

    def _targets(self, classes):
        """The held-out targets as the scorer makes them (float64 rows,
        one-hot for labels, checked), once."""
        if self._Y is None:
            self._Y = _as_target_matrix(self.y_np, classes.shape[0], classes)
        return self._Y

    def _codes(self, classes):
        return np.searchsorted(classes, self.y_np)

    def _logits(self, est):
        """The model's logits of the held-out rows, in the namespace where
        they were computed."""
        logits, xp, _ = prediction.logits(
            self.X_checked, est.coef_, est.intercept_, len(est.classes_), est.device
        )
        return logits, xp

    def _cross_entropy(self, est, classes):
        # predict_log_proba's arithmetic, without checking X again
        logits, xp = self._logits(est)
        log_p = np.asarray(to_numpy(log_softmax(logits, axis=1, xp=xp)), np.float64)
        return _neg_cross_entropy(self._targets(classes), log_p, self.sample_weight)

    def _log_loss(self, est, classes):
        """``neg_log_loss`` as scikit-learn's scorer computes it from
        ``predict_proba``: for two classes the probability of class 0 is
        ``1 - p_1`` (the scorer passes the positive column only),
        probabilities are clipped to ``[eps, 1 - eps]`` of their dtype, and
        the loss is the weighted mean of ``-log p_true``."""
        logits, xp = self._logits(est)
        proba = to_numpy(softmax(logits, axis=1, xp=xp))
        if proba.shape[1] == 2:
            proba = np.column_stack([1 - proba[:, 1], proba[:, 1]])
        eps = np.finfo(proba.dtype).eps
        p_true = proba[np.arange(proba.shape[0]), self._codes(classes)]
        loss = -np.log(np.clip(p_true, eps, 1 - eps)).astype(np.float64)
        return -float(np.average(loss, weights=self.sample_weight))


def _rows(a, idx):
    """Rows ``idx`` of NumPy, sparse, pandas or any Array API input."""
    if type(a) is np.ndarray or sp.issparse(a):  # checked X and y
        return a[idx]
    if is_foreign_array(a):  # stays in its namespace and on its device
        xp = get_namespace(a)
        return take_rows(a, index_on_device(idx, a, xp), xp)
    return _safe_indexing(a, idx)


def _with_coefficients(estimator, W, fit_intercept):
    """A copy of a fitted estimator whose ``coef_``/``intercept_`` are ``W``
    (the intercept in its last column when fitted)."""
    new = copy.deepcopy(estimator)
    coef, intercept = (W[:, :-1], W[:, -1]) if fit_intercept else (W, None)
    dtype = to_numpy(estimator.coef_).dtype
    # in the namespace and on the device of the fitted coefficients
    new.coef_ = asarray_like(np.ascontiguousarray(coef, dtype=dtype), estimator.coef_)
    if intercept is not None:
        new.intercept_ = asarray_like(
            np.asarray(intercept, dtype=dtype), estimator.intercept_
        )
    return new
