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

from .._config import PARALLEL_JIT
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
        FQ = np.empty(k)
        for i in range(block * ROW_BLOCK, min(r, (block + 1) * ROW_BLOCK)):
            q = Q[i] if per_row else Q[0]
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
            m = 0.0
            for t in range(k):
                m = max(m, np.float64(F[i, t]))
            row_max[i] = m
    raise_to_floor(F, row_max, floor_ratio)
    return repeats.max()
