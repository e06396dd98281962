"""The update rules of minibatch SGD (momentum, Nesterov) and Adam.

They live in :mod:`sksoftmax._solvers.optimizers` as small classes; this name
keeps the call sites ``MinibatchOptimizer("sgd", learning_rate_init=..., ...)``
working. The epoch loop that drives them is :mod:`sksoftmax._solvers.minibatch`.
"""

from .optimizers import make_optimizer

__all__ = ["MinibatchOptimizer"]

MinibatchOptimizer = make_optimizer
