"""Training: validated data and a problem in, a fitted result out.

Picks the solver, runs it over the data's row source, turns its outcome
into warnings, and hands back a :class:`FitResult` of plain values that the
estimator stores. Nothing here receives the estimator: its parameters come
as a dict (``get_params()``) and its earlier fit as a :class:`Previous`.
"""

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._backend import is_device_out_of_memory, to_numpy
from ._precondition import (
    MinibatchSetup,
    rows_column_stats,
    rows_curvature,
    rows_preconditioner,
)
from ._problem import Start, build_problem
from ._solvers import TrainingMonitor, make_optimizer, minimize_lbfgs
from ._solvers._newton import minimize_newton
from ._solvers.minibatch import Carry, batch_rows, map_state, run_epochs
from ._validation import split_validation

__all__ = ["FitResult", "Previous", "train"]

# Solvers that evaluate the whole objective at every iteration. "newton" is
# internal (SoftmaxRegressionCV's paths on small data), not an estimator option.
FULL_BATCH = ("lbfgs", "newton")


@dataclass
class Previous:
    """What an earlier fit left: the start for ``warm_start``, and for
    ``partial_fit`` the weight seen so far, the history, the optimizer state
    and the random state."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    seen_weight: float = 0.0
    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    optimizer_state: dict | None = None
    rng: object = None


@dataclass
class FitResult:
    """A fit's outcome; ``coef``/``intercept`` are host NumPy in the data's
    float dtype, ``optimizer_state`` host NumPy (SGD/Adam only)."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int
    loss_curve: list
    best_loss: float
    validation_scores: list | None
    seen_weight: float
    optimizer_state: dict | None = None
    rng: object = None


def train(
    data, params, *, previous=None, incremental=False, single_pass=False, callback=None
):
    """Fit ``data`` (:class:`~sksoftmax._validation.TrainingData`) with the
    estimator parameters ``params``.

    ``single_pass``: one epoch of ``partial_fit``; ``incremental``: it
    continues ``previous`` (its weight, optimizer and random state).
    Otherwise a ``fit``, started from ``previous`` when ``warm_start``.
    ``callback(info)`` is called after every iteration or epoch.
    """
    start = None
    if previous is not None and (incremental or params["warm_start"]):
        start = Start(previous.coef, previous.intercept, previous.classes)
    problem = build_problem(
        data,
        C=params["C"],
        l1_ratio=params["l1_ratio"],
        fit_intercept=params["fit_intercept"],
        label_smoothing=params["label_smoothing"],
        start=start,
        seen_weight=previous.seen_weight if incremental else 0.0,
    )
    full_batch = params["solver"] in FULL_BATCH
    monitor = TrainingMonitor(
        verbose=params["verbose"],
        callback=callback,
        start_iter=previous.n_iter if incremental else 0,
        max_iter=None if single_pass else params["max_iter"],
        unit="Iteration" if full_batch else "Epoch",
    )
    try:
        # On CuPy, the GPU of the data is the current one while the solver
        # runs, so that temporaries made without ``device=`` land there.
        with data.place.context():
            if params["solver"] == "lbfgs":
                res = _run_lbfgs(problem, data, params, monitor)
            elif params["solver"] == "newton":
                res = _run_newton(problem, data, params, monitor)
            else:
                res = _run_minibatch(
                    problem, data, params, monitor, previous, incremental, single_pass
                )
    except Exception as exc:
        if not is_device_out_of_memory(exc):
            raise
        raise _out_of_memory(data, exc) from exc
    monitor.finish(res.stop_reason)
    W = to_numpy(res.W).astype(data.dtype)
    b = to_numpy(res.b).astype(data.dtype) if res.b is not None else None
    curve = [float(v) for v in res.loss_curve]
    n_iter = int(res.n_iter)
    if incremental:
        curve = list(previous.loss_curve) + curve
        n_iter += previous.n_iter
    return FitResult(
        classes=data.classes,
        coef=np.ascontiguousarray(W),
        intercept=b if b is not None else np.zeros(W.shape[0], dtype=data.dtype),
        n_iter=n_iter,
        loss_curve=curve,
        best_loss=float(min(curve)) if curve else res.best_loss,
        validation_scores=res.validation_scores,
        seen_weight=problem.S,
        optimizer_state=None if full_batch else res.state,
        rng=res.rng,
    )


def _run_lbfgs(problem, data, params, monitor):
    fun, args = data.rows.lbfgs_objective(problem.loss)
    res = minimize_lbfgs(
        fun,
        problem.coef0,
        *args,
        max_iter=params["max_iter"],
        tol=params["tol"],
        monitor=monitor,
        l1=problem.l1,
        preconditioner=rows_preconditioner(
            data.rows, problem.loss, enabled=params["precondition"]
        ),
        layout=problem.loss,
    )
    return _full_batch_outcome(res, problem, params, "lbfgs")


def _run_newton(problem, data, params, monitor):
    """Newton's method (internal: SoftmaxRegressionCV's paths on small
    in-memory data), with L-BFGS's objective and stopping rule."""
    if problem.l1:
        raise NotImplementedError("Newton's method has no L1 term (l1_ratio > 0).")
    loss, args = data.rows.lbfgs_objective(problem.loss)
    res = minimize_newton(
        loss,
        problem.coef0,
        *args,
        max_iter=params["max_iter"],
        tol=params["tol"],
        monitor=monitor,
    )
    return _full_batch_outcome(res, problem, params, "newton")


