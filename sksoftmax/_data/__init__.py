"""Where the training rows live, and how a solver visits them.

A row source knows nothing of estimators. It offers what the solvers need:

* ``lbfgs_objective(loss)``: an object with ``loss_gradient(coef, *args)``
  and the ``args`` to pass, summing over all rows (for scipy's L-BFGS);
* ``run_epoch(order, step, carry)``: ``carry = step(carry, X, target, sw)``
  for each chunk in ``order`` (``n_chunks`` of them), where the chunk lives.

Kinds: :class:`InMemoryRows` (one chunk, already where the arithmetic
runs), :class:`~sksoftmax._data.memmap.MemmapRows` (blocks of a memmap read
from disk) and :class:`~sksoftmax._data.dask.DaskRows` (row chunks on Dask
workers).
"""

import sys

from .memmap import MemmapRows, memmap_block_rows

__all__ = ["InMemoryRows", "MemmapRows", "is_dask_collection", "memmap_block_rows"]


def is_dask_collection(X):
    """True for a Dask collection; never imports Dask (if Dask is not loaded,
    ``X`` cannot be one)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


class InMemoryRows:
    """All the rows as one chunk, in the namespace and on the device where the
    arithmetic runs."""

    n_chunks = 1

    def __init__(self, X, target, sample_weight):
        self.X, self.target, self.sample_weight = X, target, sample_weight

    def lbfgs_objective(self, loss):
        return loss, (self.X, self.target, self.sample_weight)

    def run_epoch(self, order, step, carry):
        return step(carry, self.X, self.target, self.sample_weight)
