"""Row chunks of Dask arrays, on whatever scheduler is active (a
``distributed.Client``, or Dask's local threads).

* X (and the encoded labels and weights) are persisted on the workers once and
  never gathered on the client.
* L-BFGS: scipy's L-BFGS-B runs on the client. Per evaluation the parameters
  go out once, one task per chunk returns its partial sums (weighted
  cross-entropy sum, ``G^T X`` sum, ``G`` column sums, weight sum:
  ``d*k + k + 2`` numbers), and a tree of additions on the workers sums them,
  so the client receives one such vector.
* SGD/Adam: the parameters travel to the chunks, not the chunks to the client:
  each epoch is a chain of one task per chunk, in a shuffled order, each
  running the minibatches of its chunk on the worker that holds it.
* Chunks may be NumPy or CuPy: the per-chunk functions compute in the chunk's
  namespace (the loss is Array API generic); fitted attributes are NumPy.

Dask is imported only when the input is a Dask collection.
"""

import copy

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_array

from .._backend import (
    ComputeTarget,
    asarray_like,
    device,
    device_of,
    get_namespace,
    is_foreign_array,
    is_numpy_namespace,
    on_device,
    to_numpy,
)
from .._compat import check_dask_version

__all__ = ["DaskRows", "DaskSoftmaxLoss", "dask_training_data", "map_rows"]

# Fan-in of the tree that sums the per-chunk partial sums on the workers.
SPLIT_EVERY = 8

# Fitted results of Dask input go back as NumPy.
HOST = ComputeTarget(None, np.empty((1, 1)))


# -- per-chunk work (runs on the workers) --------------------------------------


def _like(a, X):
    """A label or weight chunk moved to the namespace and device of ``X``."""
    xp = get_namespace(X)
    if a is None or get_namespace(a) is xp:
        return a
    return xp.asarray(to_numpy(a), device=device(X))


def _bundle(X, target, sample_weight):
    """One chunk's rows, labels and weights together, in X's namespace."""
    target = _like(target, X)
    if target.ndim == 2:
        target = get_namespace(X).astype(target, X.dtype)
    return X, target, _like(sample_weight, X)


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


def _chunk_step(carry, chunk, step):
    """One chunk of an SGD/Adam epoch on the worker that holds it."""
    return step(copy.deepcopy(carry), *chunk)  # never alter a stored result


def _encode(block, classes):
    return np.searchsorted(classes, to_numpy(block))


def _take(codes, values):
    return values[codes]


def _to_namespace(block, where):
    if where == "cpu":
        return to_numpy(block)
    from .._backend import import_cupy

    return import_cupy().asarray(block)


# -- the client side ------------------------------------------------------------


class DaskRows:
    """X, the targets and the weights, persisted on the workers as one
    ``(X_i, target_i, weights_i)`` tuple per row chunk, so that every task of
    every evaluation finds its whole chunk on one worker and nothing but the
    parameters and the partial sums moves.

    ``chunks``: list of Delayed (backed by futures on a distributed cluster:
    keep this object alive while fitting, or the workers drop the data).
    """

    def __init__(self, X, target, sw):
        import dask

        xs = X.to_delayed().ravel()
        ts = target.to_delayed().ravel()
        ws = sw.to_delayed().ravel() if sw is not None else [None] * len(xs)
        bundle = dask.delayed(_bundle, pure=True)
        self.chunks = list(
            dask.persist(*[bundle(x, t, w) for x, t, w in zip(xs, ts, ws, strict=True)])
        )

    @property
    def n_chunks(self):
        return len(self.chunks)

    def lbfgs_objective(self, loss):
        return DaskSoftmaxLoss(loss, self.chunks), (None, None, None)

    def run_epoch(self, order, step, carry):
        """A chain of one task per chunk in ``order``; each runs where its
        chunk is, and only the carry moves."""
        import dask

        carry = dask.delayed(carry, traverse=False)
        task = dask.delayed(_chunk_step, pure=True)
        step_d = dask.delayed(step, traverse=False)
        for i in order:
            carry = task(carry, self.chunks[i], step_d)
        (carry,) = dask.compute(carry)
        return carry


class DaskSoftmaxLoss:
    """``loss_gradient(coef)`` for scipy, summed over the chunks on the workers.

    Per call: ``coef`` enters the task graph once; one task per chunk returns
    ``d*k + k + 2`` numbers; a tree of additions (fan-in ``SPLIT_EVERY``) on
    the workers leaves one vector for the client. It has the loss's layout
    attributes, so the L1 split (:class:`~sksoftmax._penalty.SplitL1Problem`)
    wraps it as it wraps the in-memory loss.
    """

    def __init__(self, loss, chunks):
        self.inner = loss
        self.chunk_loss = copy.copy(loss)
        self.chunk_loss.alpha = 0.0
        self.chunks = chunks
        self.n_evaluations = 0

    n_logits = property(lambda self: self.inner.n_logits)
    n_features = property(lambda self: self.inner.n_features)
    n_params = property(lambda self: self.inner.n_params)

    def partial_sums(self, coef):
        import dask

        coef_d = dask.delayed(np.array(coef, dtype=np.float64))
        loss_d = dask.delayed(self.chunk_loss, traverse=False)
        task = dask.delayed(chunk_partial_sums, pure=True)
        parts = [task(coef_d, chunk, loss_d) for chunk in self.chunks]
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
        alpha = self.inner.alpha
        kd = self.n_logits * self.n_features
        S = total[-1] if total[-1] > 0 else 1.0
        W = coef[:kd]
        J = total[0] / S + 0.5 * alpha * (W @ W)
        grad = total[1:-1] / S
        grad[:kd] += alpha * W
        return float(J), grad


