"""L-BFGS on the flattened parameters through ``scipy.optimize.minimize``."""

import numpy as np
import scipy.optimize

from .._backend import limit_scipy_blas_threads
from .._penalty import SplitL1Problem
from .._precondition import (
    ScaledProblem,
    original_gradient_norm,
    projected_gradient,
)
from ._common import SolverResult

# L-BFGS history (pairs of vectors kept) on the preconditioned path. Measured
# by benchmarks/bench_solvers.py: 20 pairs instead of scipy's 10 bring raw
# data to 1e-8 of the optimum in at most 1.45x the iterations its
# standardized copy takes (10 pairs: up to 1.62x) and take no more
# iterations on standardized data; 30 or 50 pairs bought little more.
LBFGS_MEMORY = 20
# ... unless the history would exceed this many bytes beyond scipy's default
# (2 vectors of float64 per pair): then 10, as without preconditioning.
LBFGS_MEMORY_BYTES = 2**28


# Fresh starts after L-BFGS-B stops short of tol (see _restart), and the
# largest gradient entry in the scaled variables below which a stop is taken
# as the float64 floor (J is a mean: about 1e-8 there for standardized data).
MAX_RESTARTS = 5
RESTART_FLOOR = 1e-6


def _restart(opt, converged, gradient_norm, tol, n_iter, max_iter, bounds):
    """Whether L-BFGS-B stopped short: a stop other than tol, max_iter or the
    callback (its relative-reduction rule or a failed line search) with the
    gradient still above ``tol`` in the original variables and, in the scaled
    variables it works in, well above the float64 floor (``RESTART_FLOOR``),
    so that a ``tol`` below the floor does not restart on rounding noise.
    Only where ``gradient_norm`` measures the gradient (the preconditioned
    path)."""
    if converged or gradient_norm is None or n_iter >= max_iter:
        return False
    if opt.status not in (0, 2):  # 1: max_iter, 99: the callback
        return False
    g = np.asarray(opt.jac, dtype=np.float64)
    if bounds is not None:  # projected on the lower bounds of the L1 split
        g = projected_gradient(g, opt.x - bounds.lb)
    if not g.size or np.max(np.abs(g)) <= RESTART_FLOOR:
        return False
    return float(gradient_norm(opt.x)) > tol


def history_length(n_params):
    """Pairs L-BFGS keeps on the preconditioned path for ``n_params`` unknowns."""
    extra = (LBFGS_MEMORY - 10) * 2 * 8 * n_params
    return LBFGS_MEMORY if extra <= LBFGS_MEMORY_BYTES else 10


def minimize_lbfgs(
    loss,
    coef0,
    X,
    target,
    sample_weight,
    *,
    max_iter,
    tol,
    monitor,
    l1=0.0,
    preconditioner=None,
    layout=None,
):
    """Minimize ``loss`` from the flat float64 NumPy vector ``coef0``.

    Uses scikit-learn's LogisticRegression settings (``gtol=tol``,
    ``ftol=64 * eps``, ``maxls=50``), so the same ``tol`` stops at the same
    point. Returns a :class:`SolverResult` with flat float64 parameters in
    ``W`` (the caller unpacks them).

    ``l1 > 0`` adds ``l1 * ||W||_1`` through the bound-constrained split
    ``W = P - N`` (:class:`~sksoftmax._penalty.SplitL1Problem`).

    Without a preconditioner the run is LogisticRegression's (10 pairs of
    history); with one it keeps :func:`history_length` pairs.

    ``preconditioner`` (a :class:`~sksoftmax._precondition.Preconditioner`)
    makes L-BFGS run in its scaled variables (``layout``: see
    :class:`~sksoftmax._precondition.ScaledProblem`). The objective, the
    optimum and the stopping rule stay those of the original variables: the
    run stops when the largest entry of the (projected) gradient of J with
    respect to ``[W, b]`` is at most ``tol``, exactly the quantity scipy's
    ``gtol`` measures without preconditioning.
    """
    if preconditioner is None:
        return _minimize(
            loss, coef0, (X, target, sample_weight), max_iter, tol, monitor, l1
        )
    scaled = ScaledProblem(loss, preconditioner, layout=layout)
    args = (X, target, sample_weight)
    m = scaled.n_logits * scaled.n_features
    split = (
        SplitL1Problem(scaled, np.tile(l1 / preconditioner.scale, scaled.n_logits))
        if l1
        else None
    )

    def gradient_norm(z):
        zs = z if split is None else split.join(z)
        g = scaled.gradient_at(zs, *args)
        return original_gradient_norm(
            g, None if split is None else z, m=m, l1=l1, scale=preconditioner.scale
        )

    res = _minimize(
        scaled,
        scaled.to_scaled(coef0),
        args,
        max_iter,
        tol,
        monitor,
        l1,
        split=split,
        gradient_norm=gradient_norm,
        memory=history_length(coef0.size if split is None else 2 * coef0.size),
    )
    res.W = scaled.to_original(res.W)
    return res


