"""Solvers: L-BFGS on anything with ``loss_gradient(coef)``, and the minibatch
epoch loop with its SGD/Adam update rules. None of them knows whether the
arrays live in NumPy or CuPy, in memory or on Dask workers."""

from ._common import NoImprovementStop, SolverResult, TrainingMonitor
from ._lbfgs import minimize_lbfgs
from .minibatch import run_epochs
from .optimizers import make_optimizer

__all__ = [
    "NoImprovementStop",
    "SolverResult",
    "TrainingMonitor",
    "make_optimizer",
    "minimize_lbfgs",
    "run_epochs",
]
