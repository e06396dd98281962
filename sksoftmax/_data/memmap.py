"""A ``numpy.memmap`` streamed from disk in blocks of rows, for SGD/Adam."""

import mmap

import numpy as np
from sklearn import get_config

__all__ = ["MemmapBlocks", "MemmapRows", "memmap_block_rows"]


def memmap_block_rows(X, batch_size):
    """Rows per block when ``X`` should be streamed from disk in blocks of
    about ``sklearn.get_config()["working_memory"]`` MiB; None when ``X`` is
    not a file-backed C-contiguous float memmap, or fits in one block (where
    streaming would change nothing)."""
    if not isinstance(X, np.memmap) or getattr(X, "_mmap", None) is None:
        return None
    if (
        X.ndim != 2
        or X.dtype not in (np.float32, np.float64)
        or not X.flags.c_contiguous
        or X.shape[1] == 0
    ):
        return None
    batch = min(batch_size, X.shape[0])
    budget = get_config()["working_memory"] * 2**20
    # Whole minibatches per block, so that shuffle=False matches the in-memory fit.
    rows = max(batch, int(budget // X.strides[0]) // batch * batch)
    return rows if rows < X.shape[0] else None


class MemmapBlocks:
    """Blocks of rows of a C-contiguous memmap: each read copies one block into
    memory, checks it is finite and unmaps its pages from this process
    (``madvise(MADV_DONTNEED)``; they stay in the page cache), so the resident
    memory holds about one block, not the file. Copy-on-write memmaps
    (``mode="c"``) keep their pages: there they may hold the user's edits."""

    def __init__(self, X, rows):
        self.X, self.rows = X, rows

    def __len__(self):
        return -(-self.X.shape[0] // self.rows)

    def bounds(self, i):
        return i * self.rows, min(self.X.shape[0], (i + 1) * self.rows)

    def read(self, i):
        start, stop = self.bounds(i)
        block = np.array(self.X[start:stop])
        # scikit-learn's fast test: a finite sum means finite entries.
        if not np.isfinite(block.sum()) and not np.isfinite(block).all():
            raise ValueError("Input X contains NaN or infinity.")
        self._release(start, stop)
        return block

    def _release(self, start, stop):
        mm = self.X._mmap
        if not hasattr(mmap, "MADV_DONTNEED"):  # not Linux/BSD: nothing to do
            return
        if self.X.mode == "c":  # private pages: dropping them loses the user's writes
            return
        base = np.frombuffer(mm, dtype=np.uint8, count=1).ctypes.data
        row = self.X.strides[0]
        lo = self.X.ctypes.data - base + start * row
        hi = lo + (stop - start) * row
        lo -= lo % mmap.PAGESIZE
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


class MemmapRows:
    """The rows of a memmap in blocks of ``rows`` rows, read as they are
    visited and moved to where the arithmetic runs (``place``); targets and
    weights are small and stay in memory."""

    def __init__(self, X, target, sample_weight, rows, place):
        self.blocks = MemmapBlocks(X, rows)
        self.target, self.sample_weight, self.place = target, sample_weight, place

    @property
    def n_chunks(self):
        return len(self.blocks)

    def chunk(self, i):
        start, stop = self.blocks.bounds(i)
        Xc = self.place.to_compute(self.blocks.read(i))
        tc = self.place.to_compute(
            self.target[start:stop], dtype=None if self.target.ndim == 1 else Xc.dtype
        )
        sw = self.sample_weight
        wc = (
            None
            if sw is None
            else self.place.to_compute(sw[start:stop], dtype=Xc.dtype)
        )
        return Xc, tc, wc

    def lbfgs_objective(self, loss):
        raise NotImplementedError(
            "L-BFGS reads a memmap in place (the in-memory path), not in blocks."
        )

    def run_epoch(self, order, step, carry):
        for i in order:
            # One block in memory at a time: the previous one is released
            # when ``chunk`` is rebound.
            chunk = None
            chunk = self.chunk(i)
            carry = step(carry, *chunk)
        return carry
