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
    stop_reason: str = ""


class TrainingMonitor:
    """Records the objective after each iteration or epoch, prints it when
    ``verbose`` and asks the user's ``callback`` whether to stop.

    ``verbose=1`` prints one line per iteration (L-BFGS) or epoch (SGD/Adam)::

        Iteration 3/100: objective 0.41723, max |gradient| 2.1e-03, 0.01 s
        Epoch 7/200: objective 0.41723, validation score 0.9333, 0.12 s

    and, from :meth:`finish`, a last line with the reason training stopped.
    ``verbose=2`` adds the step: the learning rate of SGD/Adam, the length
    of the L-BFGS step. ``max_iter=None`` (``partial_fit``) omits the
    ``/max_iter``.
    """

    def __init__(
        self, *, verbose=0, callback=None, start_iter=0, max_iter=None, unit="Iteration"
    ):
        self.verbose = verbose
        self.callback = callback
        self.max_iter = max_iter
        self.unit = unit
        self.loss_curve = []
        self.iteration = start_iter
        self._start = start_iter
        self._t0 = time.perf_counter()

    @property
    def elapsed(self):
        return time.perf_counter() - self._t0

    def step(self, objective, **extra):
        """Record one iteration; return True when the callback asks to stop.

        ``extra`` may hold ``grad_max`` (L-BFGS: the largest gradient entry),
        ``validation_score``, ``learning_rate`` or ``step`` (printed with
        ``verbose=2``); it is passed on to the callback's ``info``.
        """
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
            print(self._line(objective, info))
        if self.callback is not None:
            return bool(self.callback(info))
        return False

    def _line(self, objective, info):
        total = "" if self.max_iter is None else f"/{self.max_iter}"
        parts = [f"{self.unit} {self.iteration}{total}: objective {objective:.8g}"]
        if info.get("grad_max") is not None:
            parts.append(f"max |gradient| {info['grad_max']:.2e}")
        if info.get("validation_score") is not None:
            parts.append(f"validation score {info['validation_score']:.6g}")
        if self.verbose > 1:
            for key, name in (("learning_rate", "learning rate"), ("step", "step")):
                if info.get(key) is not None:
                    parts.append(f"{name} {info[key]:.3g}")
        parts.append(f"{info['elapsed']:.2f} s")
        return ", ".join(parts)

    def finish(self, reason):
        """Print (``verbose``) why training stopped, after how many steps."""
        if self.verbose:
            n = self.iteration - self._start
            unit = self.unit.lower() + ("" if n == 1 else "s")
            print(f"Stopped after {n} {unit}: {reason}.")


class NoImprovementStop:
    """When SGD/Adam have converged: the training objective (or, with a
    validation set, the score) has improved by less than ``tol`` in total
    over more than ``n_iter_no_change`` epochs.

    Each epoch is compared with the epoch that last counted as an
    improvement (the reference), not with the best value since then as in
    MLPClassifier: there a steady decrease of less than ``tol`` per epoch
    never counts, and a fit still on its way stops far from the optimum (on
    standardized wine at C=1, 11% above it) without a warning. Here such a
    decrease adds up until it reaches ``tol``, which a decrease of at least
    ``tol / (n_iter_no_change + 1)`` per epoch does before the rule stops.
    After more than ``n_iter_no_change`` epochs without improvement the
    optimizer decides: stop, or (``adaptive`` learning rate) divide the step
    and go on.
    """

    def __init__(self, *, tol, n_iter_no_change):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.best_loss = float("inf")
        self.count = 0
        self._reference = float("inf")

    def improved(self, objective, score=None):
        """Record one epoch's training objective (and validation score, which
        then decides); True when it counts as an improvement."""
        self.best_loss = min(self.best_loss, objective)
        value = objective if score is None else -score
        if value <= self._reference - self.tol:
            self._reference = value
            return True
        return False

    def postpone(self):
        """Go on for another ``n_iter_no_change`` epochs before deciding."""
        self.count = 0

    def should_stop(self, improved, optimizer):
        """Record one epoch; True when training should end (converged)."""
        self.count = 0 if improved else self.count + 1
        if self.count <= self.n_iter_no_change:
            return False
        if optimizer.should_stop():
            return True
        self.count = 0
        return False
