"""Element-wise passes over one block of X beside the same block of WH.

The data layer forms ``WH`` for a block of rows (or columns) of X with one GEMM, then
these kernels turn it, in place, into the weights the multiplicative updates multiply
by the factor (Lee & Seung 2001; Févotte & Idier 2011, eq. 4):

    numerator weights   X ∘ (WH)^(β-2)
    denominator weights (WH)^(β-1)

so no m×n temporary is ever needed. Each kernel also returns, accumulated in float64,
the β-divergence and the squared Frobenius residual of the block.
"""

import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT


@njit(**PARALLEL_JIT)
def beta_weights(X, r0, c0, WH, DEN, beta, tiny, with_objective):
    """Turn ``WH`` (the block ``X[r0:, c0:]`` is matched to) into update weights.

    ``WH`` becomes ``X ∘ (WH)^(β-2)``; ``DEN`` (same shape, ignored when β = 1 since the
    weights are all ones there) receives ``(WH)^(β-1)``. Entries of WH below ``tiny``
    are raised to it so no power of 0 or division by 0 occurs.
    Returns ``(divergence, squared_residual)`` of the block, both float64, or zeros when
    ``with_objective`` is False (the logarithms and powers of the divergence are the
    costliest part of the pass).
    """
    b, c = WH.shape
    div = np.zeros(b)
    res = np.zeros(b)
    for i in prange(b):
        d = 0.0
        s = 0.0
        for j in range(c):
            x = np.float64(X[r0 + i, c0 + j])
            v = np.float64(WH[i, j])
            if with_objective:
                s += (x - v) * (x - v)
            if v < tiny:
                v = tiny
            if beta == 1.0:
                q = x / v
                WH[i, j] = q
                if with_objective:
                    d += v - x + (x * np.log(q) if x > 0 else 0.0)
            elif beta == 0.0:
                q = x / v
                WH[i, j] = q / v
                DEN[i, j] = 1.0 / v
                if with_objective:
                    d += q - np.log(q) - 1.0 if x > 0 else np.inf
            elif beta == 2.0:
                WH[i, j] = x
                DEN[i, j] = v
                if with_objective:
                    d += 0.5 * (x - v) * (x - v)
            else:
                p = v ** (beta - 2.0)
                WH[i, j] = x * p
                DEN[i, j] = p * v
                if with_objective:
                    d += (x**beta + (beta - 1.0) * v**beta - beta * x * p * v) / (beta * (beta - 1.0))
        div[i] = d
        res[i] = s
    return div.sum(), res.sum()


@njit(**PARALLEL_JIT)
def residual_sqnorm(X, r0, c0, WH):
    """Squared Frobenius norm of ``X[r0:r0+b, c0:c0+c] - WH``, accumulated in float64."""
    b, c = WH.shape
    res = np.zeros(b)
    for i in prange(b):
        s = 0.0
        for j in range(c):
            e = np.float64(X[r0 + i, c0 + j]) - np.float64(WH[i, j])
            s += e * e
        res[i] = s
    return res.sum()


@njit(**JIT)
def inner64(a, b):
    """``⟨a, b⟩`` of two 1-D arrays, accumulated in float64.

    A plain loop rather than BLAS ``ddot``: between parallel kernels, OpenBLAS's threads
    still spin from the last call and a threaded ``ddot`` on ~10⁵ entries then waits
    milliseconds for them (measured 2 ms per call on 2 busy cores, 20 µs here).
    """
    s = 0.0
    for i in range(a.size):
        s += np.float64(a[i]) * np.float64(b[i])
    return s


@njit(**PARALLEL_JIT)
def multiplicative_update(F, num, den, l1, l2, gamma, floor_ratio):
    """``F ← max(F ∘ (num / (den + l1 + l2·F))^γ, floor_ratio · max(F_new))`` in place.

    ``den`` is shaped like F, or (1, k) when every row shares it. Where the denominator
    is not positive the ratio is 0. The floor keeps entries from locking at exactly 0
    (a zero never grows under a multiplicative update). One fused pass instead of the
    half-dozen NumPy temporaries of the same formula.
    """
    r, k = F.shape
    step = 0 if den.shape[0] == 1 else 1  # row i of den, or its only row
    row_max = np.zeros(r)
    for i in prange(r):
        d_row = i * step
        m = 0.0
        for t in range(k):
            d = np.float64(den[d_row, t]) + l1 + l2 * np.float64(F[i, t])
            ratio = np.float64(num[i, t]) / d if d > 0 else 0.0
            if gamma != 1.0:
                ratio = ratio**gamma
            value = np.float64(F[i, t]) * ratio
            F[i, t] = value
            m = max(m, value)
        row_max[i] = m
    floor = floor_ratio * row_max.max() if r > 0 else 0.0
    for i in prange(r):
        for t in range(k):
            if F[i, t] < floor:
                F[i, t] = floor
