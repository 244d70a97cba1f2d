"""HALS: exact coordinate descent on the rows of one factor (Cichocki & Phan 2009).

For the half-problem ``min_{F ≥ 0} ½‖Y − F Gᵀ‖²`` with products ``YG = Y G`` and
``GtG = GᵀG``, entry ``F[i, t]`` has the closed-form minimiser

    F[i, t] ← max(0, F[i, t] + (YG[i, t] − F[i, :] · GtG[:, t]) / GtG[t, t])

and row i never reads another row: rows are independent sub-problems, updated in
parallel (components in order inside a row), so the result is the same for any number
of threads.
"""

import numpy as np
from numba import njit, prange

from .._config import PARALLEL_JIT


@njit(**PARALLEL_JIT)
def hals_update(F, YG, GtG, max_sweeps, delta):
    """Update ``F`` (r, k) in place with repeated HALS sweeps; return the sweep count.

    Gillis & Glineur (2012, Algorithm 2): the products are the expensive part, so sweeps
    over the same products are repeated, up to ``max_sweeps``, while they still pay:
    a row stops once its squared change falls below ``delta`` times that of its first
    sweep. Columns of G that are entirely zero (``GtG[t, t] == 0``) leave F[:, t] at 0.
    Returns the largest number of sweeps any row made.
    """
    r, k = F.shape
    sweeps = np.zeros(r, dtype=np.int64)
    for i in prange(r):
        first = 0.0
        for sweep in range(max_sweeps):
            change = 0.0
            for t in range(k):
                h = GtG[t, t]
                if h <= 0:
                    F[i, t] = 0
                    continue
                g = YG[i, t]
                for s in range(k):  # GtG is symmetric: read row t, contiguous
                    g -= F[i, s] * GtG[t, s]
                new = max(F[i, t] + g / h, 0)
                diff = np.float64(new) - np.float64(F[i, t])
                change += diff * diff
                F[i, t] = new
            sweeps[i] = sweep + 1
            if sweep == 0:
                first = change
            if change <= delta * first:
                break
    return sweeps.max()
