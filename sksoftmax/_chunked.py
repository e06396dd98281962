"""SGD/Adam over data held in row chunks, whoever holds them.

Each epoch visits the chunks in a shuffled order and draws the minibatches
within each chunk. The chunk's owner supplies ``run_epoch``: a Dask cluster
(``_dask.py``, where the parameters travel to the worker that holds each
chunk) or a file on disk (a ``numpy.memmap`` streamed one block at a time,
below). Only the parameters, the optimizer state and the random state move
between chunks: ``k * d`` numbers times one to three, and a few kB.

With one chunk, or without shuffling and with chunk sizes that are multiples
of the batch size, the updates are exactly those of the in-memory fit.
"""

import copy
import mmap
import warnings

import numpy as np
from sklearn import config_context, get_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._backend import ComputeTarget, asarray_like, get_namespace, take_rows, to_numpy
from ._loss import LinearSoftmaxLoss
from ._precondition import ColumnStats, MinibatchSetup, block_curvature
from ._solvers import (
    MinibatchOptimizer,
    NoImprovementStop,
    SolverResult,
    TrainingMonitor,
)
from ._solvers._sgd import _batches

_STOCHASTIC = ("sgd", "adam")

# Where fitted results go back: always NumPy for chunked input.
HOST = ComputeTarget(None, np.empty((1, 1)))


def _map_state(state, fn):
    """The optimizer ``state`` with ``fn`` applied to its moment arrays."""
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


def chunk_pass(
    params, optimizer, rng, X, target, sample_weight, *, loss, batch_size, shuffle
):
    """Minibatch updates over the rows of one chunk, in the chunk's namespace.

    ``params`` (host NumPy ``[W]`` or ``[W, b]``) and the optimizer's moments
    move to the chunk's namespace and device and back. ``optimizer`` and
    ``rng`` advance in place. Returns ``(params, sum_B J_B * S_B)``.
    """
    xp = get_namespace(X)
    params = [asarray_like(p, X, xp=xp) for p in params]
    optimizer.state = _map_state(
        optimizer.state, lambda a: asarray_like(to_numpy(a), X, xp=xp)
    )
    has_b = len(params) == 2
    total = 0.0
    for idx in _batches(X.shape[0], batch_size, rng, shuffle, X, xp):
        Xb = take_rows(X, idx, xp)
        tb = take_rows(target, idx, xp)
        wb = None if sample_weight is None else take_rows(sample_weight, idx, xp)
        Jb, gW, gb = loss.loss_gradient_arrays(
            params[0], params[1] if has_b else None, Xb, tb, wb, xp=xp
        )
        Sb = Xb.shape[0] if wb is None else xp.sum(wb)
        total = total + Jb * Sb
        params = optimizer.update(params, [gW, gb] if has_b else [gW], xp)
    optimizer.state = _map_state(optimizer.state, to_numpy)
    return [to_numpy(p) for p in params], float(total)


def make_optimizer(estimator, state=None, setup=None):
    """The estimator's :class:`MinibatchOptimizer`, resuming ``state``, in the
    variables of ``setup`` (a :class:`~sksoftmax._precondition.MinibatchSetup`)."""
    est = estimator
    return MinibatchOptimizer(
        est.solver,
        learning_rate_init=setup.learning_rate_init,
        l2=setup.l2_weights(),
        average=est.average,
        learning_rate=est.learning_rate,
        power_t=est.power_t,
        momentum=est.momentum,
        nesterovs_momentum=est.nesterovs_momentum,
        beta_1=est.beta_1,
        beta_2=est.beta_2,
        epsilon=est.epsilon,
        state=state,
    )


