"""The one epoch loop of SGD and Adam, over the chunks of any row source.

An epoch visits the chunks in a shuffled order (in memory there is one
chunk) and draws the minibatches within each chunk; the chunk's owner runs
:func:`chunk_pass` where the chunk lives (:mod:`sksoftmax._data`). Only the
:class:`Carry` moves between chunks: the parameters, the optimizer state and
the random state, ``k * d`` numbers times one to three, and a few kB.

With one chunk, or without shuffling and with chunk sizes that are multiples
of the batch size, the updates are exactly those of the in-memory fit.

A minibatch ``B`` estimates J by ``(1/S_B) sum_{i in B} s_i CE_i`` plus the
full penalty ``alpha/2 ||W||^2``, so every solver heads to the same optimum.
"""

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._backend import (
    asarray_like,
    device,
    get_namespace,
    is_cupy_array,
    is_cupy_namespace,
    is_numpy_namespace,
    is_sparse,
    on_device,
    permutation,
    take_rows,
    to_numpy,
)
from ._common import NoImprovementStop, SolverResult

__all__ = ["Carry", "batch_rows", "chunk_pass", "map_state", "run_epochs"]


def batch_rows(batch_size, n_samples, *, warn=True):
    """Rows per minibatch: ``"auto"`` is ``min(200, n_samples)``; a larger
    ``batch_size`` than ``n_samples`` is clipped, with a warning when ``warn``
    (``fit``, as MLPClassifier does; not for a ``partial_fit`` chunk)."""
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples and warn:
        warnings.warn(
            f"batch_size={batch_size} is larger than the {n_samples} training "
            f"samples; it is clipped to {n_samples}.",
            UserWarning,
            stacklevel=4,
        )
    return min(batch_size, n_samples)


def map_state(state, fn):
    """The optimizer ``state`` with ``fn`` applied to its moment arrays (and
    its iterate average)."""
    if state.get("average") is not None:
        state = {**state, "average": [fn(a) for a in state["average"]]}
    moments = state["moments"]
    if moments is None:
        return state
    if isinstance(moments, tuple):  # Adam: (first moments, second moments)
        moments = tuple([fn(a) for a in ms] for ms in moments)
    else:
        moments = [fn(a) for a in moments]
    return {**state, "moments": moments}


@dataclass
class Carry:
    """What travels from chunk to chunk: host NumPy parameters ``[W]`` or
    ``[W, b]``, the optimizer (its moments on the host between chunks), the
    random state, and the running sum of ``J_B * S_B`` of the epoch."""

    params: list
    optimizer: object
    rng: object
    total: float = 0.0


def _batches(n, batch_size, rng, shuffle, like, xp):
    """Index arrays of the minibatches of one pass, on the data's device."""
    if shuffle:
        order = permutation(n, rng, xp, like)
    elif is_numpy_namespace(xp):
        order = np.arange(n)
    else:
        order = xp.arange(n) if is_sparse(like) else xp.arange(n, device=device(like))
    # Stops clipped to n: the Array API leaves out-of-bounds slices unspecified.
    return [order[i : min(i + batch_size, n)] for i in range(0, n, batch_size)]


def _gather_buffer(a, rows, xp):
    """A CuPy buffer for ``rows`` rows of the CuPy array ``a`` (else None)."""
    if not is_cupy_array(a):
        return None
    return xp.empty((rows, *a.shape[1:]), dtype=a.dtype)


def chunk_pass(carry, X, target, sample_weight, *, loss, batch_size, shuffle):
    """Minibatch updates over the rows of one chunk, in the chunk's namespace.

    The parameters and the optimizer's moments move to the chunk's namespace
    and device and back; on NumPy they are updated in place, and each
    minibatch is gathered into one reused buffer (X is never copied whole).
    """
    xp = get_namespace(X)
    optimizer = carry.optimizer
    params = [asarray_like(p, X, xp=xp) for p in carry.params]
    optimizer.state = map_state(
        optimizer.state, lambda a: asarray_like(to_numpy(a), X, xp=xp)
    )
    has_b = len(params) == 2
    n = X.shape[0]
    buffer = t_buffer = w_buffer = None
    rows = min(batch_size, n)
    if is_numpy_namespace(xp) and not is_sparse(X):
        buffer = np.empty((rows, X.shape[1]), dtype=X.dtype)
    elif is_cupy_namespace(xp):
        # One gather kernel per minibatch into buffers reused across the
        # minibatches of the pass: no allocation for the rows, the targets
        # or the weights (the state arrays are reused by the fused update).
        with on_device(X):
            if not is_sparse(X):
                buffer = xp.empty((rows, X.shape[1]), dtype=X.dtype)
            t_buffer = _gather_buffer(target, rows, xp)
            w_buffer = _gather_buffer(sample_weight, rows, xp)
    total = 0.0
    for idx in _batches(n, batch_size, carry.rng, shuffle, X, xp):
        Xb = take_rows(X, idx, xp, out=buffer)
        tb = take_rows(target, idx, xp, out=t_buffer)
        wb = (
            None
            if sample_weight is None
            else take_rows(sample_weight, idx, xp, out=w_buffer)
        )
        Jb, gW, gb = loss.loss_gradient_arrays(
            params[0], params[1] if has_b else None, Xb, tb, wb, xp=xp
        )
        Sb = Xb.shape[0] if wb is None else xp.sum(wb)
        total = total + Jb * Sb
        params = optimizer.update(params, [gW, gb] if has_b else [gW], xp)
    optimizer.state = map_state(optimizer.state, to_numpy)
    carry.params = [to_numpy(p) for p in params]
    carry.total += float(total)
    return carry