# -- validation -------------------------------------------------------------------


def _row_array(a, X, name):
    """``a`` (Dask or array-like, 1-D or 2-D) as a Dask array in X's row chunks."""
    import dask.array as da

    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {a.shape}.")
    if isinstance(a, da.Array) and any(np.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    n, m = X.shape[0], a.shape[0]
    if m != n:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"X has {n}, {name} has {m}."
        )
    chunks = (X.chunks[0],) + ((a.shape[1],) if a.ndim == 2 else ())
    if isinstance(a, da.Array):
        return a.rechunk(chunks)
    return da.from_array(a, chunks=chunks)


def validate_dask_X(X, device_param):
    """Check a Dask array ``X`` (row chunks only, real numbers), converted and
    persisted on the workers; only a finiteness flag comes back."""
    import dask.array as da

    check_dask_version()
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
    if device_param is not None:
        X = X.map_blocks(_to_namespace, device_param, dtype=X.dtype)
    X = X.persist()  # once; every evaluation reads the chunks where they are
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()  # cheap now: only the chunk shapes come back
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"Found array with shape {X.shape}: at least one sample "
            "and one feature are required."
        )
    return X


def dask_training_data(
    X, y, sample_weight, *, class_weight, device_param, classes, given_classes
):
    """Validate Dask input as the in-memory path does, without gathering X or
    the labels: only the distinct labels, a few flags and sums come back."""
    import dask
    import dask.array as da

    from .._validation import (
        TrainingData,
        check_total_weight,
        class_weight_vector,
        column_names,
        encode_labels,
        soft_target,
    )

    X = validate_dask_X(X, device_param)
    dtype = np.dtype(X.dtype).type
    names = column_names(y)
    if not isinstance(y, da.Array):
        y = to_numpy(y) if is_foreign_array(y) else y
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    y = _row_array(y, X, "y")
    sw = None
    if sample_weight is not None:
        if not isinstance(sample_weight, da.Array):
            sample_weight = _check_sample_weight(
                to_numpy(sample_weight),
                np.empty((X.shape[0], 0)),
                dtype=dtype,
                ensure_non_negative=True,
            )
        sw = _row_array(sample_weight, X, "sample_weight").astype(dtype)
        if sw.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D, got shape {sw.shape}.")
    soft = y.ndim == 2
    y = y.astype(dtype) if soft else y
    y = y.persist()
    finite, sw_min, sw_finite = dask.compute(
        da.isfinite(X).all(),
        None if sw is None else sw.min(),
        None if sw is None else da.isfinite(sw).all(),
    )
    if not finite:
        raise ValueError("Input X contains NaN or infinity.")
    if sw is not None and not sw_finite:
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if sw is not None and sw_min < 0:
        raise ValueError("Negative values in data passed to sample_weight")
    if soft:
        lo, sums_lo, sums_hi = dask.compute(y.min(), y.sum(1).min(), y.sum(1).max())
        tol = np.sqrt(np.finfo(dtype).eps) * 10
        if lo < 0 or abs(sums_lo - 1) > tol or abs(sums_hi - 1) > tol:
            raise ValueError(
                "Each row of a 2-D y must be a probability distribution: "
                f"non-negative and summing to 1 (within {tol:.1e}). Found row "
                f"sums in [{sums_lo:.6g}, {sums_hi:.6g}] and minimum entry {lo:.6g}."
            )
        # The names and classes are checked as for in-memory soft labels.
        uniform = np.full((1, y.shape[1]), 1.0 / y.shape[1])
        _, classes = soft_target(
            uniform, dtype, names=names, classes=classes, given_classes=given_classes
        )
        if names is not None:
            pos = {c: j for j, c in enumerate(names.tolist())}
            y = y[:, [pos[c] for c in classes.tolist()]]
        target = y
        if class_weight is not None:
            weighted = y if sw is None else y * sw[:, None]
            mass = weighted.sum(axis=0, dtype=np.float64).compute()
    else:
        uniq = da.unique(y).compute()
        _, classes = encode_labels(uniq, classes, given_classes)
        target = y.map_blocks(_encode, classes, dtype=np.intp)
        if class_weight is not None:
            mass = da.bincount(target, weights=sw, minlength=len(classes)).compute()
    if class_weight is not None:
        cw = class_weight_vector(class_weight, classes, mass)
        if soft:
            per_sample = (target @ cw.astype(dtype)).astype(dtype)
        else:
            per_sample = target.map_blocks(_take, cw.astype(dtype), dtype=dtype)
        sw = per_sample if sw is None else sw * per_sample
    target, sw = dask.persist(target, sw)
    S = float(X.shape[0]) if sw is None else float(sw.sum(dtype=np.float64).compute())
    check_total_weight(S)
    return TrainingData(
        rows=DaskRows(X, target, sw),
        classes=classes,
        soft=soft,
        n_samples=X.shape[0],
        n_features=X.shape[1],
        dtype=dtype,
        S=S,
        place=HOST,
    )


def map_rows(X, fn, n_columns, dtype):
    """``fn`` applied to each row chunk of the Dask array ``X``, lazily: a Dask
    array of shape (n,) (``n_columns`` None) or (n, ``n_columns``)."""
    if n_columns is None:
        return X.map_blocks(fn, drop_axis=1, dtype=dtype)
    return X.map_blocks(fn, chunks=(X.chunks[0], (n_columns,)), dtype=dtype)
