"""Newton's method with the exact Hessian, for problems with few parameters.

:class:`~sksoftmax.SoftmaxRegressionCV` solves each fold's path of ``C`` this
way on small in-memory data (``solver="auto"``): near the optimum Newton's
method converges quadratically, and warm-started along the path it needs a
handful of iterations where L-BFGS needs tens, each with SciPy's per-call
overhead. The objective and the stopping rule are L-BFGS's: J itself, and
the largest entry of its gradient at most ``tol``.
"""

import numpy as np

from .._cpu_kernels import hold_blas_one_thread
from ._common import SolverResult

# Armijo's sufficient-decrease constant, and the step halvings tried.
ARMIJO = 1e-4
MAX_HALVINGS = 40


# Where Newton's method pays over L-BFGS: one iteration forms the Hessian,
# about n_samples * n_params^2 multiply-adds (n_params / 2 evaluations of the
# gradient), and factorizes it (n_params^3 / 3); it takes 1-6 iterations per
# C where L-BFGS takes 5-20, each with ~100 us of SciPy's overhead. Measured
# by benchmarks/bench_cv.py --newton (see RESULTS.md).
NEWTON_MAX_WORK = 2**21


def newton_work(n_samples, n_params):
    """Multiply-adds of one Newton iteration: forming the Hessian and
    factorizing it."""
    return n_samples * n_params**2 + n_params**3 / 3


def newton_pays(n_samples, n_params):
    """Whether a path of fits on ``n_samples`` rows with ``n_params``
    unknowns is solved faster by Newton's method than by L-BFGS: where one
    iteration takes at most ``NEWTON_MAX_WORK`` multiply-adds."""
    return newton_work(n_samples, n_params) <= NEWTON_MAX_WORK


def _direction(H, g):
    """The Newton step ``-H^+ g``. ``H`` is positive semidefinite: the full
    multinomial parametrization leaves ``b`` free along ``(1, ..., 1)`` (and,
    without a penalty, ``W`` along its columns), directions in which ``g``
    has no component; a ridge far below the Hessian's scale makes the
    factorization exist without moving the step off that subspace."""
    ridge = 1e-12 * max(float(np.max(np.diag(H))), 1e-300)
    H[np.diag_indices_from(H)] += ridge
    try:
        return -np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return -np.linalg.lstsq(H, g, rcond=None)[0]


def _drop_free_directions(step, loss):
    """Remove from ``step`` (in place) its part along the directions in which
    J does not change: with one logit per class, adding one number to every
    class's intercept (and, without an L2 term, to every class's weight of a
    feature) leaves the probabilities alone. The gradient has no part there,
    so L-BFGS never moves along them; the solve's ridge and rounding would,
    shifting every logit by a constant (``decision_function`` would then
    depend on rounding, e.g. weighted rows against repeated ones)."""
    k, d = loss.n_logits, loss.n_features
    if k == 1:  # binary: one logit, no free direction
        return
    if loss.fit_intercept:
        b = step[k * d :]
        b -= b.mean()
    if not loss.alpha:
        W = step[: k * d].reshape(k, d)
        W -= W.mean(axis=0)


def minimize_newton(loss, coef0, X, target, sample_weight, *, max_iter, tol, monitor):
    """Minimize ``loss`` (a :class:`~sksoftmax._loss.LinearSoftmaxLoss`,
    NumPy ``X``) from the flat float64 ``coef0`` by Newton's method with a
    backtracking (Armijo) line search; stops when ``max |gradient| <= tol``
    (``status`` 0), after ``max_iter`` iterations (1), when the callback asks
    (99) or when no step decreases J (2, J at its rounding floor)."""
    # Small products throughout: NumPy's BLAS on one thread for the whole run
    # (two threads on a busy machine made the Hessian 20x slower, waiting
    # for a descheduled worker).
    with hold_blas_one_thread():
        return _newton(loss, coef0, X, target, sample_weight, max_iter, tol, monitor)


def _newton(loss, coef0, X, target, sample_weight, max_iter, tol, monitor):
    args = (X, target, sample_weight)
    coef = np.array(coef0, dtype=np.float64)
    f, g = loss.loss_gradient(coef, *args)
    g_max = float(np.max(np.abs(g))) if g.size else 0.0
    n_iter, status, message = 0, 1, "max_iter reached"
    if g_max <= tol:
        status, message = 0, "gradient below tol at the start"
    while status == 1 and n_iter < max_iter:
        step = _direction(loss.hessian(coef, X, sample_weight), g)
        _drop_free_directions(step, loss)
        slope = float(g @ step)
        if not slope < 0:  # rounding on a flat problem: steepest descent
            step, slope = -g, -float(g @ g)
        t, accepted = 1.0, False
        for _ in range(MAX_HALVINGS):
            new = coef + t * step
            f_new, g_new = loss.loss_gradient(new, *args)
            g_new_max = float(np.max(np.abs(g_new)))
            # Near the optimum J changes below its rounding error: a step
            # that does not raise J beyond it and shrinks the gradient counts.
            at_floor = f_new <= f + 8 * np.finfo(float).eps * abs(f)
            if f_new <= f + ARMIJO * t * slope or (at_floor and g_new_max < g_max):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            status, message = 2, "no step decreases the objective"
            break
        coef, f, g, g_max = new, f_new, g_new, g_new_max
        n_iter += 1
        if monitor.step(f, grad_max=g_max, step=t):
            status, message = 99, "stopped by the callback"
        elif g_max <= tol:
            status, message = 0, "max |gradient| <= tol"
    return SolverResult(
        W=coef,
        b=None,
        n_iter=n_iter,
        loss_curve=monitor.loss_curve,
        converged=status == 0,
        stopped_by_callback=status == 99,
        best_loss=float(f),
        state={"message": message, "status": status},
    )
