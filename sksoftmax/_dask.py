"""Fitting on Dask arrays split into row chunks, on whatever scheduler is
active (a ``distributed.Client``, or Dask's local threads).

* X (and the encoded labels and weights) are persisted on the workers once and
  never gathered on the client.
* L-BFGS: scipy's L-BFGS-B runs on the client. Per evaluation the parameters
  go out once, one task per chunk returns its partial sums (weighted
  cross-entropy sum, ``G^T X`` sum, ``G`` column sums, weight sum:
  ``d*k + k + 2`` numbers), and a tree of additions on the workers sums them,
  so the client receives one such vector.
* SGD/Adam: the parameters travel to the chunks, not the chunks to the client:
  each epoch is a chain of one task per chunk, in a shuffled order, each
  running the minibatches of its chunk on the worker that holds it
  (:mod:`sksoftmax._chunked`).
* Chunks may be NumPy or CuPy: the per-chunk functions compute in the chunk's
  namespace (the loss is Array API generic); fitted attributes are NumPy.

Dask is imported only when the input is a Dask collection.
"""

import copy
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    validate_data,
)

from ._backend import (
    asarray_like,
    device,
    device_of,
    get_namespace,
    is_foreign_array,
    is_numpy_namespace,
    on_device,
    to_numpy,
)
from ._chunked import HOST, chunk_pass, fit_chunked_stochastic
from ._loss import LinearSoftmaxLoss
from ._solvers import TrainingMonitor, minimize_lbfgs

__all__ = ["fit_dask", "is_dask_collection", "partial_fit_dask"]

# Fan-in of the tree that sums the per-chunk partial sums on the workers.
SPLIT_EVERY = 8


