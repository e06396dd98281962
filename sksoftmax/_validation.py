"""Every check of the training input, for every kind of input, before any work.

:func:`validate_training_data` turns ``X, y, sample_weight`` (NumPy, SciPy
sparse, any Array API array, a ``numpy.memmap`` to stream, or a Dask array)
into one :class:`TrainingData`: where the rows live (a row source from
:mod:`sksoftmax._data`), the classes, the total weight ``S`` and where the
arithmetic runs. The estimator's fitted state is read by the caller and
passed in as plain values (``classes``, ``given_classes``), never the
estimator itself.
"""

from dataclasses import dataclass

import numpy as np
from sklearn import config_context, get_config
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    column_or_1d,
)

from ._backend import (
    ComputeTarget,
    asarray_like,
    device,
    get_namespace,
    index_on_device,
    is_cupy_sparse,
    is_foreign_array,
    take_rows,
    to_numpy,
)
from ._data import InMemoryRows, MemmapRows, is_dask_collection, memmap_block_rows
from ._solvers.minibatch import batch_rows

__all__ = [
    "TrainingData",
    "UnsupportedCombination",
    "validate_X",
    "validate_training_data",
]


class UnsupportedCombination(NotImplementedError, ValueError):
    """A feature that this kind of input or call does not support.

    A NotImplementedError naming the combination, raised before any work;
    also a ValueError, the error scikit-learn's estimators raise for the
    same refusals (e.g. SGDClassifier's ``partial_fit`` with balanced class
    weights).
    """


@dataclass
class TrainingData:
    """Validated training input, ready for the solvers.

    ``rows`` yields the rows in chunks (:mod:`sksoftmax._data`): one chunk in
    memory, blocks of a memmap, or Dask chunks on the workers. ``target``
    holds class codes (``soft=False``) or rows of class probabilities.
    ``S`` is the total weight (sample weight times class weight).
    ``place`` says where the arithmetic runs and where results go back.
    """

    rows: object
    classes: np.ndarray
    soft: bool
    n_samples: int
    n_features: int
    dtype: type
    S: float
    place: ComputeTarget


def numpy_float_dtype(X):
    """The NumPy float dtype matching ``X``'s (any namespace)."""
    return np.float32 if "float32" in str(X.dtype) else np.float64


def _has_float64(xp, X):
    try:
        xp.zeros(1, dtype=xp.float64, device=device(X))
    except Exception:  # e.g. Apple MPS supports float32 only
        return False
    return True


def check_y_shape(y, name):
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None.")
    # check_array's "dim 3" message would not say it is about y.
    if getattr(y, "ndim", 0) > 2:
        raise ValueError(
            "y must hold one label per sample (1-D) or rows of class "
            f"probabilities (2-D); got an array of shape {tuple(y.shape)}."
        )


def validate_X(X):
    """Check ``X`` of any kind except Dask; returns it ready to compute on."""
    if is_cupy_sparse(X):
        return _validate_cupy_sparse(X)
    if is_foreign_array(X):
        return _validate_foreign_X(X)
    return check_array(
        X,
        accept_sparse=["csr", "csc"],
        dtype=[np.float64, np.float32],
        order="C",
        input_name="X",
    )


def _validate_foreign_X(X):
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
    if not get_config()["assume_finite"] and not bool(xp.all(xp.isfinite(X))):
        raise ValueError("Input X contains NaN or infinity.")
    return X


def _validate_cupy_sparse(X):
    """A ``cupyx.scipy.sparse`` matrix: CSR (or CSC) of real floats, finite."""
    import cupy

    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"Found sparse matrix with shape {X.shape}: at least one sample and "
            "one feature are required."
        )
    if X.format not in ("csr", "csc"):
        X = X.tocsr()
    if X.dtype not in (cupy.float32, cupy.float64):
        X = X.astype(cupy.float64)
    if not bool(cupy.all(cupy.isfinite(X.data))):
        raise ValueError("Input X contains NaN or infinity.")
    return X


# -- labels -------------------------------------------------------------------


def encode_labels(y, classes=None, given_classes=None):
    """Class codes of the 1-D labels ``y`` and the sorted classes.

    ``classes``: those of the fitted model (partial_fit after the first call);
    ``given_classes``: the ``classes=`` of a first ``partial_fit`` call.
    """
    check_classification_targets(y)
    if classes is None and given_classes is None:
        if y.dtype.kind in "biuf":  # numbers (finite, checked): LabelEncoder's
            classes, codes = np.unique(y, return_inverse=True)  # codes, faster
        else:
            encoder = LabelEncoder().fit(y)
            classes, codes = encoder.classes_, encoder.transform(y)
        if classes.shape[0] < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes[0]!r}."
            )
        return codes, classes
    if given_classes is not None:
        classes = unique_classes(given_classes)
    unseen = np.setdiff1d(np.unique(y), classes)
    if unseen.size:
        raise ValueError(
            f"y holds labels {unseen.tolist()!r} that are not in classes "
            f"{classes.tolist()!r}."
        )
    return np.searchsorted(classes, y), classes