def run_chunked_epochs(
    run_epoch,
    n_chunks,
    params,
    optimizer,
    rng,
    *,
    S,
    n_samples,
    max_iter,
    shuffle,
    tol,
    n_iter_no_change,
    monitor,
):
    """Epochs of ``run_epoch(order, params, optimizer, rng)``, which returns
    ``(params, optimizer, rng, sum_B J_B * S_B)``; stopping rules as
    :func:`~sksoftmax._solvers.run_minibatch_epochs` without a validation set.
    """
    rule = NoImprovementStop(tol=tol, n_iter_no_change=n_iter_no_change)
    epochs, converged, stopped = 0, False, False
    for _ in range(max_iter):
        # One chunk draws nothing here, so it shuffles exactly as in memory.
        order = (
            rng.permutation(n_chunks)
            if shuffle and n_chunks > 1
            else np.arange(n_chunks)
        )
        params, optimizer, rng, epoch_sum = run_epoch(order, params, optimizer, rng)
        epochs += 1
        optimizer.end_epoch(n_samples)
        objective = epoch_sum / S + optimizer.penalty(params[0], np)
        improved = rule.loss_improved(objective)
        if monitor.step(objective, learning_rate=float(optimizer.learning_rate)):
            stopped = True
            break
        if rule.should_stop(improved, optimizer):
            converged = True
            break
    return SolverResult(
        W=params[0],
        b=params[1] if len(params) == 2 else None,
        n_iter=epochs,
        loss_curve=monitor.loss_curve,
        converged=converged or stopped,
        stopped_by_callback=stopped,
        best_loss=rule.best_loss,
        state=optimizer.state,
        rng=rng,
    )