def is_dask_collection(X):
    """True for a Dask collection; never imports Dask (if Dask is not loaded,
    ``X`` cannot be one)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


# -- per-chunk work (runs on the workers) --------------------------------------


def _like(a, X):
    """A label or weight chunk moved to the namespace and device of ``X``."""
    xp = get_namespace(X)
    if a is None or get_namespace(a) is xp:
        return a
    return xp.asarray(to_numpy(a), device=device(X))


def _bundle(X, target, sample_weight):
    """One chunk's rows, labels and weights together, in X's namespace."""
    return X, _like(target, X), _like(sample_weight, X)


def chunk_partial_sums(coef, chunk, loss):
    """``[sum_i s_i CE_i, (sum_i s_i G_i x_i^T).ravel(), sum_i s_i G_i, sum_i s_i]``
    for one chunk as a float64 NumPy vector of ``d*k + k + 2`` entries
    (``d*k + 2`` without intercept). ``loss`` has ``alpha=0``: the penalty is
    added once, on the client. Off NumPy (a CuPy chunk) the vector is packed
    on the device and leaves it in one transfer."""
    X, target, sample_weight = chunk
    xp = get_namespace(X)
    if is_numpy_namespace(xp):
        n = X.shape[0]
        weight = n if sample_weight is None else float(xp.sum(sample_weight))
        # loss_gradient_arrays divides by the chunk's weight (1 when it is 0).
        S = weight if weight > 0 else 1.0
        W, b = loss.unpack(asarray_like(coef, X, xp=xp), xp=xp)
        J, gW, gb = loss.loss_gradient_arrays(W, b, X, target, sample_weight, xp=xp)
        parts = [np.atleast_1d(float(J)), to_numpy(gW).ravel()]
        if gb is not None:
            parts.append(to_numpy(gb))
        out = np.concatenate(parts).astype(np.float64) * S
        return np.concatenate([out, [weight]])
    with on_device(X):
        W, b = loss.unpack(asarray_like(coef, X, xp=xp), xp=xp)
        J, gW, gb = loss.loss_gradient_arrays(W, b, X, target, sample_weight, xp=xp)
        packed = loss.pack(J, gW, gb, xp=xp)
        dev = device_of(X)
        if sample_weight is None:
            weight = xp.asarray(float(X.shape[0]), dtype=packed.dtype, device=dev)
        else:
            weight = xp.sum(sample_weight, dtype=packed.dtype)
        S = xp.where(weight > 0, weight, xp.ones_like(weight))
        packed = xp.concat([packed * S, xp.reshape(weight, (1,))])
        return np.asarray(to_numpy(packed), dtype=np.float64)


def _add(*parts):
    total = parts[0].copy()
    for p in parts[1:]:
        total += p
    return total


def _chunk_epoch(carry, chunk, loss, batch_size, shuffle):
    """One chunk of an SGD/Adam epoch: ``carry = (params, optimizer, rng,
    running sum of J_B * S_B)`` in, updated carry out (host NumPy)."""
    params, optimizer, rng, total = copy.deepcopy(carry)  # never alter a stored result
    params, s = chunk_pass(
        params,
        optimizer,
        rng,
        *chunk,
        loss=loss,
        batch_size=batch_size,
        shuffle=shuffle,
    )
    return params, optimizer, rng, total + s


def _encode(block, classes):
    return np.searchsorted(classes, to_numpy(block))


def _class_weights(codes, cw, dtype):
    return cw[codes].astype(dtype)


def _to_namespace(block, where):
    if where == "cpu":
        return to_numpy(block)
    from ._backend import import_cupy

    return import_cupy().asarray(block)


# -- the client side ------------------------------------------------------------


class DaskChunks:
    """X, the class codes and the weights, persisted on the workers as one
    ``(X_i, codes_i, weights_i)`` tuple per row chunk, so that every task of
    every evaluation finds its whole chunk on one worker and nothing but the
    parameters and the partial sums moves.

    ``chunks``: list of Delayed (backed by futures on a distributed cluster:
    keep this object alive while fitting, or the workers drop the data).
    """

    def __init__(self, X, codes, sw, classes, S):
        import dask

        self.n_samples, self.n_features = X.shape
        self.dtype = np.dtype(X.dtype).type
        self.classes, self.S = classes, S
        xs = X.to_delayed().ravel()
        ts = codes.to_delayed().ravel()
        ws = sw.to_delayed().ravel() if sw is not None else [None] * len(xs)
        bundle = dask.delayed(_bundle, pure=True)
        self.chunks = list(
            dask.persist(*[bundle(x, t, w) for x, t, w in zip(xs, ts, ws, strict=True)])
        )

    def __len__(self):
        return len(self.chunks)


class DaskSoftmaxLoss:
    """``loss_gradient(coef)`` for scipy, summed over the chunks on the workers.

    Per call: ``coef`` enters the task graph once; one task per chunk returns
    ``d*k + k + 2`` numbers; a tree of additions (fan-in ``SPLIT_EVERY``) on
    the workers leaves one vector for the client.
    """

    def __init__(self, loss, data):
        self.loss = loss
        self.chunk_loss = copy.copy(loss)
        self.chunk_loss.alpha = 0.0
        self.data = data
        self.n_evaluations = 0

    def partial_sums(self, coef):
        import dask

        coef_d = dask.delayed(np.array(coef, dtype=np.float64))
        loss_d = dask.delayed(self.chunk_loss, traverse=False)
        task = dask.delayed(chunk_partial_sums, pure=True)
        parts = [task(coef_d, chunk, loss_d) for chunk in self.data.chunks]
        add = dask.delayed(_add, pure=True)
        while len(parts) > 1:
            parts = [
                add(*parts[i : i + SPLIT_EVERY])
                for i in range(0, len(parts), SPLIT_EVERY)
            ]
        (total,) = dask.compute(parts[0])
        self.n_evaluations += 1
        return total

    def loss_gradient(self, coef, *_):
        total = self.partial_sums(coef)
        loss = self.loss
        kd = loss.n_logits * loss.n_features
        S = total[-1] if total[-1] > 0 else 1.0
        W = coef[:kd]
        J = total[0] / S + 0.5 * loss.alpha * (W @ W)
        grad = total[1:-1] / S
        grad[:kd] += loss.alpha * W
        return float(J), grad

    def loss(self, coef, *_):
        return self.loss_gradient(coef)[0]

    def gradient(self, coef, *_):
        return self.loss_gradient(coef)[1]


def _dask_row_array(a, X, name):
    """``a`` (Dask or array-like, 1-D) as a Dask array in X's row chunks."""
    import dask.array as da

    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D for Dask input, got shape {a.shape}. Soft labels "
            "(a 2-D y of class probabilities) are not supported on Dask arrays."
        )
    if isinstance(a, da.Array):
        if any(np.isnan(c) for c in a.chunks[0]):
            a = a.compute_chunk_sizes()
    n, m = X.shape[0], a.shape[0]
    if m != n:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"X has {n}, {name} has {m}."
        )
    if isinstance(a, da.Array):
        return a.rechunk((X.chunks[0],))
    return da.from_array(a, chunks=(X.chunks[0],))


