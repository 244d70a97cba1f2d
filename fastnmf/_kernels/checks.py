"""One pass over a dense X: value checks and the sums the solvers need."""

import numpy as np
from numba import njit, prange

from .._config import PARALLEL_JIT


@njit(**PARALLEL_JIT)
def scan_dense(X):
    """Per-row statistics of a C-contiguous 2-D array in one parallel pass.

    Returns ``(sums, sqsums, negatives, nonfinite, zeros)``: float64 row sums and sums
    of squares (of the finite entries), and per row the count of negative, of
    non-finite and of zero entries. The caller reduces them in row order, so the result does
    not depend on the number of threads.
    """
    m, n = X.shape
    sums = np.zeros(m)
    sqsums = np.zeros(m)
    negatives = np.zeros(m, dtype=np.int64)
    nonfinite = np.zeros(m, dtype=np.int64)
    zeros = np.zeros(m, dtype=np.int64)
    for i in prange(m):
        s = 0.0
        q = 0.0
        neg = 0
        bad = 0
        zero = 0
        for j in range(n):
            v = np.float64(X[i, j])
            if not np.isfinite(v):
                bad += 1
            else:
                s += v
                q += v * v
                if v < 0:
                    neg += 1
                elif v == 0:
                    zero += 1
        sums[i] = s
        sqsums[i] = q
        negatives[i] = neg
        nonfinite[i] = bad
        zeros[i] = zero
    return sums, sqsums, negatives, nonfinite, zeros
