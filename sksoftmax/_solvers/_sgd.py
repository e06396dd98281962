"""Minibatch SGD (momentum, Nesterov) and Adam on the same objective J.

A minibatch ``B`` estimates J by ``(1/S_B) sum_{i in B} s_i CE_i`` plus the
full penalty ``alpha/2 ||W||^2``, so every solver heads to the same optimum.
The updates follow MLPClassifier's definitions of the same parameter names.
"""

import math

import numpy as np

from .._backend import (
    device,
    get_namespace,
    is_numpy_namespace,
    is_sparse,
    permutation,
    take_rows,
)
from ._common import NoImprovementStop, SolverResult
from .optimizers import make_optimizer

# The update rules live in optimizers.py; this name keeps the old call
# sites (``MinibatchOptimizer("sgd", learning_rate_init=..., ...)``) working.
MinibatchOptimizer = make_optimizer


def _batches(n, batch_size, rng, shuffle, like, xp):
    """Index arrays of the minibatches of one epoch, on the data's device."""
    if shuffle:
        order = permutation(n, rng, xp, like)
    elif is_numpy_namespace(xp):
        order = np.arange(n)
    else:
        order = xp.arange(n) if is_sparse(like) else xp.arange(n, device=device(like))
    # Stops clipped to n: the Array API leaves out-of-bounds slices unspecified.
    return [order[i : min(i + batch_size, n)] for i in range(0, n, batch_size)]


def validation_score(loss, W, b, X, target, xp):
    """Accuracy for class codes; minus the mean cross-entropy for soft labels."""
    logits = loss.logits(X, W, b, xp=xp)
    if target.ndim == 1:
        hits = xp.argmax(logits, axis=1) == xp.astype(target, xp.int64)
        return float(xp.mean(xp.astype(hits, logits.dtype)))
    lse = xp.log(xp.sum(xp.exp(logits - xp.max(logits, axis=1, keepdims=True)), axis=1))
    lse = lse + xp.max(logits, axis=1)
    return -float(xp.mean(lse - xp.sum(target * logits, axis=1)))


def run_minibatch_epochs(
    loss,
    X,
    target,
    sample_weight,
    W,
    b,
    *,
    optimizer,
    batch_size,
    max_iter,
    shuffle,
    rng,
    tol,
    n_iter_no_change,
    monitor,
    validation=None,
):
    """Run up to ``max_iter`` epochs; stop early as MLPClassifier does.

    ``validation`` is None or ``(X_val, target_val)``: then the score on it
    decides when to stop and the best parameters are restored at the end.
    """
    xp = get_namespace(X, W)
    n = X.shape[0]
    S = n if sample_weight is None else float(xp.sum(sample_weight))
    params = [W] if b is None else [W, b]
    rule = NoImprovementStop(tol=tol, n_iter_no_change=n_iter_no_change)
    best_score, best_params = -math.inf, params
    scores = [] if validation is not None else None
    converged, stopped, epochs = False, False, 0
    # NumPy: gather each minibatch into one reused buffer (X itself is never
    # copied whole; the update works in place, so the best parameters are
    # kept as copies).
    numpy_dense = is_numpy_namespace(xp) and not is_sparse(X)
    Xbuf = (
        np.empty((min(batch_size, n), X.shape[1]), dtype=X.dtype)
        if numpy_dense
        else None
    )
    for _ in range(max_iter):
        epoch_sum = 0.0
        for idx in _batches(n, batch_size, rng, shuffle, X, xp):
            Xb = take_rows(X, idx, xp, out=Xbuf)
            tb = take_rows(target, idx, xp)
            wb = None if sample_weight is None else take_rows(sample_weight, idx, xp)
            Jb, gW, gb = loss.loss_gradient_arrays(
                params[0], params[-1] if b is not None else None, Xb, tb, wb, xp=xp
            )
            Sb = Xb.shape[0] if wb is None else xp.sum(wb)
            epoch_sum = epoch_sum + Jb * Sb
            params = optimizer.update(params, [gW] if b is None else [gW, gb], xp)
        epochs += 1
        optimizer.end_epoch(n)
        objective = float(epoch_sum) / S + optimizer.penalty(params[0], xp)
        extra = {"learning_rate": float(optimizer.learning_rate)}
        if validation is not None:
            score = validation_score(
                loss, params[0], params[-1] if b is not None else None, *validation, xp
            )
            scores.append(score)
            extra["validation_score"] = score
            improved = score >= best_score + tol
            if score > best_score:
                best_score = score
                best_params = (
                    [np.copy(p) for p in params] if is_numpy_namespace(xp) else params
                )
            rule.loss_improved(objective)
        else:
            improved = rule.loss_improved(objective)
            best_params = params
        if monitor.step(objective, **extra):
            stopped = True
            break
        if rule.should_stop(improved, optimizer):
            converged = True
            break
    final = best_params if validation is not None else params
    return SolverResult(
        W=final[0],
        b=final[1] if b is not None else None,
        n_iter=epochs,
        loss_curve=monitor.loss_curve,
        converged=converged or stopped,
        stopped_by_callback=stopped,
        validation_scores=scores,
        best_loss=rule.best_loss,
        state=optimizer.state,
    )
