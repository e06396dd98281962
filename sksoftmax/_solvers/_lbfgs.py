"""L-BFGS on the flattened parameters through ``scipy.optimize.minimize``."""

import numpy as np
import scipy.optimize

from .._backend import limit_scipy_blas_threads
from .._penalty import SplitL1Problem
from ._common import SolverResult


def minimize_lbfgs(
    loss, coef0, X, target, sample_weight, *, max_iter, tol, monitor, l1=0.0
):
    """Minimize ``loss`` from the flat float64 NumPy vector ``coef0``.

    Uses scikit-learn's LogisticRegression settings (``gtol=tol``,
    ``ftol=64 * eps``, ``maxls=50``), so the same ``tol`` stops at the same
    point. Returns a :class:`SolverResult` with flat float64 parameters in
    ``W`` (the caller unpacks them).

    ``l1 > 0`` adds ``l1 * ||W||_1`` through the bound-constrained split
    ``W = P - N`` (:class:`~sksoftmax._penalty.SplitL1Problem`).
    """
    fun, x0, bounds, split = loss.loss_gradient, coef0, None, None
    if l1:
        split = SplitL1Problem(loss, l1)
        fun, x0, bounds = split.loss_gradient, split.split(coef0), split.bounds()

    def on_iteration(intermediate_result):
        if monitor.step(intermediate_result.fun):
            raise StopIteration

    with limit_scipy_blas_threads():
        opt = scipy.optimize.minimize(
            fun,
            x0,
            args=(X, target, sample_weight),
            method="L-BFGS-B",
            jac=True,
            bounds=bounds,
            callback=on_iteration,
            options={
                "maxiter": max_iter,
                "maxls": 50,
                "gtol": tol,
                "ftol": 64 * np.finfo(float).eps,
            },
        )
    return SolverResult(
        W=opt.x if split is None else split.join(opt.x),
        b=None,
        n_iter=int(opt.nit),
        loss_curve=monitor.loss_curve,
        converged=opt.status == 0,
        stopped_by_callback=opt.status == 99,
        best_loss=float(opt.fun),
        state={"message": str(opt.message), "status": int(opt.status)},
    )
