"""L-BFGS on the flattened parameters through ``scipy.optimize.minimize``."""

import numpy as np
import scipy.optimize

from .._backend import limit_scipy_blas_threads
from ._common import SolverResult


def minimize_lbfgs(loss, coef0, X, target, sample_weight, *, max_iter, tol,
                   monitor):
    """Minimize ``loss`` from the flat float64 NumPy vector ``coef0``.

    Uses scikit-learn's LogisticRegression settings (``gtol=tol``,
    ``ftol=64 * eps``, ``maxls=50``), so the same ``tol`` stops at the same
    point. Returns a :class:`SolverResult` with flat float64 parameters in
    ``W`` (the caller unpacks them).
    """

    def on_iteration(intermediate_result):
        if monitor.step(intermediate_result.fun):
            raise StopIteration

    with limit_scipy_blas_threads():
        opt = scipy.optimize.minimize(
            loss.loss_gradient,
            coef0,
            args=(X, target, sample_weight),
            method="L-BFGS-B",
            jac=True,
            callback=on_iteration,
            options={
                "maxiter": max_iter,
                "maxls": 50,
                "gtol": tol,
                "ftol": 64 * np.finfo(float).eps,
            },
        )
    return SolverResult(
        W=opt.x,
        b=None,
        n_iter=int(opt.nit),
        loss_curve=monitor.loss_curve,
        converged=opt.status == 0,
        stopped_by_callback=opt.status == 99,
        best_loss=float(opt.fun),
        state={"message": str(opt.message), "status": int(opt.status)},
    )
