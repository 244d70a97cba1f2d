"""HALS: exact coordinate descent on the rows of one factor (Cichocki & Phan 2009).

For the half-problem ``min_{F ≥ 0} ½‖Y − F Gᵀ‖²`` with products ``YG = Y G`` and
``Q = GᵀG``, entry ``F[i, t]`` has the closed-form minimiser

    F[i, t] ← max(0, F[i, t] + (YG[i, t] − F[i, :] · Q[:, t]) / Q[t, t])

With missing values each row has its own Gram matrix (the Gram of the columns of G it
observes): ``Q`` is then a stack (r, k, k), and (1, k, k) when all rows share one.

and row i never reads another row: rows are independent sub-problems, updated in
parallel (components in order inside a row), so the result is the same for any number
of threads.
"""

import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT


# Rows per parallel task. Inside a task the components run in the outer loop and the
# rows in the inner one: the rows' updates are independent chains of dependent
# operations, so interleaving them keeps the pipeline busy (about 2-3× faster than one
# row at a time) while each row still sees exactly the same sequence of updates.
ROW_BLOCK = 64


@njit(inline="always", **JIT)
def _coordinate(F, YG, q, h, i, t, k):
    """The exact update of ``F[i, t]`` against the Gram ``q`` (``h = q[t, t]``); returns
    its squared change."""
    if h <= 0:
        F[i, t] = 0
        return 0.0
    g = YG[i, t]
    for s in range(k):  # q is symmetric: read row t, contiguous
        g -= F[i, s] * q[t, s]
    new = max(F[i, t] + g / h, 0)
    diff = np.float64(new) - np.float64(F[i, t])
    F[i, t] = new
    return diff * diff


@njit(**PARALLEL_JIT)
def hals_update(F, YG, Q, max_sweeps, delta):
    """Update ``F`` (r, k) in place with repeated HALS sweeps; return the sweep count.

    ``Q`` is (1, k, k), the Gram matrix shared by all rows, or (r, k, k), one per row.
    Gillis & Glineur (2012, Algorithm 2): the products are the expensive part, so sweeps
    over the same products are repeated, up to ``max_sweeps``, while they still pay:
    a row stops once its squared change falls below ``delta`` times that of its first
    sweep. Columns of G that are entirely zero (``Q[·, t, t] == 0``) leave F[:, t] at 0.
    Returns the largest number of sweeps any row made.
    """
    r, k = F.shape
    per_row = Q.shape[0] > 1
    sweeps = np.zeros(r, dtype=np.int64)
    done = np.zeros(r, dtype=np.bool_)
    first = np.zeros(r)
    change = np.zeros(r)
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        lo = block * ROW_BLOCK
        hi = min(r, lo + ROW_BLOCK)
        for sweep in range(max_sweeps):
            for i in range(lo, hi):
                change[i] = 0.0
            for t in range(k):
                # two copies of the row loop, so the shared Gram is hoisted out of it
                if per_row:
                    for i in range(lo, hi):
                        if not done[i]:
                            change[i] += _coordinate(F, YG, Q[i], Q[i, t, t], i, t, k)
                else:
                    shared = Q[0]
                    h = shared[t, t]
                    for i in range(lo, hi):
                        if not done[i]:
                            change[i] += _coordinate(F, YG, shared, h, i, t, k)
            active = 0
            for i in range(lo, hi):
                if done[i]:
                    continue
                sweeps[i] = sweep + 1
                if sweep == 0:
                    first[i] = change[i]
                if change[i] <= delta * first[i]:
                    done[i] = True
                else:
                    active += 1
            if active == 0:
                break
    return sweeps.max()
