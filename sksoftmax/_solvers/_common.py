"""What every solver reports, and the per-iteration bookkeeping they share:
the objective curve, verbose lines and the user's callback."""

import time
from dataclasses import dataclass, field


@dataclass
class SolverResult:
    """Parameters and history handed back to the estimator.

    ``W`` (k, d) and ``b`` (k,) or None are in the namespace of the data.
    """

    W: object
    b: object
    n_iter: int
    loss_curve: list = field(default_factory=list)
    converged: bool = True
    stopped_by_callback: bool = False
    validation_scores: list | None = None
    best_loss: float | None = None
    state: dict | None = None
    rng: object = None


class TrainingMonitor:
    """Records the objective after each iteration or epoch, prints it when
    ``verbose`` and asks the user's ``callback`` whether to stop."""

    def __init__(self, *, verbose=0, callback=None, start_iter=0):
        self.verbose = verbose
        self.callback = callback
        self.loss_curve = []
        self.iteration = start_iter
        self._t0 = time.perf_counter()

    @property
    def elapsed(self):
        return time.perf_counter() - self._t0

    def step(self, objective, **extra):
        """Record one iteration; return True when the callback asks to stop."""
        self.iteration += 1
        objective = float(objective)
        self.loss_curve.append(objective)
        info = {
            "iteration": self.iteration,
            "objective": objective,
            "elapsed": self.elapsed,
            **extra,
        }
        if self.verbose:
            line = (
                f"Iteration {self.iteration}, objective = {objective:.8f}, "
                f"elapsed = {info['elapsed']:.2f}s"
            )
            if self.verbose > 1:
                line += "".join(
                    f", {k} = {v:.6g}" for k, v in extra.items() if isinstance(v, float)
                )
            print(line)
        if self.callback is not None:
            return bool(self.callback(info))
        return False


class NoImprovementStop:
    """MLPClassifier's stopping rule for epochs of SGD/Adam.

    An epoch improves when the training objective falls by at least ``tol``
    below its best so far (or, with a validation set, the score rises by
    ``tol`` above its best). After more than ``n_iter_no_change`` epochs
    without improvement the optimizer decides: stop, or (``adaptive``
    learning rate) divide the step and go on.
    """

    def __init__(self, *, tol, n_iter_no_change):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.best_loss = float("inf")
        self.count = 0

    def loss_improved(self, objective):
        improved = objective <= self.best_loss - self.tol
        self.best_loss = min(self.best_loss, objective)
        return improved

    def should_stop(self, improved, optimizer):
        """Record one epoch; True when training should end (converged)."""
        self.count = 0 if improved else self.count + 1
        if self.count <= self.n_iter_no_change:
            return False
        if optimizer.should_stop():
            return True
        self.count = 0
        return False