def objective_pass(carry, X, target, sample_weight, *, loss):
    """Add ``J * S`` of one chunk at ``carry.params`` to ``carry.total``,
    without a step (the mean loss, L2 term included, times the chunk's
    weight, as :func:`chunk_pass` sums it)."""
    xp = get_namespace(X)
    params = [asarray_like(p, X, xp=xp) for p in carry.params]
    J, _, _ = loss.loss_gradient_arrays(
        params[0], params[1] if len(params) == 2 else None, X, target,
        sample_weight, xp=xp,
    )  # fmt: skip
    S = X.shape[0] if sample_weight is None else xp.sum(sample_weight)
    carry.total += float(J * S)
    return carry


def _objective_at(params, rows, loss, S, optimizer):
    """J at ``params`` over every training row: one pass, no step."""
    probe = Carry(list(params), None, None)  # read only: no copy
    probe = rows.run_epoch(
        np.arange(rows.n_chunks), functools.partial(objective_pass, loss=loss), probe
    )
    return probe.total / S + optimizer.penalty(params[0], np)


def validation_score(loss, params, X, target):
    """Accuracy for class codes; minus the mean cross-entropy for soft labels."""
    xp = get_namespace(X)
    W = asarray_like(params[0], X, xp=xp)
    b = asarray_like(params[1], X, xp=xp) if len(params) == 2 else None
    logits = loss.logits(X, W, b, xp=xp)
    if target.ndim == 1:
        hits = xp.argmax(logits, axis=1) == xp.astype(target, xp.int64)
        return float(xp.mean(xp.astype(hits, logits.dtype)))
    top = xp.max(logits, axis=1, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(logits - top), axis=1)) + top[:, 0]
    return -float(xp.mean(lse - xp.sum(target * logits, axis=1)))


def run_epochs(
    rows,
    loss,
    carry,
    *,
    n_samples,
    S,
    batch_size,
    max_iter,
    shuffle,
    tol,
    n_iter_no_change,
    monitor,
    validation=None,
):
    """Up to ``max_iter`` epochs over ``rows``; stop early when the objective
    has stopped improving (:class:`NoImprovementStop`). ``validation`` is
    None or ``(X_val, target_val)``: then the score on it decides when to
    stop and the best parameters are restored."""
    step = functools.partial(
        chunk_pass, loss=loss, batch_size=batch_size, shuffle=shuffle
    )
    rule = NoImprovementStop(tol=tol, n_iter_no_change=n_iter_no_change)
    best_score, best_params = -math.inf, None
    scores = [] if validation is not None else None
    converged = stopped = False
    epochs = 0
    previous = math.inf
    # The iterate average at the last improvement, and J there (computed
    # when first needed).
    average_then = None
    for _ in range(max_iter):
        n_chunks = rows.n_chunks
        one_batch = n_chunks == 1 and batch_size >= n_samples
        # One chunk draws nothing here, so it shuffles exactly as in memory.
        order = (
            carry.rng.permutation(n_chunks)
            if shuffle and n_chunks > 1
            else np.arange(n_chunks)
        )
        carry.total = 0.0
        carry = rows.run_epoch(order, step, carry)
        epochs += 1
        optimizer = carry.optimizer
        optimizer.end_epoch(n_samples)
        objective = carry.total / S + optimizer.penalty(carry.params[0], np)
        extra = {"learning_rate": float(optimizer.learning_rate)}
        if one_batch and objective > previous:
            # The whole data in one step per epoch: the epoch's objective is
            # J at the iterate before its step, exactly (no sampling noise),
            # so a rise means the momentum overshoots (Nesterov's method on a
            # well-conditioned problem oscillates), seen one step late. Drop
            # the momentum and go on: O'Donoghue and Candes' adaptive restart.
            optimizer.restart()
        previous = objective
        score = None
        if validation is not None:
            score = validation_score(loss, carry.params, *validation)
            scores.append(score)
            extra["validation_score"] = score
            if score > best_score:
                best_score = score
                best_params = [np.copy(p) for p in carry.params]
        improved = rule.improved(objective, score)
        average = None if validation is not None else optimizer.state.get("average")
        if improved and average is not None:
            average_then = ([np.copy(a) for a in average], None)
        if monitor.step(objective, **extra):
            stopped = True
            break
        if rule.should_stop(improved, optimizer):
            if average is not None and average_then is not None:
                # The epoch objective is that of the moving iterates, which
                # a constant step keeps in a noise ball, while the reported
                # average may still be closing in on the optimum: go on
                # while J at the average fell by tol since the last
                # improvement (one pass, two at the first check).
                params_then, J_then = average_then
                if J_then is None:
                    J_then = _objective_at(params_then, rows, loss, S, optimizer)
                J_now = _objective_at(average, rows, loss, S, optimizer)
                if J_now <= J_then - tol:
                    rule.postpone()
                    average_then = ([np.copy(a) for a in average], J_now)
                    continue
            converged = True
            break
    final = best_params if best_params is not None else carry.params
    return SolverResult(
        W=final[0],
        b=final[1] if len(final) == 2 else None,
        n_iter=epochs,
        loss_curve=monitor.loss_curve,
        converged=converged or stopped,
        stopped_by_callback=stopped,
        validation_scores=scores,
        best_loss=rule.best_loss,
        state=carry.optimizer.state,
        rng=carry.rng,
    )
