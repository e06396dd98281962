"""SoftmaxRegressionClassifier: validate the input, build the loss and the
solver, store what comes back."""

import copy
import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._backend import (
    ComputeTarget,
    asarray_like,
    device,
    get_namespace,
    index_on_device,
    is_device_out_of_memory,
    is_foreign_array,
    take_rows,
    to_numpy,
)
from ._calibration import fit_temperature
from ._chunked import fit_memmap, memmap_block_rows
from ._dask import fit_dask, is_dask_collection, partial_fit_dask
from ._functional import log_softmax, softmax
from ._loss import LinearSoftmaxLoss
from ._precondition import (
    ColumnStats,
    MinibatchSetup,
    block_curvature,
    fit_preconditioner,
)
from ._solvers import (
    MinibatchOptimizer,
    TrainingMonitor,
    minimize_lbfgs,
    run_minibatch_epochs,
)

_STOCHASTIC = ("sgd", "adam")


def _is_stochastic(estimator):
    return estimator.solver in _STOCHASTIC


class SoftmaxRegressionClassifier(ClassifierMixin, BaseEstimator):
    r"""Softmax (multinomial logistic) regression.

    The model is ``O = X W^T + b`` with class probabilities ``softmax(O)``.
    Every solver minimizes the same objective, LogisticRegression's:

    .. math::

        J(W, b) = \frac{1}{S} \sum_i s_i \, \mathrm{CE}_i
                  + \frac{\lVert W \rVert_F^2}{2 C S},
        \qquad
        \mathrm{CE}_i = \log \sum_k e^{o_{ik}} - \sum_k y_{ik} o_{ik},

    where ``s_i`` is the sample weight times the class weight and
    ``S = sum_i s_i``. The intercept is not penalized. With two classes the
    model has one logit (class 1 against class 0), exactly LogisticRegression's
    binary model: ``coef_`` has shape (1, n_features).

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse regularization strength; ``np.inf`` for no penalty.
    l1_ratio : float in [0, 1], default=0.0
        Elastic-net mixing, as in LogisticRegression: the penalty becomes
        ``(l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_F^2) / (C S)``.
        0 is the pure L2 penalty above, 1 pure L1. L-BFGS solves the split
        ``W = P - N``, ``P, N >= 0``; SGD/Adam take proximal (soft-threshold)
        steps. Both give exact zeros.
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
        there, counted as converged, without a warning. SGD/Adam: the
        improvement in objective (or validation score) below which an epoch
        counts as no improvement.
    max_iter : int >= 1, default=100
        L-BFGS iterations, or epochs for SGD and Adam.
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplied into the sample weights.
    label_smoothing : float in [0, 1), default=0.0
        The target becomes ``(1 - eps) * onehot + eps / n_classes``.
    batch_size : int >= 1 or "auto", default="auto"
        Minibatch size for SGD/Adam; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning rate schedule of SGD, as in MLPClassifier.
    learning_rate_init : float > 0 or "auto", default="auto"
        Initial step size of SGD and Adam. ``"auto"`` derives it from the
        data: for SGD, ``(1 - momentum) / L_B`` with ``L_B`` a bound on the
        smoothness of a minibatch's objective in the preconditioned variables
        (half the top eigenvalue of the features' second moment plus one for
        the intercept, moving toward half the largest squared row norm as
        the batch shrinks; the L2 term is taken by a proximal step); for
        Adam, 0.03 in the preconditioned (standardized) variables.
        ``partial_fit`` fixes it on its first call. Dask and memmap input
        estimate the curvature on their first chunk.
    power_t : float >= 0, default=0.5
        Exponent of the ``invscaling`` schedule.
    momentum : float in [0, 1], default=0.9
        Momentum of SGD.
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
        SGD/Adam: epochs without an improvement of ``tol`` before stopping;
        ``np.inf`` runs all ``max_iter`` epochs.
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
        feature's standard deviation (root mean square for sparse input or
        without an intercept) and, for dense input with an intercept, the
        intercept absorbing ``W @ mean``, so that every feature looks
        standardized to the solver. X is neither copied nor changed and the
        objective J, its optimum and the meaning of ``tol`` stay the same;
        only the path changes, which converges in far fewer iterations on
        features of different scales or far from zero. Costs one pass over X
        to compute the statistics. Set False to reproduce results of earlier
        versions step by step, or when the features are already
        standardized and that pass matters.
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
            if is_dask_collection(X):  # row chunks stay on the Dask workers
                return fit_dask(self, X, y, sample_weight)
            if (rows := memmap_block_rows(self, X)) is not None:  # from disk
                return fit_memmap(self, X, y, sample_weight, rows)
            X, target, classes, sw = self._validate_training_data(X, y, sample_weight)
            fitted = self._solve(X, target, classes, sw, incremental=False)
            self._store(fitted)
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
        if is_dask_collection(X):  # one pass over the chunks, on the workers
            return partial_fit_dask(self, X, y, classes, sample_weight)
        first = not hasattr(self, "classes_")
        if first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
        with self._keep_state_on_failure():
            X, target, classes, sw = self._validate_training_data(
                X,
                y,
                sample_weight,
                classes=None if first else self.classes_,
                given_classes=classes if first else None,
                reset=first,
            )
            fitted = self._solve(
                X, target, classes, sw, incremental=not first, single_pass=True
            )
            self._store(fitted)
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
        y = check_array(
            to_numpy(y) if is_foreign_array(y) else y,
            ensure_2d=False,
            dtype=None,
            input_name="y",
        )
        check_consistent_length(logits, y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        dtype = _numpy_float_dtype(logits)
        if y.ndim == 2:
            target, _ = self._soft_target(y, dtype, self.classes_, None)
        else:
            target, _ = self._encode_labels(y, self.classes_, None)
        target = asarray_like(
            target, logits, dtype=None if y.ndim == 2 else xp.int64, xp=xp
        )
        sw = None
        if sample_weight is not None:
            if is_foreign_array(sample_weight):
                sample_weight = to_numpy(sample_weight)
            sw = _check_sample_weight(
                sample_weight,
                np.empty((logits.shape[0], 0)),
                dtype=dtype,
                ensure_non_negative=True,
            )
            sw = asarray_like(sw, logits, xp=xp)
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

    # --------------------------------------------------------- validation

    def _validate_training_data(
        self, X, y, sample_weight, classes=None, given_classes=None, reset=True
    ):
        """Check everything before any work. Returns the data, the target
        (class codes or a distribution matrix), the classes and the weights
        (None, or sample_weight times class_weight)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        # check_array's "dim 3" message would not say it is about y.
        if getattr(y, "ndim", 0) > 2:
            raise ValueError(
                "y must hold one label per sample (1-D) or rows of class "
                f"probabilities (2-D); got an array of shape {tuple(y.shape)}."
            )
        if self._labels_stay_on_device(X, y, sample_weight, classes, given_classes):
            return self._validate_on_device(X, y, sample_weight, reset=reset)
        # Labels and weights are small: they are checked on the host, and only
        # moved to the compute device by _solve.
        y = to_numpy(y) if is_foreign_array(y) else y
        if is_foreign_array(sample_weight):
            sample_weight = to_numpy(sample_weight)
        if is_foreign_array(X):
            X = self._validate_foreign_X(X, reset=reset)
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
            check_consistent_length(X, y)
        else:
            X, y = validate_data(
                self,
                X,
                y,
                reset=reset,
                accept_sparse=["csr", "csc"],
                dtype=[np.float64, np.float32],
                multi_output=True,
                order="C",
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim == 2:
            target, classes = self._soft_target(
                y, _numpy_float_dtype(X), classes, given_classes
            )
            codes = None
        else:
            codes, classes = self._encode_labels(y, classes, given_classes)
            target = codes
        sw = None
        np_dtype = _numpy_float_dtype(X)
        if sample_weight is not None:
            sw = _check_sample_weight(
                sample_weight,
                np.empty((X.shape[0], 0)),
                dtype=np_dtype,
                ensure_non_negative=True,
            )
        if self.class_weight is not None:
            cw = self._class_weight_vector(classes, codes, target)
            per_sample = cw[codes] if codes is not None else target @ cw
            # cw is float64: keep float32 data's weights (and so its fit) float32.
            if str(X.dtype).endswith("float32"):
                per_sample = per_sample.astype(np.float32)
            sw = per_sample if sw is None else sw * per_sample
        if sw is not None and not np.any(sw > 0):
            raise ValueError(
                "The sample weights (times class weights) are all zero; "
                "at least one sample needs a positive weight."
            )
        return X, target, classes, sw

    def _labels_stay_on_device(self, X, y, sample_weight, classes, given_classes):
        """The common GPU case, labels beside X on its device, is checked there:
        a million labels need not cross to the host and back. Soft labels,
        class weights and partial_fit's known classes take the host path."""
        if classes is not None or given_classes is not None:
            return False
        if self.class_weight is not None or not is_foreign_array(X):
            return False
        xp = get_namespace(X)
        same = [a for a in (y, sample_weight) if a is not None]
        return all(
            is_foreign_array(a)
            and get_namespace(a) is xp
            and device(a) == device(X)
            and a.ndim == 1
            for a in same
        )

    def _validate_on_device(self, X, y, sample_weight, *, reset):
        """Device-side twin of the host checks for 1-D labels and weights."""
        xp = get_namespace(X)
        X = self._validate_foreign_X(X, reset=reset)
        n = X.shape[0]
        for name, a in (("y", y), ("sample_weight", sample_weight)):
            if a is not None and a.shape[0] != n:
                raise ValueError(
                    f"Found input variables with inconsistent numbers of samples: "
                    f"X has {n}, {name} has {a.shape[0]}."
                )
        if xp.isdtype(y.dtype, "real floating"):
            if not bool(xp.all(xp.isfinite(y))):
                raise ValueError("Input y contains NaN or infinity.")
            if not bool(xp.all(y == xp.round(y))):
                raise ValueError(
                    "Unknown label type: continuous. Classification needs discrete "
                    "labels, or a 2-D y of class probabilities."
                )
        elif not xp.isdtype(y.dtype, ("integral", "bool")):
            raise ValueError(f"Unsupported label dtype {y.dtype}.")
        uniques = xp.sort(xp.unique_values(y))
        classes = to_numpy(uniques)
        if classes.shape[0] < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes[0]!r}."
            )
        codes = xp.searchsorted(uniques, y)
        sw = None
        if sample_weight is not None:
            sw = xp.astype(sample_weight, X.dtype)
            if not bool(xp.all(xp.isfinite(sw))):
                raise ValueError("Input sample_weight contains NaN or infinity.")
            if bool(xp.any(sw < 0)):
                raise ValueError("Negative values in data passed to sample_weight.")
            if not bool(xp.any(sw > 0)):
                raise ValueError(
                    "The sample weights (times class weights) are all zero; at least "
                    "one sample needs a positive weight."
                )
        return X, codes, classes, sw

    def _validate_foreign_X(self, X, *, reset):
        """Check a non-NumPy Array API ``X`` in its own namespace and device."""
        xp = get_namespace(X)
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-D array for X, got a {X.ndim}-D array of shape "
                f"{tuple(X.shape)}."
            )
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(
                f"Found array with shape {tuple(X.shape)}: at least one sample and "
                "one feature are required."
            )
        if not xp.isdtype(X.dtype, "real floating"):
            if not xp.isdtype(X.dtype, ("integral", "bool")):
                raise ValueError(f"X must hold real numbers, got dtype {X.dtype}.")
            X = xp.astype(X, xp.float64 if _has_float64(xp, X) else xp.float32)
        if not bool(xp.all(xp.isfinite(X))):
            raise ValueError("Input X contains NaN or infinity.")
        validate_data(self, X, reset=reset, skip_check_array=True)
        return X

    def _encode_labels(self, y, classes, given_classes):
        check_classification_targets(y)
        if classes is None and given_classes is None:
            encoder = LabelEncoder().fit(y)
            classes = encoder.classes_
            if classes.shape[0] < 2:
                raise ValueError(
                    "This solver needs samples of at least 2 classes in the data, "
                    f"but the data contains only one class: {classes[0]!r}."
                )
            return encoder.transform(y), classes
        if given_classes is not None:
            classes = np.unique(np.asarray(given_classes))
            if classes.shape[0] < 2:
                raise ValueError(
                    f"classes must hold at least 2 classes, got {classes.tolist()!r}."
                )
        unseen = np.setdiff1d(np.unique(y), classes)
        if unseen.size:
            raise ValueError(
                f"y holds labels {unseen.tolist()!r} that are not in classes "
                f"{classes.tolist()!r}."
            )
        return np.searchsorted(classes, y), classes

    def _soft_target(self, Y, dtype, classes, given_classes):
        if not np.issubdtype(Y.dtype, np.number) or np.issubdtype(
            Y.dtype, np.complexfloating
        ):
            raise ValueError(
                "A 2-D y must hold class probabilities (real numbers), got dtype "
                f"{Y.dtype}; multi-output targets are not supported."
            )
        Y = np.asarray(Y, dtype=dtype)
        n_classes = Y.shape[1]
        if given_classes is not None and len(given_classes) != n_classes:
            raise ValueError(
                f"classes has {len(given_classes)} entries but y has {n_classes} "
                "columns of class probabilities."
            )
        if classes is not None and classes.shape[0] != n_classes:
            raise ValueError(
                f"y has {n_classes} columns of class probabilities; the model was "
                f"fitted with {classes.shape[0]} classes."
            )
        if n_classes < 2:
            raise ValueError("Soft labels need at least 2 class columns.")
        tol = np.sqrt(np.finfo(dtype).eps) * 10
        sums = Y.sum(axis=1)
        if np.any(Y < 0) or np.any(np.abs(sums - 1) > tol):
            if np.all((Y == 0) | (Y == 1)):
                raise ValueError(
                    "y looks like a multi-label indicator matrix; multi-label "
                    "targets are not supported. Pass one label per sample, or "
                    "rows of class probabilities that sum to 1."
                )
            raise ValueError(
                "Each row of a 2-D y must be a probability distribution: "
                f"non-negative and summing to 1 (within {tol:.1e}). "
                f"Found row sums in [{sums.min():.6g}, {sums.max():.6g}] and "
                f"minimum entry {Y.min():.6g}."
            )
        return Y, np.arange(n_classes)

    def _class_weight_vector(self, classes, codes, target):
        if self.class_weight == "balanced":
            if codes is None:  # soft labels: expected class counts
                counts = target.sum(axis=0)
                return target.shape[0] / (len(classes) * np.maximum(counts, 1e-12))
            present = np.unique(codes)
            cw = np.ones(len(classes))
            cw[present] = compute_class_weight("balanced", classes=present, y=codes)
            return cw
        unknown = [k for k in self.class_weight if k not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight has keys {unknown!r} that are not classes; the "
                f"classes are {classes.tolist()!r}."
            )
        cw = np.array(
            [self.class_weight.get(c, 1.0) for c in classes.tolist()], dtype=np.float64
        )
        if not np.all(np.isfinite(cw) & (cw >= 0)):
            raise ValueError(
                "class_weight values must be finite and non-negative; got "
                f"{self.class_weight!r}."
            )
        return cw

    # -------------------------------------------------------------- solving

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    def _initial_params(self, loss, X, classes, incremental):
        """Zeros, or the previous solution for warm_start / partial_fit."""
        k, d = loss.n_logits, loss.n_features
        W = np.zeros((k, d), dtype=np.float64)
        b = np.zeros(k, dtype=np.float64)
        reuse = (incremental or self.warm_start) and hasattr(self, "coef_")
        if (
            reuse
            and self.coef_.shape == (k, d)
            and np.array_equal(self.classes_, classes)
        ):
            W[...] = to_numpy(self.coef_)
            b[...] = to_numpy(self.intercept_)
        return W, b

    def _solve(self, X, target, classes, sw, *, incremental, single_pass=False):
        """Run the solver; return the new fitted state without storing it."""
        place = ComputeTarget(self.device, X)
        dtype = _numpy_float_dtype(X)
        X = place.to_compute(X)
        target = place.to_compute(target, dtype=None if target.ndim == 1 else X.dtype)
        sw = place.to_compute(sw, dtype=X.dtype)
        try:
            fitted = self._run_solver(X, target, classes, sw, incremental, single_pass)
        except Exception as exc:
            if not is_device_out_of_memory(exc):
                raise
            n, d = X.shape
            k = len(classes)
            itemsize = np.dtype(dtype).itemsize
            raise MemoryError(
                f"The device ran out of memory fitting X of shape ({n}, {d}) "
                f"({n * d * itemsize / 2**30:.2f} GiB) with {k} classes: each "
                f"n x K temporary takes {n * k * itemsize / 2**30:.2f} GiB. Use "
                "float32 input, a smaller batch_size (sgd/adam), or lower "
                "sklearn.set_config(working_memory=...) so that L-BFGS evaluates "
                "the loss in smaller row chunks."
            ) from exc
        return (*fitted, place, dtype)

    def _run_solver(self, X, target, classes, sw, incremental, single_pass):
        n, d = X.shape
        S_batch = float(n if sw is None else get_namespace(sw).sum(sw))
        S = S_batch + (self._seen_weight if incremental else 0.0)
        strength = 0.0 if np.isinf(self.C) else 1.0 / (self.C * S)
        alpha, l1 = (1.0 - self.l1_ratio) * strength, self.l1_ratio * strength
        loss = LinearSoftmaxLoss(
            len(classes),
            d,
            fit_intercept=self.fit_intercept,
            alpha=alpha,
            label_smoothing=self.label_smoothing,
        )
        W0, b0 = self._initial_params(loss, X, classes, incremental)
        monitor = TrainingMonitor(
            self,
            verbose=self.verbose,
            callback=self.callback,
            start_iter=self.n_iter_ if incremental else 0,
        )
        if self.solver == "lbfgs":
            coef0 = np.concatenate([W0.ravel(), b0 if self.fit_intercept else []])
            res = minimize_lbfgs(
                loss,
                coef0,
                X,
                target,
                sw,
                max_iter=self.max_iter,
                tol=self.tol,
                monitor=monitor,
                l1=l1,
                preconditioner=fit_preconditioner(
                    X,
                    sw,
                    fit_intercept=self.fit_intercept,
                    alpha=alpha,
                    enabled=self.precondition,
                ),
            )
            W, b = loss.unpack(res.W)
            # scipy works in float64; float32 data gets float32 parameters.
            if str(X.dtype).endswith("float32"):
                W = W.astype(np.float32)
                b = None if b is None else b.astype(np.float32)
            res.W, res.b = W, b
            if res.state["status"] == 1:
                warnings.warn(
                    f"lbfgs failed to converge after {res.n_iter} iteration(s) "
                    f"(max_iter={self.max_iter}). Increase max_iter or scale the "
                    "data.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
            elif res.state["status"] not in (0, 99):  # 99: stopped by callback
                warnings.warn(
                    f"lbfgs stopped abnormally after {res.n_iter} iteration(s) "
                    f"(status={res.state['status']}: {res.state['message']}); the "
                    "model may be far from the optimum. Scale the data or "
                    "raise the regularization (smaller C).",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        else:
            res = self._run_stochastic(
                loss, X, target, sw, W0, b0, monitor, incremental, single_pass, l1=l1
            )
        if incremental:
            res.loss_curve = list(self.loss_curve_) + res.loss_curve
            res.n_iter += self.n_iter_
        return loss, classes, res, S

    def _run_stochastic(
        self, loss, X, target, sw, W0, b0, monitor, incremental, single_pass, l1=0.0
    ):
        rng = check_random_state(self.random_state)
        if incremental:
            rng = copy.deepcopy(self._rng)  # advanced only if the fit succeeds
        validation = None
        if self.early_stopping and not single_pass:
            X, target, sw, validation = self._split_validation(X, target, sw, rng)
        prev = self._optimizer_state if incremental else None
        setup = MinibatchSetup(
            loss,
            W0,
            b0,
            solver=self.solver,
            precondition=self.precondition,
            learning_rate_init=self.learning_rate_init,
            batch_size=self._batch_size(X.shape[0]),
            momentum=self.momentum,
            n_samples=X.shape[0],
            stats=lambda: ColumnStats().update(X, sw),
            curvature=lambda pre: block_curvature(X, pre, sw),
            like=X,
            state=prev,
        )
        # An average of proximal iterates loses their exact zeros.
        use_average = self.average and not l1 and validation is None
        optimizer = MinibatchOptimizer(
            self.solver,
            learning_rate_init=setup.learning_rate_init,
            learning_rate=self.learning_rate,
            power_t=self.power_t,
            momentum=self.momentum,
            nesterovs_momentum=self.nesterovs_momentum,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            # A copy: the optimizer rebinds the entries of its state dict.
            state=setup.optimizer_state(prev),
            l1=setup.l1_weights(l1),
            l2=setup.l2_weights(),
            average=use_average,
        )
        res = run_minibatch_epochs(
            setup.loss,
            X,
            target,
            sw,
            setup.V0,
            setup.c0,
            optimizer=optimizer,
            batch_size=self._batch_size(X.shape[0]),
            max_iter=1 if single_pass else self.max_iter,
            shuffle=self.shuffle,
            rng=rng,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            monitor=monitor,
            validation=validation,
        )
        setup.finish(res, use_average=use_average)
        res.rng = rng
        if not res.converged and not single_pass:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        curve = res.loss_curve
        # Diverging steps stop by "no improvement" and would pass as converged.
        if curve and not curve[-1] <= 10 * curve[0] + 1:
            warnings.warn(
                f"Stochastic optimizer diverged: the objective went from "
                f"{curve[0]:.6g} to {curve[-1]:.6g}. Lower learning_rate_init, "
                "scale the features or raise C.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return res

    def _split_validation(self, X, target, sw, rng):
        """Stratified hold-out split; the data stay on their device."""
        stratify = to_numpy(target) if target.ndim == 1 else None
        idx = np.arange(X.shape[0])
        try:
            tr, va = train_test_split(
                idx,
                test_size=self.validation_fraction,
                random_state=rng,
                stratify=stratify,
            )
        except ValueError:  # a class too small to stratify
            tr, va = train_test_split(
                idx, test_size=self.validation_fraction, random_state=rng
            )
        if len(va) < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves "
                f"{len(va)} validation sample(s); use more data or a larger "
                "fraction, or early_stopping=False."
            )
        xp = get_namespace(X)
        tr, va = index_on_device(tr, X, xp), index_on_device(va, X, xp)
        sw_tr = None if sw is None else take_rows(sw, tr, xp)
        return (
            take_rows(X, tr, xp),
            take_rows(target, tr, xp),
            sw_tr,
            (take_rows(X, va, xp), take_rows(target, va, xp)),
        )

    def _store(self, fitted):
        """Swap the new state in, all at once, only after the solver succeeded."""
        loss, classes, res, S, place, dtype = fitted
        W = to_numpy(res.W)
        b = to_numpy(res.b) if res.b is not None else np.zeros(W.shape[0])
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise FloatingPointError(
                "The solver produced non-finite coefficients; the previous model "
                "is kept. Lower learning_rate_init, scale the features or raise "
                "the regularization (smaller C)."
            )
        state = {
            "classes_": classes,
            "coef_": place.to_input(np.ascontiguousarray(W, dtype=dtype)),
            "intercept_": place.to_input(np.asarray(b, dtype=dtype)),
            "n_iter_": int(res.n_iter),
            "loss_curve_": [float(v) for v in res.loss_curve],
            "best_loss_": float(min(res.loss_curve))
            if res.loss_curve
            else res.best_loss,
            "validation_scores_": res.validation_scores,
            "best_validation_score_": max(res.validation_scores)
            if res.validation_scores
            else None,
            "temperature_": 1.0,
            "_seen_weight": S,
        }
        if self.solver in _STOCHASTIC:
            state["_optimizer_state"] = res.state
            state["_rng"] = res.rng
        self.__dict__.update(state)

    # ------------------------------------------------------------ predict

    def _validated_X(self, X, method):
        check_is_fitted(self)
        _check_same_namespace(X, self, method)
        if is_foreign_array(X):
            return self._validate_foreign_X(X, reset=False)
        return validate_data(
            self,
            X,
            reset=False,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
        )

    def _logits(self, X, method):
        """Full logits (n, n_classes) where the arithmetic runs (binary gets the
        zero column of class 0), the namespace there, and the placement."""
        X = self._validated_X(X, method)
        place = ComputeTarget(self.device, X)
        X = place.to_compute(X)
        xp = get_namespace(X)
        W = asarray_like(to_numpy(self.coef_), X, xp=xp)
        b = asarray_like(to_numpy(self.intercept_), X, xp=xp)
        loss = LinearSoftmaxLoss(len(self.classes_), W.shape[1])
        return loss.logits(X, W, b, xp=xp), xp, place

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
        logits, xp, place = self._logits(X, "predict_proba")
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
        logits, xp, place = self._logits(X, "predict")
        codes = place.to_input(xp.argmax(logits, axis=1))
        if not is_foreign_array(codes) or not np.issubdtype(
            self.classes_.dtype, np.number
        ):
            return self.classes_[to_numpy(codes)]
        in_xp = get_namespace(codes)
        classes = in_xp.asarray(self.classes_, device=device(codes))
        return in_xp.take(classes, codes, axis=0)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on ``X`` against ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, in any namespace the model accepts.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights per sample.

        Returns
        -------
        score : float
            Weighted share of correct predictions.

        Examples
        --------
        >>> import numpy as np
        >>> from sksoftmax import SoftmaxRegressionClassifier
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> SoftmaxRegressionClassifier().fit(X, [0, 0, 1, 1]).score(X, [0, 0, 1, 1])
        1.0
        """
        pred = to_numpy(self.predict(X))
        return float(
            accuracy_score(
                to_numpy(y) if is_foreign_array(y) else y,
                pred,
                sample_weight=to_numpy(sample_weight)
                if is_foreign_array(sample_weight)
                else sample_weight,
            )
        )


def _numpy_float_dtype(X):
    """The NumPy float dtype matching ``X``'s (any namespace)."""
    return np.float32 if "float32" in str(X.dtype) else np.float64


def _has_float64(xp, X):
    try:
        xp.zeros(1, dtype=xp.float64, device=device(X))
    except Exception:  # e.g. Apple MPS supports float32 only
        return False
    return True


def _check_same_namespace(X, estimator, method):
    """Under array API dispatch, refuse X from another namespace or device
    than the fitted coefficients (scikit-learn's contract)."""
    if not get_config()["array_api_dispatch"] or estimator.device is not None:
        return
    coef = estimator.coef_
    if is_foreign_array(X) == is_foreign_array(coef) and (
        not is_foreign_array(X)
        or (get_namespace(X) is get_namespace(coef) and device(X) == device(coef))
    ):
        return
    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the "
        "same namespace and the same device as those passed to fit()."
    )
