"""L-BFGS on the flattened parameters through ``scipy.optimize.minimize``."""

import numpy as np
import scipy.optimize

from .._backend import limit_scipy_blas_threads
from .._penalty import SplitL1Problem
from .._precondition import ScaledProblem, original_gradient_norm
from ._common import SolverResult


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
    )
    res.W = scaled.to_original(res.W)
    return res


def _minimize(
    fun_obj, x0, args, max_iter, tol, monitor, l1, *, split=None, gradient_norm=None
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
    with limit_scipy_blas_threads():
        opt = scipy.optimize.minimize(
            fun,
            x0,
            args=args,
            method="L-BFGS-B",
            jac=True,
            bounds=bounds,
            callback=on_iteration,
            options={
                "maxiter": max_iter,
                "maxls": 50,
                "gtol": tol if gradient_norm is None else 0.0,
                "ftol": 64 * np.finfo(float).eps,
            },
        )
    status = 0 if converged[0] else int(opt.status)
    return SolverResult(
        W=opt.x if split is None else split.join(opt.x),
        b=None,
        n_iter=int(opt.nit),
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
