"""Solvers: each takes a :class:`~sksoftmax._loss.LinearSoftmaxLoss`, the data
and a start point, and returns a :class:`SolverResult`. None of them knows
whether the arrays live in NumPy or CuPy: they receive ``xp``."""

from ._common import NoImprovementStop, SolverResult, TrainingMonitor
from ._lbfgs import minimize_lbfgs
from ._sgd import MinibatchOptimizer, run_minibatch_epochs

__all__ = [
    "MinibatchOptimizer",
    "NoImprovementStop",
    "SolverResult",
    "TrainingMonitor",
    "minimize_lbfgs",
    "run_minibatch_epochs",
]