def fit_chunked_stochastic(
    estimator,
    run_epoch,
    *,
    n_chunks,
    n_samples,
    n_features,
    classes,
    S_batch,
    dtype,
    incremental=False,
    single_pass=False,
    stats=None,
    curvature=None,
):
    """SGD/Adam for ``estimator`` over chunked data; returns what ``_store``
    takes. ``run_epoch(order, params, optimizer, rng, *, loss, batch_size,
    shuffle)`` runs one pass over the chunks in ``order``. ``stats`` and
    ``curvature``: see :class:`~sksoftmax._precondition.MinibatchSetup`."""
    est = estimator
    S = S_batch + (est._seen_weight if incremental else 0.0)
    alpha = 0.0 if np.isinf(est.C) else 1.0 / (est.C * S)
    loss = LinearSoftmaxLoss(
        len(classes),
        n_features,
        fit_intercept=est.fit_intercept,
        alpha=alpha,
        label_smoothing=est.label_smoothing,
    )
    W0, b0 = est._initial_params(loss, None, classes, incremental)
    state = None
    if incremental:
        state = _map_state(copy.deepcopy(est._optimizer_state), to_numpy)
    setup = MinibatchSetup(
        loss,
        W0,
        b0,
        solver=est.solver,
        precondition=est.precondition,
        learning_rate_init=est.learning_rate_init,
        batch_size=est._batch_size(n_samples),
        momentum=est.momentum,
        n_samples=n_samples,
        stats=stats,
        curvature=curvature,
        state=state,
    )
    params = [setup.V0.astype(dtype)]
    params += [setup.c0.astype(dtype)] if est.fit_intercept else []
    loss = setup.loss
    rng = (
        copy.deepcopy(est._rng) if incremental else check_random_state(est.random_state)
    )
    monitor = TrainingMonitor(
        est,
        verbose=est.verbose,
        callback=est.callback,
        start_iter=est.n_iter_ if incremental else 0,
    )

    def epoch(order, params, optimizer, rng):
        return run_epoch(
            order,
            params,
            optimizer,
            rng,
            loss=loss,
            batch_size=est._batch_size(n_samples),
            shuffle=est.shuffle,
        )

    res = run_chunked_epochs(
        epoch,
        n_chunks,
        params,
        make_optimizer(est, state, setup),
        rng,
        S=S_batch,
        n_samples=n_samples,
        max_iter=1 if single_pass else est.max_iter,
        shuffle=est.shuffle,
        tol=est.tol,
        n_iter_no_change=est.n_iter_no_change,
        monitor=monitor,
    )
    setup.finish(res, use_average=est.average)
    if not res.converged and not single_pass:
        warnings.warn(
            f"Stochastic optimizer: maximum iterations ({est.max_iter}) "
            "reached and the optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )
    if incremental:
        res.loss_curve = list(est.loss_curve_) + res.loss_curve
        res.n_iter += est.n_iter_
    return loss, classes, res, S, HOST, dtype


# -- out of core: a numpy.memmap streamed from disk in blocks ------------------


def memmap_block_rows(estimator, X):
    """Rows per block when ``fit`` should stream the memmap ``X`` from disk in
    blocks of about ``sklearn.get_config()["working_memory"]`` MiB; None when
    ``X`` takes the in-memory path (not a file-backed C-contiguous float
    memmap, L-BFGS, early stopping, or a file that fits in one block, where
    streaming would change nothing)."""
    if estimator.solver not in _STOCHASTIC or estimator.early_stopping:
        return None
    if not isinstance(X, np.memmap) or getattr(X, "_mmap", None) is None:
        return None
    if (
        X.ndim != 2
        or X.dtype not in (np.float32, np.float64)
        or not X.flags.c_contiguous
        or X.shape[1] == 0
    ):
        return None
    batch = estimator._batch_size(X.shape[0])
    budget = get_config()["working_memory"] * 2**20
    # Whole minibatches per block, so that shuffle=False matches the in-memory fit.
    rows = max(batch, int(budget // X.strides[0]) // batch * batch)
    return rows if rows < X.shape[0] else None


class MemmapBlocks:
    """Blocks of rows of a C-contiguous memmap: each read copies one block into
    memory, checks it is finite and unmaps its pages from this process
    (``madvise(MADV_DONTNEED)``; they stay in the page cache), so the resident
    memory holds about one block, not the file. Copy-on-write memmaps
    (``mode="c"``) keep their pages: there they may hold the user's edits."""

    def __init__(self, X, rows):
        self.X, self.rows = X, rows

    def __len__(self):
        return -(-self.X.shape[0] // self.rows)

    def bounds(self, i):
        return i * self.rows, min(self.X.shape[0], (i + 1) * self.rows)

    def read(self, i):
        start, stop = self.bounds(i)
        block = np.array(self.X[start:stop])
        # scikit-learn's fast test: a finite sum means finite entries.
        if not np.isfinite(block.sum()) and not np.isfinite(block).all():
            raise ValueError("Input X contains NaN or infinity.")
        self._release(start, stop)
        return block

    def _release(self, start, stop):
        mm = self.X._mmap
        if not hasattr(mmap, "MADV_DONTNEED"):  # not Linux/BSD: nothing to do
            return
        if self.X.mode == "c":  # private pages: dropping them loses the user's writes
            return
        base = np.frombuffer(mm, dtype=np.uint8, count=1).ctypes.data
        row = self.X.strides[0]
        lo = self.X.ctypes.data - base + start * row
        hi = lo + (stop - start) * row
        lo -= lo % mmap.PAGESIZE
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def fit_memmap(estimator, X, y, sample_weight, rows):
    """SGD/Adam ``fit`` streaming the memmap ``X`` in blocks of ``rows`` rows:
    each epoch reads the blocks in a shuffled order and shuffles within each."""
    est = estimator
    # The finiteness check reads all of X; the blocks are checked as they are read.
    with config_context(assume_finite=True):
        _, target, classes, sw = est._validate_training_data(X, y, sample_weight)
    if sw is not None and not np.all(np.isfinite(sw)):
        raise ValueError("Input sample_weight contains NaN or infinity.")
    blocks = MemmapBlocks(X, rows)
    place = ComputeTarget(est.device, X)
    dtype = X.dtype.type

    def run_epoch(order, params, optimizer, rng, *, loss, batch_size, shuffle):
        total = 0.0
        for i in order:
            start, stop = blocks.bounds(i)
            Xc = place.to_compute(blocks.read(i))
            tc = place.to_compute(
                target[start:stop], dtype=None if target.ndim == 1 else Xc.dtype
            )
            wc = (
                None if sw is None else place.to_compute(sw[start:stop], dtype=Xc.dtype)
            )
            params, s = chunk_pass(
                params,
                optimizer,
                rng,
                Xc,
                tc,
                wc,
                loss=loss,
                batch_size=batch_size,
                shuffle=shuffle,
            )
            total += s
            del Xc  # before the next read: one block in memory, not two
        return params, optimizer, rng, total

    fitted = fit_chunked_stochastic(
        est,
        run_epoch,
        n_chunks=len(blocks),
        n_samples=X.shape[0],
        n_features=X.shape[1],
        classes=classes,
        S_batch=float(X.shape[0] if sw is None else sw.sum()),
        dtype=dtype,
        stats=lambda: _memmap_stats(blocks, sw),
        curvature=lambda pre: block_curvature(
            blocks.read(0), pre, None if sw is None else sw[: blocks.bounds(0)[1]]
        ),
    )
    est._store(fitted)
    return est


def _memmap_stats(blocks, sw):
    """Column statistics in one pass over the blocks of the file."""
    stats = ColumnStats()
    for i in range(len(blocks)):
        start, stop = blocks.bounds(i)
        stats.update(blocks.read(i), None if sw is None else sw[start:stop])
    return stats
