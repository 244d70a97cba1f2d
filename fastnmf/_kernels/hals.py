"""HALS: exact coordinate descent on the rows of one factor (Cichocki & Phan 2009).

For the half-problem ``min_{F ≥ 0} ½‖Y − F Gᵀ‖²`` with products ``YG = Y G`` and
``Q = GᵀG``, entry ``F[i, t]`` has the closed-form minimiser

    F[i, t] ← max(0, F[i, t] + (YG[i, t] − F[i, :] · Q[:, t]) / Q[t, t])

With missing values each row has its own Gram matrix (the Gram of the columns of G it
observes): ``Q`` is then a stack (r, k, k), and (1, k, k) when all rows share one.

Row i never reads another row: rows are independent sub-problems, updated in parallel
(components in order inside a row), so the result is the same for any number of
threads.
"""

import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT
from .blocks import ROW_BLOCK, stop_rows, store_transposed


def hals_update(F, YG, Q, max_sweeps, delta):
    """Update ``F`` (r, k) in place with repeated HALS sweeps; return the sweep count.

    ``Q`` is (1, k, k), the Gram matrix shared by all rows, or (r, k, k), one per row.
    Gillis & Glineur (2012, Algorithm 2): the products are the expensive part, so sweeps
    over the same products are repeated, up to ``max_sweeps``, while they still pay:
    a row stops once its squared change falls below ``delta`` times that of its first
    sweep. Columns of G that are entirely zero (``Q[·, t, t] == 0``) leave F[:, t] at 0.
    Returns the largest number of sweeps any row made. (Two kernels, so that a run
    compiles only the one its data needs.)
    """
    if Q.shape[0] == 1:
        return _hals_shared(F, YG, Q[0], max_sweeps, delta)
    return _hals_per_row(F, YG, Q, max_sweeps, delta)


@njit(**PARALLEL_JIT)
def _hals_shared(F, YG, q, max_sweeps, delta):
    """``hals_update`` with the Gram ``q`` (k, k) shared by every row."""
    r = F.shape[0]
    sweeps = np.zeros(r, dtype=np.int64)
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        lo = block * ROW_BLOCK
        _sweep_block(F, YG, q, lo, min(r, lo + ROW_BLOCK), max_sweeps, delta, sweeps)
    return sweeps.max()


@njit(**PARALLEL_JIT)
def _hals_per_row(F, YG, Q, max_sweeps, delta):
    """``hals_update`` with one Gram ``Q[i]`` per row."""
    r = F.shape[0]
    sweeps = np.zeros(r, dtype=np.int64)
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        lo = block * ROW_BLOCK
        _sweep_rows(F, YG, Q, lo, min(r, lo + ROW_BLOCK), max_sweeps, delta, sweeps)
    return sweeps.max()


@njit(**JIT)
def _sweep_block(F, YG, q, lo, hi, max_sweeps, delta, sweeps):
    """Sweeps over the rows ``lo:hi`` of F, which share the Gram ``q``.

    The block is worked on transposed, component by component across its rows: for
    component t, ``g = YG[:, t] − F q[:, t]`` over the block's rows is ``k`` axpys of
    length ``ROW_BLOCK`` (padded, so the trip count is fixed), which vectorise; a k-term
    dot product per row and coordinate, as ``_sweep_rows`` does, is a chain of dependent
    operations (measured 1.7-2× slower at k = 20-30). Each row still sees exactly its own
    sequence of coordinate updates. A row whose sweeps have stopped keeps its values
    (``live`` = 0 masks its changes).
    """
    k = F.shape[1]
    rows = hi - lo
    Ft = np.zeros((k, ROW_BLOCK), dtype=F.dtype)
    YGt = np.zeros((k, ROW_BLOCK), dtype=F.dtype)
    g = np.empty(ROW_BLOCK, dtype=F.dtype)
    live = np.zeros(ROW_BLOCK, dtype=F.dtype)
    change, first = np.zeros(ROW_BLOCK), np.zeros(ROW_BLOCK)
    for j in range(rows):
        live[j] = 1
        for t in range(k):
            Ft[t, j] = F[lo + j, t]
            YGt[t, j] = YG[lo + j, t]
    for sweep in range(max_sweeps):
        for j in range(ROW_BLOCK):
            change[j] = 0.0
        for t in range(k):
            h = q[t, t]
            if h <= 0:
                for j in range(ROW_BLOCK):
                    Ft[t, j] *= 1 - live[j]
                continue
            for j in range(ROW_BLOCK):
                g[j] = YGt[t, j]
            for s in range(k):  # q is symmetric: row t, contiguous
                c = q[t, s]
                for j in range(ROW_BLOCK):
                    g[j] -= Ft[s, j] * c
            inverse = 1 / h
            for j in range(ROW_BLOCK):
                old = Ft[t, j]
                step = (max(old + g[j] * inverse, 0) - old) * live[j]
                Ft[t, j] = old + step
                change[j] += np.float64(step) * np.float64(step)
        if stop_rows(change, first, live, rows, sweep, delta, sweeps, lo) == 0:
            break
    store_transposed(F, lo, rows, Ft)


@njit(**JIT)
def _sweep_rows(F, YG, Q, lo, hi, max_sweeps, delta, sweeps):
    """Sweeps over the rows ``lo:hi`` of F, row i against its own Gram ``Q[i]``.

    Components run in the outer loop and the rows in the inner one: the rows' updates
    are independent chains of dependent operations, so interleaving them keeps the
    pipeline busy (about 2-3× faster than one row at a time), while each row still sees
    exactly its own sequence of updates.
    """
    k = F.shape[1]
    rows = hi - lo
    live = np.ones(rows)
    change, first = np.zeros(rows), np.zeros(rows)
    for sweep in range(max_sweeps):
        for j in range(rows):
            change[j] = 0.0
        for t in range(k):
            for j in range(rows):
                if live[j] != 0:
                    i = lo + j
                    q = Q[i]
                    h = q[t, t]
                    if h <= 0:
                        F[i, t] = 0
                        continue
                    g = YG[i, t]
                    for s in range(k):  # q is symmetric: read row t, contiguous
                        g -= F[i, s] * q[t, s]
                    new = max(F[i, t] + g / h, 0)
                    diff = np.float64(new) - np.float64(F[i, t])
                    F[i, t] = new
                    change[j] += diff * diff
        if stop_rows(change, first, live, rows, sweep, delta, sweeps, lo) == 0:
            break
