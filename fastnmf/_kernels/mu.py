"""Frobenius multiplicative updates repeated on the same products (accelerated MU).

Gillis & Glineur (2012, "Accelerated multiplicative updates and hierarchical ALS
algorithms for nonnegative matrix factorization", Neural Computation 24(4), §3): the
Lee–Seung update of F for ``½‖Y − F Gᵀ‖²`` reads only ``Y G`` (the product with X, the
expensive part) and the Gram ``GᵀG``, so with both fixed it can be repeated at O(k²)
per row, each repetition lowering the half-problem's objective again (Lee & Seung's
auxiliary function holds at any F). Rows are independent sub-problems: each repeats
until its squared change falls below ``delta`` times that of its first update.
"""

import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT
from .blocks import ROW_BLOCK, raise_to_floor, stop_rows, store_transposed


def mu_repeats(F, YG, Q, l1, l2, max_repeats, delta, floor_ratio):
    """Repeat ``F ← F ∘ max(YG, 0) / (F Q + l1 + l2·F)`` on the rows of F, in place.

    ``Q`` is (1, k, k), the Gram matrix shared by all rows, or (r, k, k), one per row
    (masked data). Each row makes at most ``max_repeats`` updates, stopping once its
    squared change is at most ``delta`` times its first. Where the denominator is not
    positive the entry becomes 0; then every entry is raised to ``floor_ratio`` times
    the largest entry of F, so that none locks at exactly 0 (a zero never grows under
    a multiplicative update). Returns the largest number of updates any row made.
    (Two kernels, so that a run compiles only the one its data needs.)
    """
    if Q.shape[0] == 1:
        return _mu_shared(F, YG, Q[0], l1, l2, max_repeats, delta, floor_ratio)
    return _mu_per_row(F, YG, Q, l1, l2, max_repeats, delta, floor_ratio)


@njit(**PARALLEL_JIT)
def _mu_shared(F, YG, q, l1, l2, max_repeats, delta, floor_ratio):
    """``mu_repeats`` with the Gram ``q`` (k, k) shared by every row."""
    r = F.shape[0]
    repeats = np.zeros(r, dtype=np.int64)
    row_max = np.zeros(r)
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        lo = block * ROW_BLOCK
        hi = min(r, lo + ROW_BLOCK)
        _repeat_block(F, YG, q, lo, hi, l1, l2, max_repeats, delta, repeats)
        _row_max(F, lo, hi, row_max)
    raise_to_floor(F, row_max, floor_ratio)
    return repeats.max()


@njit(**PARALLEL_JIT)
def _mu_per_row(F, YG, Q, l1, l2, max_repeats, delta, floor_ratio):
    """``mu_repeats`` with one Gram ``Q[i]`` per row."""
    r = F.shape[0]
    repeats = np.zeros(r, dtype=np.int64)
    row_max = np.zeros(r)
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        lo = block * ROW_BLOCK
        hi = min(r, lo + ROW_BLOCK)
        _repeat_rows(F, YG, Q, lo, hi, l1, l2, max_repeats, delta, repeats)
        _row_max(F, lo, hi, row_max)
    raise_to_floor(F, row_max, floor_ratio)
    return repeats.max()


@njit(**JIT)
def _row_max(F, lo, hi, row_max):
    """The largest entry of each of the rows ``lo:hi`` of F, into ``row_max``."""
    for i in range(lo, hi):
        m = 0.0
        for t in range(F.shape[1]):
            m = max(m, np.float64(F[i, t]))
        row_max[i] = m


@njit(**JIT)
def _repeat_block(F, YG, q, lo, hi, l1, l2, max_repeats, delta, repeats):
    """Updates of the rows ``lo:hi`` of F, which share the Gram ``q``: the block is
    worked on transposed, so that ``F q`` over its rows is k² axpys of length
    ``ROW_BLOCK`` (padded: a fixed trip count), which vectorise (see ``hals._sweep_block``).
    It holds the block in float64, as ``_repeat_rows`` accumulates. Rows whose updates
    have stopped keep their values (``live`` = 0)."""
    k = F.shape[1]
    rows = hi - lo
    Ft = np.zeros((k, ROW_BLOCK))
    Yt = np.zeros((k, ROW_BLOCK))
    FQ = np.empty((k, ROW_BLOCK))
    live = np.zeros(ROW_BLOCK)
    change, first = np.zeros(ROW_BLOCK), np.zeros(ROW_BLOCK)
    for j in range(rows):
        live[j] = 1
        for t in range(k):
            Ft[t, j] = F[lo + j, t]
            Yt[t, j] = max(YG[lo + j, t], 0)
    for repeat in range(max_repeats):
        for t in range(k):  # q is symmetric: row t, contiguous
            for j in range(ROW_BLOCK):
                FQ[t, j] = 0.0
            for u in range(k):
                c = np.float64(q[t, u])
                for j in range(ROW_BLOCK):
                    FQ[t, j] += Ft[u, j] * c
        for j in range(ROW_BLOCK):
            change[j] = 0.0
        for t in range(k):
            for j in range(ROW_BLOCK):
                old = Ft[t, j]
                d = FQ[t, j] + l1 + l2 * old
                new = old * (Yt[t, j] / d) if d > 0 else 0.0
                step = (new - old) * live[j]
                Ft[t, j] = old + step
                change[j] += step * step
        if stop_rows(change, first, live, rows, repeat, delta, repeats, lo) == 0:
            break
    store_transposed(F, lo, rows, Ft)


@njit(**JIT)
def _repeat_rows(F, YG, Q, lo, hi, l1, l2, max_repeats, delta, repeats):
    """Updates of the rows ``lo:hi`` of F, row i against its own Gram ``Q[i]``."""
    k = F.shape[1]
    FQ = np.empty(k)
    for i in range(lo, hi):
        q = Q[i]
        first = 0.0
        for repeat in range(max_repeats):
            for t in range(k):  # q is symmetric: row t, contiguous
                s = 0.0
                for u in range(k):
                    s += np.float64(F[i, u]) * q[t, u]
                FQ[t] = s
            change = 0.0
            for t in range(k):
                old = np.float64(F[i, t])
                d = FQ[t] + l1 + l2 * old
                F[i, t] = old * (max(np.float64(YG[i, t]), 0.0) / d) if d > 0 else 0.0
                diff = np.float64(F[i, t]) - old
                change += diff * diff
            repeats[i] = repeat + 1
            if repeat == 0:
                first = change
            if change <= delta * first:
                break