def _minimize(
    fun_obj,
    x0,
    args,
    max_iter,
    tol,
    monitor,
    l1,
    *,
    split=None,
    gradient_norm=None,
    memory=10,
):
    fun, bounds = fun_obj.loss_gradient, None
    if l1:
        split = split if split is not None else SplitL1Problem(fun_obj, l1)
        fun, x0, bounds = split.loss_gradient, split.split(x0), split.bounds()
    converged = [False]

    def on_iteration(intermediate_result):
        g_max = None
        if gradient_norm is not None:
            g_max = float(gradient_norm(intermediate_result.x))  # cached: no work
        if monitor.step(intermediate_result.fun, grad_max=g_max):
            raise StopIteration
        if g_max is not None and g_max <= tol:
            converged[0] = True
            raise StopIteration

    # The stopping rule on the original variables' gradient replaces gtol;
    # it is checked at the start point too, as L-BFGS-B checks gtol there.
    if gradient_norm is not None and gradient_norm(x0) <= tol:
        f, _ = fun(x0, *args)
        return SolverResult(
            W=x0 if split is None else split.join(x0),
            b=None,
            n_iter=0,
            loss_curve=monitor.loss_curve,
            best_loss=float(f),
            state={"message": "gradient below tol at the start", "status": 0},
        )
    options = {
        "maxcor": memory,
        "maxls": 50,
        "gtol": tol if gradient_norm is None else 0.0,
        "ftol": 64 * np.finfo(float).eps,
    }
    n_iter, restarts, f_before = 0, 0, np.inf
    with limit_scipy_blas_threads():
        while True:
            opt = scipy.optimize.minimize(
                fun,
                x0,
                args=args,
                method="L-BFGS-B",
                jac=True,
                bounds=bounds,
                callback=on_iteration,
                options={**options, "maxiter": max_iter - n_iter},
            )
            n_iter += int(opt.nit)
            if not _restart(
                opt, converged[0], gradient_norm, tol, n_iter, max_iter, bounds
            ):
                break
            if restarts == MAX_RESTARTS or not opt.fun < f_before:
                break  # no progress since the last start: a true floor
            # L-BFGS-B stopped on its relative-reduction rule (or a failed
            # line search) with the gradient still above tol: a stall of its
            # curvature pairs, seen with the L1 split's bounds. Start again
            # from here with an empty history.
            restarts += 1
            x0, f_before = opt.x, opt.fun
    status = 0 if converged[0] else int(opt.status)
    return SolverResult(
        W=opt.x if split is None else split.join(opt.x),
        b=None,
        n_iter=n_iter,
        loss_curve=monitor.loss_curve,
        converged=status == 0,
        stopped_by_callback=status == 99,
        best_loss=float(opt.fun),
        state={
            "message": str(opt.message)
            if status
            else "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL"
            if converged[0]
            else str(opt.message),
            "status": status,
        },
    )