def unique_classes(given):
    """``classes=`` as passed by a user: sorted, distinct, at least two."""
    given = np.asarray(to_numpy(given) if is_foreign_array(given) else given)
    classes = np.unique(given)
    if classes.shape[0] < 2:
        raise ValueError(
            f"classes must hold at least 2 classes, got {classes.tolist()!r}."
        )
    if classes.shape[0] != given.shape[0]:
        raise ValueError(f"classes holds duplicates: {given.tolist()!r}.")
    return classes


def soft_target(Y, dtype, *, names=None, classes=None, given_classes=None):
    """Rows of class probabilities, checked, with their classes.

    The columns are named by ``names`` (a DataFrame's columns) or by
    ``given_classes`` (``partial_fit(classes=...)``); unnamed columns follow
    the fitted ``classes`` when there are some, else they are the classes
    ``0 .. K-1``. Named columns are reordered to the sorted classes, so that
    ``classes_`` is sorted as for hard labels.
    """
    Y = np.asarray(Y)
    if not np.issubdtype(Y.dtype, np.number) or np.issubdtype(
        Y.dtype, np.complexfloating
    ):
        raise ValueError(
            "A 2-D y must hold class probabilities (real numbers), got dtype "
            f"{Y.dtype}; multi-output targets are not supported."
        )
    Y = np.asarray(Y, dtype=dtype)
    n_classes = Y.shape[1]
    if n_classes < 2:
        raise ValueError("Soft labels need at least 2 class columns.")
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
    _check_distributions(Y, dtype)
    if names is None and given_classes is not None:
        names = np.asarray(given_classes)
    if names is None:
        return Y, (classes if classes is not None else np.arange(n_classes))
    names = np.asarray(names)
    if np.unique(names).shape[0] != n_classes:
        raise ValueError(f"The class columns of y repeat a name: {names.tolist()!r}.")
    if classes is not None:
        missing = np.setdiff1d(names, classes)
        if missing.size:
            raise ValueError(
                f"y has columns {missing.tolist()!r} that are not classes of the "
                f"fitted model {classes.tolist()!r}."
            )
    if classes is None:
        order = np.argsort(names, kind="stable")
        return np.ascontiguousarray(Y[:, order]), names[order]
    column = {name: j for j, name in enumerate(names.tolist())}
    order = [column[c] for c in classes.tolist()]
    return np.ascontiguousarray(Y[:, order]), classes


def _check_distributions(Y, dtype):
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


def column_names(y):
    """The column labels of a 2-D DataFrame-like ``y``, else None."""
    columns = getattr(y, "columns", None)
    if columns is None or getattr(y, "ndim", 2) != 2:
        return None
    return np.asarray(list(columns))


# -- weights --------------------------------------------------------------------


def class_weight_vector(class_weight, classes, class_mass=None):
    """One weight per class.

    ``"balanced"``: ``S / (n_present * S_k)`` with ``S_k`` the weighted mass
    of class ``k`` (``class_mass``: sample weights summed per class, or the
    weighted probabilities for soft labels) and ``n_present`` the number of
    classes with mass, as scikit-learn's ``compute_class_weight`` with
    ``sample_weight``. A dict gives weights by class label; others get 1.
    """
    if class_weight == "balanced":
        mass = np.asarray(class_mass, dtype=np.float64)
        present = mass > 0
        cw = np.ones(len(classes))
        cw[present] = mass.sum() / (present.sum() * mass[present])
        return cw
    unknown = [k for k in class_weight if k not in set(classes.tolist())]
    if unknown:
        raise ValueError(
            f"class_weight has keys {unknown!r} that are not classes; the "
            f"classes are {classes.tolist()!r}."
        )
    cw = np.array(
        [class_weight.get(c, 1.0) for c in classes.tolist()], dtype=np.float64
    )
    if not np.all(np.isfinite(cw) & (cw >= 0)):
        raise ValueError(
            "class_weight values must be finite and non-negative; got "
            f"{class_weight!r}."
        )
    return cw