def _validated_X(est, X, reset):
    import dask.array as da

    if not isinstance(X, da.Array):
        hint = (
            " Convert it with X.to_dask_array(lengths=True)."
            if hasattr(X, "to_dask_array")
            else ""
        )
        raise TypeError(
            f"Dask input must be a dask.array.Array, got {type(X).__name__}.{hint}"
        )
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D Dask array for X, got {X.ndim}-D.")
    if len(X.chunks[1]) > 1:
        raise ValueError(
            f"X is split into {len(X.chunks[1])} chunks along its columns "
            f"(features), chunks={X.chunks[1]}; each chunk must hold whole rows. "
            "Rechunk it along the rows only: X = X.rechunk({1: -1})."
        )
    kind = np.dtype(X.dtype).kind
    if kind not in "fiub":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}.")
    if kind != "f" or X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if est.device is not None:
        X = X.map_blocks(_to_namespace, est.device, dtype=X.dtype)
    X = X.persist()  # once; every evaluation reads the chunks where they are
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()  # cheap now: only the chunk shapes come back
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"Found array with shape {X.shape}: at least one sample "
            "and one feature are required."
        )
    validate_data(est, X, reset=reset, skip_check_array=True)  # n_features_in_
    return X


def prepare(est, X, y, sample_weight, *, classes=None, given_classes=None, reset=True):
    """Validate Dask input as the in-memory path does, without gathering X or
    the labels: only the distinct labels, a finiteness flag and a few sums
    come back. Returns :class:`DaskChunks`."""
    import dask
    import dask.array as da

    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    X = _validated_X(est, X, reset)
    dtype = np.dtype(X.dtype).type
    if not isinstance(y, da.Array):
        y = to_numpy(y) if is_foreign_array(y) else y
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    y = _dask_row_array(y, X, "y").persist()
    sw = None
    if sample_weight is not None:
        if not isinstance(sample_weight, da.Array):
            sample_weight = _check_sample_weight(
                to_numpy(sample_weight),
                np.empty((X.shape[0], 0)),
                dtype=dtype,
                ensure_non_negative=True,
            )
        sw = _dask_row_array(sample_weight, X, "sample_weight").astype(dtype)
    finite, uniq, sw_min, sw_finite = dask.compute(
        da.isfinite(X).all(),
        da.unique(y),
        None if sw is None else sw.min(),
        None if sw is None else da.isfinite(sw).all(),
    )
    if not finite:
        raise ValueError("Input X contains NaN or infinity.")
    if sw is not None and not sw_finite:
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if sw is not None and sw_min < 0:
        raise ValueError("Negative values in data passed to sample_weight")
    _, classes = est._encode_labels(uniq, classes, given_classes)
    codes = y.map_blocks(_encode, classes, dtype=np.intp)
    if est.class_weight is not None:
        if est.class_weight == "balanced":
            counts = da.bincount(codes, minlength=len(classes)).compute()
            present = counts > 0
            cw = np.ones(len(classes))
            cw[present] = X.shape[0] / (present.sum() * counts[present])
        else:
            cw = est._class_weight_vector(classes, None, None)
        per_sample = codes.map_blocks(_class_weights, cw, dtype, dtype=dtype)
        sw = per_sample if sw is None else sw * per_sample
    codes, sw = dask.persist(codes, sw)
    S = float(X.shape[0]) if sw is None else float(sw.sum(dtype=np.float64).compute())
    if not S > 0:
        raise ValueError(
            "The sample weights (times class weights) are all zero; "
            "at least one sample needs a positive weight."
        )
    return DaskChunks(X, codes, sw, classes, S)


