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
from .blocks import raise_to_floor

ROW_BLOCK = 64  # rows per parallel task


@njit(**PARALLEL_JIT)
def mu_repeats(F, YG, Q, l1, l2, max_repeats, delta, floor_ratio):
    """Repeat ``F ← F ∘ max(YG, 0) / (F Q + l1 + l2·F)`` on the rows of F, in place.

    ``Q`` is (1, k, k), the Gram matrix shared by all rows, or (r, k, k), one per row
    (masked data). Each row makes at most ``max_repeats`` updates, stopping once its
    squared change is at most ``delta`` times its first. Where the denominator is not
    positive the entry becomes 0; then every entry is raised to ``floor_ratio`` times
    the largest entry of F, so that none locks at exactly 0 (a zero never grows under
    a multiplicative update). Returns the largest number of updates any row made.
    """
    r, k = F.shape
    per_row = Q.shape[0] > 1
    row_max = np.zeros(r)
    repeats = np.zeros(r, dtype=np.int64)
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        lo = block * ROW_BLOCK
        hi = min(r, lo + ROW_BLOCK)
        if per_row:
            _repeat_rows(F, YG, Q, lo, hi, l1, l2, max_repeats, delta, repeats)
        else:
            _repeat_block(F, YG, Q[0], lo, hi, l1, l2, max_repeats, delta, repeats)
        for i in range(lo, hi):
            m = 0.0
            for t in range(k):
                m = max(m, np.float64(F[i, t]))
            row_max[i] = m
    raise_to_floor(F, row_max, floor_ratio)
    return repeats.max()


@njit(**JIT)
def _repeat_block(F, YG, q, lo, hi, l1, l2, max_repeats, delta, repeats):
    """Updates of the rows ``lo:hi`` of F, which share the Gram ``q``: the block is
    worked on transposed, so that ``F q`` over its rows is k² axpys of length
    ``ROW_BLOCK`` (padded: a fixed trip count), which vectorise (see ``hals._sweep_block``).
    Rows whose updates have stopped keep their values (``live`` = 0)."""
    k = F.shape[1]
    rows = hi - lo
    Ft = np.zeros((k, ROW_BLOCK))
    Yt = np.zeros((k, ROW_BLOCK))
    FQ = np.empty((k, ROW_BLOCK))
    live = np.zeros(ROW_BLOCK)
    live[:rows] = 1
    change, first = np.zeros(ROW_BLOCK), np.zeros(ROW_BLOCK)
    for j in range(rows):
        for t in range(k):
            Ft[t, j] = F[lo + j, t]
            Yt[t, j] = max(YG[lo + j, t], 0)
    for repeat in range(max_repeats):
        FQ[:] = 0.0
        for t in range(k):  # q is symmetric: row t, contiguous
            for u in range(k):
                c = np.float64(q[t, u])
                for j in range(ROW_BLOCK):
                    FQ[t, j] += Ft[u, j] * c
        change[:] = 0.0
        for t in range(k):
            for j in range(ROW_BLOCK):
                old = Ft[t, j]
                d = FQ[t, j] + l1 + l2 * old
                new = old * (Yt[t, j] / d) if d > 0 else 0.0
                step = (new - old) * live[j]
                Ft[t, j] = old + step
                change[j] += step * step
        active = 0
        for j in range(rows):
            if live[j] == 0:
                continue
            repeats[lo + j] = repeat + 1
            if repeat == 0:
                first[j] = change[j]
            if change[j] <= delta * first[j]:
                live[j] = 0
            else:
                active += 1
        if active == 0:
            break
    for j in range(rows):
        for t in range(k):
            F[lo + j, t] = Ft[t, j]


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