def _full_batch_outcome(res, problem, params, name):
    """Unpack a full-batch solver's flat result; its stop reason, and a
    ConvergenceWarning when it did not converge."""
    res.W, res.b = problem.loss.unpack(res.W)
    status = res.state["status"]
    res.stop_reason = {
        0: f"converged ({res.state['message']})",
        1: f"max_iter={params['max_iter']} reached",
        99: "stopped by the callback",
    }.get(status, f"stopped abnormally ({res.state['message']})")
    if status == 1:
        warnings.warn(
            f"{name} failed to converge after {res.n_iter} iteration(s) "
            f"(max_iter={params['max_iter']}). Increase max_iter or scale the data.",
            ConvergenceWarning,
            stacklevel=5,
        )
    elif status not in (0, 99):  # 99: stopped by the callback
        warnings.warn(
            f"{name} stopped abnormally after {res.n_iter} iteration(s) "
            f"(status={status}: {res.state['message']}); the model may be far "
            "from the optimum. Scale the data or raise the regularization "
            "(smaller C).",
            ConvergenceWarning,
            stacklevel=5,
        )
    return res


def _run_minibatch(problem, data, params, monitor, previous, incremental, single_pass):
    if incremental:  # advanced only if the fit succeeds
        rng = copy.deepcopy(previous.rng)
        state = copy.deepcopy(map_state(previous.optimizer_state, to_numpy))
    else:
        rng, state = check_random_state(params["random_state"]), None
    rows, validation = data.rows, None
    if params["early_stopping"] and not single_pass:
        rows, validation = split_validation(rows, params["validation_fraction"], rng)
    n, S = data.n_samples, data.S
    if validation is not None:  # the rows left for training
        n, sw = rows.X.shape[0], rows.sample_weight
        S = float(n if sw is None else to_numpy(sw).sum(dtype=np.float64))
    batch_size = batch_rows(params["batch_size"], n, warn=not single_pass)
    setup = MinibatchSetup(
        problem.loss,
        problem.W0,
        problem.b0,
        solver=params["solver"],
        precondition=params["precondition"],
        learning_rate_init=params["learning_rate_init"],
        batch_size=batch_size,
        momentum=params["momentum"],
        n_samples=n,
        stats=lambda: rows_column_stats(rows),
        curvature=lambda pre: rows_curvature(rows, pre),
        state=state,
    )
    # An average of proximal iterates loses their exact zeros.
    use_average = params["average"] and not problem.l1 and validation is None
    optimizer = make_optimizer(
        params["solver"],
        learning_rate_init=setup.learning_rate_init,
        learning_rate=params["learning_rate"],
        power_t=params["power_t"],
        momentum=params["momentum"],
        nesterovs_momentum=params["nesterovs_momentum"],
        beta_1=params["beta_1"],
        beta_2=params["beta_2"],
        epsilon=params["epsilon"],
        state=state,
        l1=setup.l1_weights(problem.l1),
        l2=setup.l2_weights(),
        average=use_average,
    )
    start = [setup.V0.astype(data.dtype)]
    if setup.c0 is not None:
        start.append(setup.c0.astype(data.dtype))
    res = run_epochs(
        rows,
        setup.loss,
        Carry(start, optimizer, rng),
        n_samples=n,
        S=S,
        batch_size=batch_size,
        max_iter=1 if single_pass else params["max_iter"],
        shuffle=params["shuffle"],
        tol=params["tol"],
        n_iter_no_change=params["n_iter_no_change"],
        monitor=monitor,
        validation=validation,
    )
    setup.finish(res, use_average=use_average)
    if res.stopped_by_callback:
        res.stop_reason = "stopped by the callback"
    elif res.converged:
        res.stop_reason = (
            f"no improvement of tol={params['tol']} in "
            f"{params['n_iter_no_change']} epochs"
        )
    else:
        res.stop_reason = (
            "one pass over the chunk"
            if single_pass
            else f"max_iter={params['max_iter']} reached"
        )
    if not res.converged and not single_pass:
        warnings.warn(
            f"Stochastic optimizer: maximum iterations ({params['max_iter']}) "
            "reached and the optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )
    curve = res.loss_curve
    # Diverging steps stop by "no improvement" and would pass as converged.
    if curve and not curve[-1] <= 10 * curve[0] + 1:
        res.stop_reason = "diverged"
        warnings.warn(
            f"Stochastic optimizer diverged: the objective went from "
            f"{curve[0]:.6g} to {curve[-1]:.6g}. Lower learning_rate_init, "
            "scale the features or raise C.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return res


def _out_of_memory(data, exc):
    n, d, k = data.n_samples, data.n_features, len(data.classes)
    itemsize = np.dtype(data.dtype).itemsize
    return MemoryError(
        f"The device ran out of memory fitting X of shape ({n}, {d}) "
        f"({n * d * itemsize / 2**30:.2f} GiB) with {k} classes: each "
        f"n x K temporary takes {n * k * itemsize / 2**30:.2f} GiB. Use "
        "float32 input, a smaller batch_size (sgd/adam), or lower "
        "sklearn.set_config(working_memory=...) so that L-BFGS evaluates "
        "the loss in smaller row chunks."
    )