def _fit_lbfgs(est, data):
    alpha = 0.0 if np.isinf(est.C) else 1.0 / (est.C * data.S)
    loss = LinearSoftmaxLoss(
        len(data.classes),
        data.n_features,
        fit_intercept=est.fit_intercept,
        alpha=alpha,
        label_smoothing=est.label_smoothing,
    )
    W0, b0 = est._initial_params(loss, None, data.classes, False)
    coef0 = np.concatenate([W0.ravel(), b0 if est.fit_intercept else []])
    monitor = TrainingMonitor(est, verbose=est.verbose, callback=est.callback)
    res = minimize_lbfgs(
        DaskSoftmaxLoss(loss, data),
        coef0,
        None,
        None,
        None,
        max_iter=est.max_iter,
        tol=est.tol,
        monitor=monitor,
    )
    res.W, res.b = loss.unpack(res.W)
    if res.state["status"] == 1:
        warnings.warn(
            f"lbfgs failed to converge after {res.n_iter} iteration(s) "
            f"(max_iter={est.max_iter}). Increase max_iter or scale the data.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return loss, data.classes, res, data.S, HOST, data.dtype


def _dask_epoch(data):
    """``run_epoch`` for :func:`fit_chunked_stochastic`: a chain of one task per
    chunk in ``order``; each runs where its chunk is, and only the carry moves."""
    import dask

    def run_epoch(order, params, optimizer, rng, *, loss, batch_size, shuffle):
        carry = dask.delayed((params, optimizer, rng, 0.0), traverse=False)
        task = dask.delayed(_chunk_epoch, pure=True)
        loss_d = dask.delayed(loss, traverse=False)
        for i in order:
            carry = task(carry, data.chunks[i], loss_d, batch_size, shuffle)
        (carry,) = dask.compute(carry)
        return carry

    return run_epoch


def _fit_stochastic(est, data, *, incremental=False, single_pass=False):
    if est.early_stopping and not single_pass:
        raise ValueError(
            "early_stopping is not supported for Dask input: hold out a validation "
            "set yourself and pass a callback, or use early_stopping=False."
        )
    return fit_chunked_stochastic(
        est,
        _dask_epoch(data),
        n_chunks=len(data),
        n_samples=data.n_samples,
        n_features=data.n_features,
        classes=data.classes,
        S_batch=data.S,
        dtype=data.dtype,
        incremental=incremental,
        single_pass=single_pass,
    )


def fit_dask(est, X, y, sample_weight=None):
    """``est.fit`` for a Dask array ``X``."""
    data = prepare(est, X, y, sample_weight)
    if est.solver == "lbfgs":
        fitted = _fit_lbfgs(est, data)
    else:
        fitted = _fit_stochastic(est, data)
    est._store(fitted)
    return est


def partial_fit_dask(est, X, y, classes=None, sample_weight=None):
    """``est.partial_fit`` for a Dask array ``X``: one pass over its chunks."""
    first = not hasattr(est, "classes_")
    if first and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    data = prepare(
        est,
        X,
        y,
        sample_weight,
        classes=None if first else est.classes_,
        given_classes=classes if first else None,
        reset=first,
    )
    est._store(_fit_stochastic(est, data, incremental=not first, single_pass=True))
    return est
