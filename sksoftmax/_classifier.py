"""SoftmaxRegressionClassifier: validate the input, build the loss and the
solver, store what comes back."""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from . import _prediction as prediction
from ._backend import (
    is_cupy_sparse,
    is_foreign_array,
    to_numpy,
)
from ._calibration import fit_temperature
from ._cpu_kernels import predict_proba_numpy
from ._data import is_dask_collection
from ._docs import doc_link_params, doc_link_template
from ._functional import log_softmax, softmax
from ._solvers.minibatch import map_state
from ._training import Previous, train
from ._validation import (
    check_partial_fit_call,
    held_out_targets,
    unnamed_soft_labels,
    validate_training_data,
    validate_X,
)
from .metrics import soft_accuracy_score

_STOCHASTIC = ("sgd", "adam")


def _is_stochastic(estimator):
    return estimator.solver in _STOCHASTIC


class SoftmaxRegressionClassifier(ClassifierMixin, BaseEstimator):
    r"""Softmax (multinomial logistic) regression.

    LogisticRegression's model and objective (the same ``C`` gives the same
    model), trained by L-BFGS, minibatch SGD or Adam, on NumPy, sparse
    matrices, CuPy or any Array API array. Labels may be classes or rows of
    class probabilities (soft labels); ``partial_fit`` learns online;
    :meth:`calibrate_temperature` calibrates the probabilities. The model is
    ``O = X W^T + b`` with class probabilities ``softmax(O)``; the objective
    is in the Notes below. With two classes the model has one logit (class 1
    against class 0), exactly LogisticRegression's binary model: ``coef_``
    has shape (1, n_features).

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse regularization strength; ``np.inf`` for no penalty.
    l1_ratio : float in [0, 1], default=0.0
        Elastic-net mixing, as in LogisticRegression: the penalty becomes
        ``(l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_F^2) / (C S)``.
        0 is the pure L2 penalty of the objective (see Notes), 1 pure L1.
        L-BFGS solves the split ``W = P - N``, ``P, N >= 0``; SGD/Adam take
        proximal (soft-threshold) steps. Both give exact zeros.
    solver : {"lbfgs", "sgd", "adam"}, default="lbfgs"
        ``"lbfgs"``: scipy's L-BFGS-B on the full data. ``"sgd"``: minibatch
        SGD with momentum. ``"adam"``: minibatch Adam.
    fit_intercept : bool, default=True
        Whether to fit the intercept ``b``.
    tol : float >= 0, default=1e-4
        L-BFGS: stop when the largest entry of the gradient of J with
        respect to ``coef_`` and ``intercept_`` (projected on the bounds of
        the L1 split) is at most ``tol``, as LogisticRegression's ``gtol``;
        with ``precondition=True`` it is still measured in these original
        variables, so the same ``tol`` means the same. L-BFGS also stops,
        as LogisticRegression does, when one iteration reduces J by less
        than ``64 * eps`` relative (about 1.4e-14): J is then at its
        minimum within float64 rounding, and the gradient cannot be told
        apart from zero by J. That floor is about 1e-8 for standardized
        features and higher for features of large scale (measured: 1.7e-8
        on iris, 1.4e-5 on the raw wine data); a ``tol`` below it stops
        there, counted as converged, without a warning. With
        ``precondition=True``, a stop on that rule while the gradient in
        the scaled variables is still above 1e-6 (a stall of L-BFGS-B's
        curvature pairs, not the floor) starts L-BFGS again from there, up
        to 5 times. SGD/Adam: training stops when the objective (or, with
        ``early_stopping``, the validation score) has improved by less than
        ``tol`` in total over more than ``n_iter_no_change`` epochs. Unlike
        MLPClassifier, which compares each epoch with the best one before it,
        a steady decrease of less than ``tol`` per epoch adds up and counts
        when it reaches ``tol`` within ``n_iter_no_change + 1`` epochs (at
        least ``tol / 11`` per epoch at the defaults): a fit still on its way
        runs on, to ``max_iter`` and a ConvergenceWarning if need be, rather
        than stopping silently short of the optimum. A slower decrease still
        counts as converged. With ``average=True`` the stop is confirmed on
        the reported average: the epoch objective is that of the moving
        iterates, which a constant step keeps in a noise ball, so when it
        stops improving J at the average is computed (a pass over the data,
        two the first time) and training goes on while it fell by ``tol``
        since the last improvement.
    max_iter : int >= 1, default=100
        L-BFGS iterations, or epochs for SGD and Adam.
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplied into the sample weights.
    label_smoothing : float in [0, 1), default=0.0
        The target becomes ``(1 - eps) * onehot + eps / n_classes``.
    batch_size : int >= 1 or "auto", default="auto"
        Minibatch size for SGD/Adam; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning rate schedule of SGD, as in MLPClassifier (``adaptive``
        divides the step by 5 where the stopping rule of ``tol`` would stop).
    learning_rate_init : float > 0 or "auto", default="auto"
        Initial step size of SGD and Adam. ``"auto"`` derives it from the
        data: for SGD, ``(1 - momentum) / L_B`` with ``L_B`` a bound on the
        smoothness of a minibatch's objective in the preconditioned variables
        (half the top eigenvalue of the features' second moment plus one for
        the intercept, moving toward half the largest squared row norm as
        the batch shrinks; the L2 term is taken by a proximal step); for
        Adam, ``0.7`` over the mean L1 norm of the rows in the
        preconditioned variables, at most 0.1 (one step then moves an
        average row's logits by about 0.7). ``partial_fit`` fixes it on its
        first call. Dask and memmap input estimate the top eigenvalue and
        the mean row norm on their first chunk and take the largest row norm
        over every chunk (one more pass over X).
    power_t : float >= 0, default=0.5
        Exponent of the ``invscaling`` schedule.
    momentum : float in [0, 1], default=0.9
        Momentum of SGD. When one minibatch holds all the training rows (one
        step per epoch, as ``batch_size="auto"`` gives up to 200 rows) and
        they are in memory or in one chunk, an epoch whose objective rose
        drops the momentum (an adaptive restart), which would otherwise swing
        the iterates past the optimum and back.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum in SGD.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float > 0, default=1e-8
        Adam's numerical stability constant.
    shuffle : bool, default=True
        Shuffle the samples every epoch (SGD/Adam).
    early_stopping : bool, default=False
        SGD/Adam: hold out ``validation_fraction`` of the data (stratified),
        stop when its score stops improving and restore the best parameters
        (the iterate of the best epoch, not averaged). Not for
        ``partial_fit``, which raises, as MLPClassifier's does.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int >= 1 or np.inf, default=10
        SGD/Adam: epochs without an improvement of ``tol`` (counted from the
        last epoch that improved, see ``tol``) before stopping; ``np.inf``
        runs all ``max_iter`` epochs.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the validation split.
    warm_start : bool, default=False
        Start from the previous solution of ``fit``.
    verbose : int, default=0
        1 prints one line per iteration or epoch with the objective and the
        elapsed time; 2 adds learning rates and validation scores.
    callback : callable or None, default=None
        Called after every iteration or epoch as ``callback(estimator, info)``
        with ``info`` a dict holding ``iteration``, ``objective`` and
        ``elapsed`` (seconds). Returning True stops training.
    device : {"cpu", "cuda"} or None, default=None
        Where the arithmetic runs. None follows the input: NumPy stays on the
        CPU, and a CuPy array, torch tensor or any Array API array stays in
        its namespace and on its device. ``"cuda"`` runs on the GPU through
        CuPy even for NumPy input (X moves to the GPU once; L-BFGS moves only
        the parameters and gradient per evaluation). Fitted attributes and
        outputs always come back in the namespace and device of the input, so
        a model fitted from NumPy pickles and predicts without a GPU.
    precondition : bool, default=True
        Let the solvers work in scaled variables: each weight times its
        feature's scale (standard deviation; root mean square for sparse
        input or without an intercept; with an L2 penalty
        ``sqrt(scale^2 + 4 / (C S))``) and, for dense input with an
        intercept, the intercept absorbing ``W @ mean``, so that every
        feature looks standardized to the solver. X is neither copied nor
        changed and the objective J, its optimum and the meaning of ``tol``
        stay the same; only the path changes, which converges in far fewer
        iterations on features of different scales or far from zero. Costs
        one pass over X for the statistics. L-BFGS then also keeps 20
        curvature pairs instead of 10 (10 where the extra pairs would take
        over 256 MiB). Set False to reproduce earlier versions' iterates
        (LogisticRegression's L-BFGS path), or to skip that pass on
        standardized data.
    average : bool, default=True
        SGD/Adam: report the polynomial-decay average of the iterates
        (Shamir and Zhang, 2013; the weight of step ``t`` grows as ``t^3``,
        so the last part of the run dominates) instead of the last iterate.
        With a constant step it removes most of the noise the last iterate
        keeps around the optimum. Not used with ``l1_ratio > 0``, where the
        last proximal iterate keeps exact zeros an average would lose, nor
        with ``early_stopping``, which restores the best epoch's iterate.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Weights; one row for binary problems.
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Intercepts (zeros when ``fit_intercept=False``).
    n_iter_ : int
        Iterations (L-BFGS) or epochs (SGD/Adam) run by the last fit.
    loss_curve_ : list of float
        The objective J after each L-BFGS iteration; for SGD/Adam the epoch's
        weighted mean of the minibatch estimates of J.
    best_loss_ : float
        The lowest value in ``loss_curve_``.
    best_validation_score_ : float or None
        The best validation score with ``early_stopping``, else None.
    validation_scores_ : list of float or None
        Validation accuracy per epoch with ``early_stopping``, else None.
    temperature_ : float
        Divides the logits in ``predict_proba`` and ``predict_log_proba``; 1.0
        after ``fit``, set on held-out data by :meth:`calibrate_temperature`.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : the same model and objective.
    SoftmaxRegressionCV : ``C`` chosen by cross-validation.

    Notes
    -----
    Every solver minimizes the same objective, LogisticRegression's:

    .. math::

        J(W, b) = \frac{1}{S} \sum_i s_i \, \mathrm{CE}_i
                  + \frac{\lVert W \rVert_F^2}{2 C S},
        \qquad
        \mathrm{CE}_i = \log \sum_k e^{o_{ik}} - \sum_k y_{ik} o_{ik},

    where ``s_i`` is the sample weight times the class weight and
    ``S = sum_i s_i``. The intercept is not penalized.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sksoftmax import SoftmaxRegressionClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxRegressionClassifier(C=10.0, max_iter=1000).fit(X, y)
    >>> clf.coef_.shape
    (3, 4)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> clf.predict_proba(X[:1]).round(3)
    array([[0.997, 0.003, 0.   ]])

    An L1 penalty (``l1_ratio=1``) zeroes some weights exactly:

    >>> sparse = SoftmaxRegressionClassifier(C=0.05, l1_ratio=1.0).fit(X, y)
    >>> int((sparse.coef_ == 0).sum()) > 0
    True
    """

    # The "?" link of the HTML representation (Jupyter) opens the API docs.
    _doc_link_module = "sksoftmax"
    _doc_link_template = property(lambda self: doc_link_template())
    _doc_link_url_param_generator = doc_link_params

    _parameter_constraints = {
        # closed on the right so that C=np.inf (no penalty) is accepted.
        "C": [Interval(Real, 0, None, closed="right")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "callback": [callable, None],
        "device": [StrOptions({"cpu", "cuda"}), None],
        "precondition": ["boolean"],
        "average": ["boolean"],
    }

    def __init__(
        self,
        C=1.0,
        *,
        l1_ratio=0.0,
        solver="lbfgs",
        fit_intercept=True,
        tol=1e-4,
        max_iter=100,
        class_weight=None,
        label_smoothing=0.0,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init="auto",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        warm_start=False,
        verbose=0,
        callback=None,
        device=None,
        precondition=True,
        average=True,
    ):
        self.C = C
        self.l1_ratio = l1_ratio
        self.solver = solver
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.callback = callback
        self.device = device
        self.precondition = precondition
        self.average = average

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        tags.array_api_support = True
        return tags

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` and labels or label distributions ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 stays float32; CSR/CSC is never densified.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or rows of class probabilities (soft labels, each
            row non-negative and summing to one).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights per sample.

        Returns
        -------
        self : SoftmaxRegressionClassifier
            The fitted estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = SoftmaxRegressionClassifier().fit(X, [0, 0, 1, 1])
        >>> clf.coef_.shape, clf.n_iter_ > 0
        ((1, 1), True)
        """
        with self._keep_state_on_failure():
            fitted = hasattr(self, "classes_")
            keep_classes = (
                self.warm_start and fitted and unnamed_soft_labels(y, self.classes_)
            )
            data = self._training_data(
                X,
                y,
                sample_weight,
                reset=True,
                classes=self.classes_ if keep_classes else None,
            )
            result = train(
                data,
                self.get_params(),
                previous=self._previous() if fitted else None,
                callback=self._callback(),
            )
            self._store(result, data.place)
        return self

    @available_if(_is_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One SGD/Adam pass over a batch (online, true multinomial learning).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels of the batch (it may lack some classes), or soft labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call, ignored after.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights per sample.

        Returns
        -------
        self : SoftmaxRegressionClassifier
            The updated estimator.

        Notes
        -----
        The penalty is ``||W||^2 / (2 C S)`` with ``S`` the total weight of
        all samples passed so far, so a stream minimizes J over everything
        it has seen, as ``fit`` would on the concatenation. Data passed again
        counts again: ``N`` passes over the same data head to ``fit``'s model
        at ``C * N``, so pass ``C / N`` to end at ``fit``'s model at ``C``.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> clf = SoftmaxRegressionClassifier(solver="sgd", learning_rate_init=0.1)
        >>> X = np.array([[0.0], [1.0], [2.0]])
        >>> clf = clf.partial_fit(X, [0, 1, 2], classes=[0, 1, 2])
        >>> clf = clf.partial_fit(X[:1], [0])
        >>> clf.coef_.shape
        (3, 1)
        """
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: a single pass "
                "has no epochs to stop between. Use fit, or early_stopping=False."
            )
        first = not hasattr(self, "classes_")
        check_partial_fit_call(
            classes, None if first else self.classes_, self.class_weight
        )
        with self._keep_state_on_failure():
            data = self._training_data(
                X,
                y,
                sample_weight,
                reset=first,
                classes=None if first else self.classes_,
                given_classes=classes if first else None,
            )
            result = train(
                data,
                self.get_params(),
                previous=None if first else self._previous(),
                incremental=not first,
                single_pass=True,
                callback=self._callback(),
            )
            self._store(result, data.place)
        return self

    def calibrate_temperature(self, X, y, sample_weight=None):
        r"""Fit the temperature ``T`` of :meth:`predict_proba` on held-out data.

        Finds the scalar ``T > 0`` that minimizes the held-out negative
        log-likelihood of ``softmax(O / T)``, with ``O`` the logits of the
        fitted model, and stores it in ``temperature_``:

        .. math::

            T = \arg\min_{T > 0} \frac{1}{S} \sum_i s_i \Big(
                \log \sum_k e^{o_{ik} / T} - \sum_k y_{ik} \, o_{ik} / T\Big).

        ``T > 1`` softens an overconfident model, ``T < 1`` sharpens an
        underconfident one. ``predict``, ``decision_function`` and the
        coefficients are unchanged; ``fit`` and ``partial_fit`` reset ``T``
        to 1. This is temperature scaling (Guo et al., 2017), the same model
        as ``CalibratedClassifierCV(FrozenEstimator(clf),
        method="temperature")``, whose ``beta_`` is ``1 / T`` (``1 / (2 T)``
        for two classes, where it scales the logits ``(-o, o)``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Held-out data, not used by ``fit``.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels among ``classes_``, or rows of class probabilities.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the held-out samples.

        Returns
        -------
        self : SoftmaxRegressionClassifier
            The estimator, with ``temperature_`` set.

        Warns
        -----
        sksoftmax.TemperatureBoundWarning
            When ``T`` ends at a bound of ``[exp(-10), exp(10)]``: at the lower
            one the model separates the calibration set perfectly (calibrate
            on more held-out data it does not fit perfectly, or keep
            ``T = 1``); at the upper one its logits say nothing about these
            labels.

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.model_selection import train_test_split
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X, y = make_classification(n_samples=400, n_informative=4, n_classes=3,
        ...                            flip_y=0.2, random_state=0)
        >>> X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, random_state=0)
        >>> clf = SoftmaxRegressionClassifier(C=1e4).fit(X_fit, y_fit)
        >>> clf.temperature_
        1.0
        >>> clf = clf.calibrate_temperature(X_cal, y_cal)
        >>> bool(clf.temperature_ > 1.0)  # the unregularized fit was overconfident
        True
        """
        logits, xp, _ = self._logits(X, "calibrate_temperature")
        target, sw = held_out_targets(y, sample_weight, logits, self.classes_)
        self.temperature_ = fit_temperature(logits, target, sw, xp=xp)
        return self

    @contextmanager
    def _keep_state_on_failure(self):
        """Undo every attribute change of a fit that raises (including a
        KeyboardInterrupt): validate_data sets n_features_in_ and
        feature_names_in_ before the solver has run."""
        saved = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    # ------------------------------------------- validate, train, store

    def _training_data(
        self, X, y, sample_weight, *, reset, classes=None, given_classes=None
    ):
        data = validate_training_data(
            X,
            y,
            sample_weight,
            solver=self.solver,
            class_weight=self.class_weight,
            early_stopping=self.early_stopping,
            batch_size=self.batch_size,
            device_param=self.device,
            classes=classes,
            given_classes=given_classes,
            estimator_name=type(self).__name__,
        )
        # n_features_in_ and feature_names_in_, from X as the user passed it.
        validate_data(self, X, reset=reset, skip_check_array=True)
        return data

    def _previous(self):
        """The fitted state a warm start or a partial_fit continues from."""
        return Previous(
            coef=to_numpy(self.coef_),
            intercept=to_numpy(self.intercept_),
            classes=self.classes_,
            seen_weight=self._seen_weight,
            n_iter=self.n_iter_,
            loss_curve=self.loss_curve_,
            optimizer_state=getattr(self, "_optimizer_state", None),
            rng=getattr(self, "_rng", None),
        )

    def _callback(self):
        if self.callback is None:
            return None
        return lambda info: self.callback(self, info)

    def _store(self, result, place):
        """Swap the new state in, all at once, only after the solver succeeded.
        Everything stored is in the namespace and on the device of the input."""
        W, b = result.coef, result.intercept
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise FloatingPointError(
                "The solver produced non-finite coefficients; the previous model "
                "is kept. Lower learning_rate_init, scale the features or raise "
                "the regularization (smaller C)."
            )
        state = {
            "classes_": result.classes,
            "coef_": place.to_input(W),
            "intercept_": place.to_input(b),
            "n_iter_": result.n_iter,
            "loss_curve_": result.loss_curve,
            "best_loss_": result.best_loss,
            "validation_scores_": result.validation_scores,
            "best_validation_score_": max(result.validation_scores)
            if result.validation_scores
            else None,
            "temperature_": 1.0,
            "_seen_weight": result.seen_weight,
        }
        if result.optimizer_state is not None:
            state["_optimizer_state"] = map_state(
                result.optimizer_state, place.to_input
            )
            state["_rng"] = result.rng
        self.__dict__.update(state)

    # ------------------------------------------------------------ predict

    def _checked_X(self, X, method, *, finite=True):
        """``X`` checked as ``fit`` checked it, in its own namespace. With
        ``finite=False`` dense NumPy-convertible input is not scanned for
        NaN or infinity here (the caller checks it another way)."""
        check_is_fitted(self)
        where = f"{type(self).__name__}.{method}"
        prediction.check_same_namespace(X, self.coef_, self.device, where)
        if is_foreign_array(X) or is_cupy_sparse(X):
            X_checked = validate_X(X)
            validate_data(self, X, reset=False, skip_check_array=True)
            return X_checked
        return validate_data(
            self,
            X,
            reset=False,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            ensure_all_finite=finite,
        )

    def _assert_finite(self, X):
        assert_all_finite(X, estimator_name=type(self).__name__, input_name="X")

    def _logits(self, X, method):
        """Logits of ``X`` where the arithmetic runs, the namespace there and
        the placement; checks ``X`` as ``fit`` did."""
        return self._logits_of(self._checked_X(X, method))

    def _logits_of(self, X_checked):
        return prediction.logits(
            X_checked, self.coef_, self.intercept_, len(self.classes_), self.device
        )

    def _map_dask(self, X, method):
        check_is_fitted(self)
        return prediction.map_dask(
            X, method, getattr(self, method), len(self.classes_), self.classes_.dtype
        )

    def decision_function(self, X):
        """Logits ``X W^T + b``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, 1-D: the logit of class 1 against class 0.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = SoftmaxRegressionClassifier().fit(X, [0, 0, 1, 1])
        >>> clf.decision_function(X).shape
        (4,)
        """
        if is_dask_collection(X):  # lazily, chunk by chunk on the workers
            return self._map_dask(X, "decision_function")
        logits, xp, place = self._logits(X, "decision_function")
        return place.to_input(logits[:, 1] if len(self.classes_) == 2 else logits)

    def predict_proba(self, X):
        """Class probabilities ``softmax(O / temperature_)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to one; columns follow ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = SoftmaxRegressionClassifier().fit(X, [0, 0, 1, 1])
        >>> clf.predict_proba(X).sum(axis=1)
        array([1., 1., 1., 1.])
        """
        if is_dask_collection(X):  # lazily, chunk by chunk on the workers
            return self._map_dask(X, "predict_proba")
        dense_cpu = (
            self.device in (None, "cpu")
            and not sp.issparse(X)
            and not (is_foreign_array(X) or is_cupy_sparse(X))
        )
        X_checked = self._checked_X(X, "predict_proba", finite=not dense_cpu)
        if dense_cpu and isinstance(X_checked, np.ndarray):
            # The blocked kernel checks its logits, which are non-finite
            # wherever X is: X is scanned for NaN/inf only then.
            return predict_proba_numpy(
                X_checked,
                to_numpy(self.coef_),
                to_numpy(self.intercept_),
                temperature=self.temperature_,
                on_nonfinite=lambda: self._assert_finite(X_checked),
            )
        if dense_cpu:
            self._assert_finite(X_checked)
        logits, xp, place = self._logits_of(X_checked)
        return place.to_input(
            softmax(logits, axis=1, temperature=self.temperature_, xp=xp)
        )

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably from the logits.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Finite even where a probability rounds to zero.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = SoftmaxRegressionClassifier().fit(X, [0, 0, 1, 1])
        >>> bool(np.all(clf.predict_log_proba(X) < 0))
        True
        """
        if is_dask_collection(X):  # lazily, chunk by chunk on the workers
            return self._map_dask(X, "predict_log_proba")
        logits, xp, place = self._logits(X, "predict_log_proba")
        if self.temperature_ != 1.0:
            logits = logits / self.temperature_
        return place.to_input(log_softmax(logits, axis=1, xp=xp))

    def predict(self, X):
        """The most probable class of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Entries of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> SoftmaxRegressionClassifier().fit(X, ["a", "a", "b", "b"]).predict(X)
        array(['a', 'a', 'b', 'b'], dtype='<U1')
        """
        if is_dask_collection(X):  # lazily, chunk by chunk on the workers
            return self._map_dask(X, "predict")
        logits, xp, place = self._logits(X, "predict")
        return prediction.labels(
            place.to_input(xp.argmax(logits, axis=1)), self.classes_
        )

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on ``X`` against ``y``.

        For soft labels (``y`` of shape (n_samples, n_classes)) it is
        :func:`sksoftmax.metrics.soft_accuracy_score`: the mean probability
        that each target row gives to the predicted class, which is the
        accuracy when the rows are one-hot. For the cross-entropy against
        soft labels use :data:`sksoftmax.metrics.neg_cross_entropy_scorer`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, in any namespace the model accepts.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            True labels, or rows of class probabilities.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights per sample.

        Returns
        -------
        score : float
            Weighted share of correct predictions (soft labels: weighted mean
            target probability of the predicted class).

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> SoftmaxRegressionClassifier().fit(X, [0, 0, 1, 1]).score(X, [0, 0, 1, 1])
        1.0
        """
        pred = to_numpy(self.predict(X))
        y = to_numpy(y) if is_foreign_array(y) else y
        if is_foreign_array(sample_weight):
            sample_weight = to_numpy(sample_weight)
        if np.ndim(y) == 2 and np.shape(y)[1] > 1:  # soft labels
            return soft_accuracy_score(
                y, pred, labels=self.classes_, sample_weight=sample_weight
            )
        return float(accuracy_score(y, pred, sample_weight=sample_weight))


def fit_warm_path(estimator, X, y, sample_weight, Cs, *, solver=None):
    """Fit ``estimator`` at each ``C`` of ``Cs`` in turn, each fit starting
    from the previous one; yields the estimator after each fit.

    Every step trains exactly as ``estimator.set_params(C=C,
    warm_start=True).fit(X, y, sample_weight=sample_weight)`` would after
    the previous step (the same validated data, the same start, the same
    solver and stopping rule), but the parameters, ``X``, ``y`` and
    ``sample_weight`` are checked, and the labels encoded, once for the
    whole path: :class:`~sksoftmax.SoftmaxRegressionCV` fits each fold's
    path of ``C`` this way. The estimator is left with ``warm_start=True``
    and the last ``C``.

    ``solver`` (optional) replaces the estimator's solver for the path:
    ``"newton"``, Newton's method with the exact Hessian, is offered here
    only, for small in-memory data (see :func:`newton_pays`).
    """
    estimator.warm_start = True
    params = estimator.get_params(deep=False)
    validate_parameter_constraints(
        estimator._parameter_constraints, params, type(estimator).__name__
    )
    if solver is not None:
        params["solver"] = solver
    # fit's own context (_fit_context): nested scikit-learn calls skip their
    # parameter checks.
    with config_context(skip_parameter_validation=True):
        data = estimator._training_data(X, y, sample_weight, reset=True)
    for C in Cs:
        params["C"] = estimator.C = C
        fitted = hasattr(estimator, "classes_")
        with config_context(skip_parameter_validation=True):
            result = train(
                data,
                params,
                previous=estimator._previous() if fitted else None,
                callback=estimator._callback(),
            )
        estimator._store(result, data.place)
        yield estimator