def class_mass(codes, target, sample_weight, n_classes):
    """Weighted mass of each class: sum of the weights of its samples (hard
    labels) or of the weighted probabilities (soft labels)."""
    if codes is not None:
        return np.bincount(codes, weights=sample_weight, minlength=n_classes)
    if sample_weight is None:
        return target.sum(axis=0, dtype=np.float64)
    return sample_weight.astype(np.float64) @ target


def check_total_weight(S):
    if not S > 0:
        raise ValueError(
            "The sample weights (times class weights) are all zero; at least "
            "one sample needs a positive weight."
        )


# -- the training data ------------------------------------------------------------


def validate_training_data(
    X,
    y,
    sample_weight,
    *,
    solver,
    class_weight,
    early_stopping,
    batch_size,
    device_param,
    classes=None,
    given_classes=None,
    estimator_name="SoftmaxRegressionClassifier",
):
    """Check everything and return :class:`TrainingData`.

    ``classes``: the fitted model's classes, when the new data must use them
    (``partial_fit`` after the first call, or soft labels with ``warm_start``);
    ``given_classes``: ``partial_fit``'s ``classes=`` on its first call.
    """
    check_y_shape(y, estimator_name)
    if is_dask_collection(X):
        from ._data.dask import dask_training_data

        if early_stopping and solver != "lbfgs":
            raise UnsupportedCombination(
                "early_stopping is not supported for Dask input: hold out a "
                "validation set yourself and pass a callback, or use "
                "early_stopping=False."
            )
        return dask_training_data(
            X,
            y,
            sample_weight,
            class_weight=class_weight,
            device_param=device_param,
            classes=classes,
            given_classes=given_classes,
        )
    if labels_stay_on_device(X, y, sample_weight, class_weight, classes, given_classes):
        return _validate_on_device(X, y, sample_weight, device_param)
    names = column_names(y)
    stream = None
    if solver != "lbfgs" and not early_stopping and hasattr(X, "shape"):
        batch = batch_rows(batch_size, X.shape[0], warn=False)
        stream = memmap_block_rows(X, batch)
    if stream is not None:
        # The finiteness check would read the whole file: the blocks are
        # checked as they are read.
        with config_context(assume_finite=True):
            Xv = validate_X(X)
    else:
        Xv = validate_X(X)
    y = to_numpy(y) if is_foreign_array(y) else y
    if is_foreign_array(sample_weight):
        sample_weight = to_numpy(sample_weight)
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    check_consistent_length(Xv, y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    dtype = numpy_float_dtype(Xv)
    if y.ndim == 2:
        target, classes = soft_target(
            y, dtype, names=names, classes=classes, given_classes=given_classes
        )
        codes = None
    else:
        codes, classes = encode_labels(y, classes, given_classes)
        target = codes
    sw = None
    if sample_weight is not None:
        sw = _check_sample_weight(
            sample_weight,
            np.empty((Xv.shape[0], 0)),
            dtype=dtype,
            ensure_non_negative=True,
        )
    if class_weight is not None:
        mass = class_mass(codes, target, sw, len(classes))
        cw = class_weight_vector(class_weight, classes, mass)
        per_sample = cw[codes] if codes is not None else target @ cw
        # cw is float64: keep float32 data's weights (and so its fit) float32.
        per_sample = per_sample.astype(dtype)
        sw = per_sample if sw is None else sw * per_sample
    S = float(Xv.shape[0] if sw is None else sw.sum(dtype=np.float64))
    check_total_weight(S)
    place = ComputeTarget(device_param, Xv)
    if stream is not None:
        rows = MemmapRows(X, target, sw, stream, place)  # the file, not a view
    else:
        rows = InMemoryRows(
            place.to_compute(Xv),
            place.to_compute(target, dtype=None if target.ndim == 1 else Xv.dtype),
            None if sw is None else place.to_compute(sw, dtype=Xv.dtype),
        )
    return TrainingData(
        rows=rows,
        classes=classes,
        soft=codes is None,
        n_samples=Xv.shape[0],
        n_features=Xv.shape[1],
        dtype=dtype,
        S=S,
        place=place,
    )


def labels_stay_on_device(X, y, sample_weight, class_weight, classes, given_classes):
    """The common GPU case, labels beside X on its device, is checked there:
    a million labels need not cross to the host and back. Soft labels,
    class weights and known classes take the host path."""
    if classes is not None or given_classes is not None:
        return False
    if class_weight is not None or not is_foreign_array(X):
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


def _validate_on_device(X, y, sample_weight, device_param):
    """Device-side twin of the host checks for 1-D labels and weights."""
    xp = get_namespace(X)
    X = _validate_foreign_X(X)
    n = X.shape[0]
    for name, a in (("y", y), ("sample_weight", sample_weight)):
        if a is not None and a.shape[0] != n:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
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
    S = float(n)
    if sample_weight is not None:
        sw = xp.astype(sample_weight, X.dtype)
        if not bool(xp.all(xp.isfinite(sw))):
            raise ValueError("Input sample_weight contains NaN or infinity.")
        if bool(xp.any(sw < 0)):
            raise ValueError("Negative values in data passed to sample_weight.")
        S = float(xp.sum(xp.astype(sw, xp.float64) if _has_float64(xp, X) else sw))
        check_total_weight(S)
    place = ComputeTarget(device_param, X)
    rows = InMemoryRows(
        place.to_compute(X),
        place.to_compute(codes),
        None if sw is None else place.to_compute(sw, dtype=X.dtype),
    )
    return TrainingData(
        rows=rows,
        classes=classes,
        soft=False,
        n_samples=n,
        n_features=X.shape[1],
        dtype=numpy_float_dtype(X),
        S=S,
        place=place,
    )


def split_validation(rows, fraction, rng):
    """Stratified hold-out split of in-memory rows; the data stay on their
    device. Returns the training rows and ``(X_val, target_val)``."""
    X, target, sw = rows.X, rows.target, rows.sample_weight
    stratify = to_numpy(target) if target.ndim == 1 else None
    idx = np.arange(X.shape[0])
    try:
        tr, va = train_test_split(
            idx, test_size=fraction, random_state=rng, stratify=stratify
        )
    except ValueError:  # a class too small to stratify
        tr, va = train_test_split(idx, test_size=fraction, random_state=rng)
    if len(va) < 2:
        raise ValueError(
            f"validation_fraction={fraction} leaves {len(va)} validation sample(s); "
            "use more data or a larger fraction, or early_stopping=False."
        )
    xp = get_namespace(X)
    tr, va = index_on_device(tr, X, xp), index_on_device(va, X, xp)
    sw_tr = None if sw is None else take_rows(sw, tr, xp)
    train = InMemoryRows(take_rows(X, tr, xp), take_rows(target, tr, xp), sw_tr)
    return train, (take_rows(X, va, xp), take_rows(target, va, xp))


def held_out_targets(y, sample_weight, logits, classes):
    """Labels (or soft labels) and weights of held-out rows, checked against
    the fitted ``classes``, in the namespace and on the device of ``logits``
    (for :meth:`calibrate_temperature`)."""
    xp = get_namespace(logits)
    y_in = y
    y = check_array(
        to_numpy(y) if is_foreign_array(y) else y,
        ensure_2d=False,
        dtype=None,
        input_name="y",
    )
    check_consistent_length(logits, y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    dtype = numpy_float_dtype(logits)
    if y.ndim == 2:
        target, _ = soft_target(y, dtype, names=column_names(y_in), classes=classes)
    else:
        target, _ = encode_labels(y, classes)
    target = asarray_like(target, logits, dtype=None if y.ndim == 2 else xp.int64)
    if sample_weight is None:
        return target, None
    if is_foreign_array(sample_weight):
        sample_weight = to_numpy(sample_weight)
    sw = _check_sample_weight(
        sample_weight,
        np.empty((logits.shape[0], 0)),
        dtype=dtype,
        ensure_non_negative=True,
    )
    return target, asarray_like(sw, logits)


def unnamed_soft_labels(y, classes):
    """True when ``y`` holds rows of probabilities without class names, one
    column per class of a fitted model: a warm start keeps its class names."""
    ndim = getattr(y, "ndim", None)
    if ndim is None:
        ndim = np.ndim(y)
    if ndim != 2 or column_names(y) is not None:
        return False
    n_columns = y.shape[1] if hasattr(y, "shape") else len(y[0])
    return n_columns == len(classes)


def check_partial_fit_call(classes, fitted_classes, class_weight):
    """``partial_fit``'s ``classes=``: required on the first call, the same
    set on later calls; balanced class weights are refused."""
    if fitted_classes is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if fitted_classes is not None and classes is not None:
        given = unique_classes(classes)
        if not np.array_equal(given, fitted_classes):
            raise ValueError(
                f"classes={given.tolist()!r} is not the same as on the first "
                f"call to partial_fit, {fitted_classes.tolist()!r}."
            )
    if class_weight == "balanced":
        raise UnsupportedCombination(
            'class_weight="balanced" is not supported by partial_fit: a chunk '
            "does not know the class frequencies of the stream. Compute them "
            "(sklearn.utils.class_weight.compute_class_weight) and pass a dict."
        )
