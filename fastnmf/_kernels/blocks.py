"""Element-wise passes over one block of X beside the same block of WH.

The data layer forms ``WH`` for a block of rows (or columns) of X with one GEMM, then
these kernels turn it, in place, into the weights the multiplicative updates multiply
by the factor (Lee & Seung 2001; Févotte & Idier 2011, eq. 4):

    numerator weights   X ∘ (WH)^(β-2)
    denominator weights (WH)^(β-1)

so no m×n temporary is ever needed. Each kernel also returns, accumulated in float64,
the β-divergence and the squared Frobenius residual of the block.

The block kernels are serial: the data layer runs blocks on several Python threads at
once (each with its GEMMs in one BLAS thread), so one block's GEMM, weights and GEMM
stay on one core and its cache.
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from .._config import JIT, PARALLEL_JIT, VECTOR_JIT


def _bitcast(source, target):
    """An intrinsic that reads the bits of a ``source`` scalar as a ``target`` one (a
    bitcast, which LLVM vectorises, unlike a round trip through memory)."""

    @intrinsic
    def cast(typingctx, x):
        if x != source:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_float_bits = _bitcast(types.float64, types.int64)  # the IEEE-754 bits of a float64
_bits_float = _bitcast(types.int64, types.float64)  # the float64 with those bits


# fdlibm's log (as in musl, < 1 ulp): ln 2 split in two, and the minimax coefficients of
# R(z) ≈ log((1+s)/(1-s)) / s − 2 in z = s².
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_MIN_NORMAL = np.finfo(np.float64).tiny
_MAX_FINITE = np.finfo(np.float64).max


@njit(**dict(VECTOR_JIT, fastmath={"contract"}))  # no reassociation: the order of the sums matters
def log(x):
    """Natural log of a float64 that is a positive normal number, +inf or nan, within
    1 ulp of ``np.log`` (tested); 0 and subnormals are not handled.

    Branch-free, so a loop calling it vectorises: Numba's ``np.log`` calls libm one
    entry at a time (no SVML), which made the logarithms the costliest part of the KL
    pass (4× slower than this). fdlibm's method: x = 2^k (1+f) with 1+f in [√2/2, √2),
    s = f/(2+f), and log(1+f) = f − f²/2 + s (f²/2 + R(s²)).
    """
    u = _float_bits(x)
    # shift the exponent so the mantissa lands in [√2/2, √2) (0x3fe6a09e: high word of √2/2)
    hx = (u >> 32) + (0x3FF00000 - 0x3FE6A09E)
    k = np.float64(np.int32((hx >> 20) - 0x3FF))
    f = _bits_float((((hx & 0x000FFFFF) + 0x3FE6A09E) << 32) | (u & 0xFFFFFFFF)) - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    y = s * (hfsq + r) + k * _LN2_LO - hfsq + f + k * _LN2_HI
    return y if x <= _MAX_FINITE else x  # +inf and nan as np.log gives them


@njit(**VECTOR_JIT)
def _kl_row(X, r, WH, i, tiny, with_objective):
    """Row i of ``beta_weights`` for β = 1: ``WH[i] ← X[r] / max(WH[i], tiny)``.

    Returns the row's divergence ``Σ v − x + x log(x/v)`` (0 log 0 = 0) and ``Σ (x − v)²``.
    Written without branches so the loop vectorises.
    """
    d = 0.0
    s = 0.0
    if with_objective:
        for j in range(WH.shape[1]):
            x = np.float64(X[r, j])
            v = np.float64(WH[i, j])
            s += (x - v) * (x - v)
            v = tiny if v < tiny else v  # (a nan stays nan)
            q = x / v
            WH[i, j] = q
            # x = 0 (or x/v below the normal range): x·log(q) is 0 (or ~x·(−708), which
            # is next to nothing beside v); log needs a normal argument.
            d += v - x + x * log(q if q >= _MIN_NORMAL else _MIN_NORMAL)
    else:
        for j in range(WH.shape[1]):
            v = np.float64(WH[i, j])
            WH[i, j] = np.float64(X[r, j]) / (tiny if v < tiny else v)
    return d, s


@njit(**VECTOR_JIT)
def _beta_row(X, r, WH, DEN, i, beta, tiny, with_objective):
    """Row i of ``beta_weights`` for β ≠ 1: ``WH[i]`` and ``DEN[i]`` get the weights;
    returns the row's divergence and squared residual."""
    d = 0.0
    s = 0.0
    for j in range(WH.shape[1]):
        x = np.float64(X[r, j])
        v = np.float64(WH[i, j])
        if with_objective:
            s += (x - v) * (x - v)
        if v < tiny:
            v = tiny
        if beta == 0.0:
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
    return d, s


@njit(**VECTOR_JIT)
def beta_weights(X, r0, WH, DEN, beta, tiny, with_objective):
    """Turn ``WH`` (the block of rows ``X[r0:r0 + len(WH)]`` is matched to) into update weights.

    ``WH`` becomes ``X ∘ (WH)^(β-2)``; ``DEN`` (same shape, ignored when β = 1 since the
    weights are all ones there) receives ``(WH)^(β-1)``. Entries of WH below ``tiny``
    are raised to it so no power of 0 or division by 0 occurs.
    Returns ``(divergence, squared_residual)`` of the block, both float64, or zeros when
    ``with_objective`` is False (the logarithms and powers of the divergence are the
    costliest part of the pass). Serial: blocks run on several threads.
    """
    b = WH.shape[0]
    div = np.zeros(b)
    res = np.zeros(b)
    for i in range(b):
        if beta == 1.0:
            d, s = _kl_row(X, r0 + i, WH, i, tiny, with_objective)
        else:
            d, s = _beta_row(X, r0 + i, WH, DEN, i, beta, tiny, with_objective)
        div[i] = d
        res[i] = s
    return div.sum(), res.sum()


@njit(**VECTOR_JIT)
def residual_sqnorm(X, r0, WH):
    """Squared Frobenius norm of ``X[r0:r0+b] - WH``, accumulated in float64.
    Serial: blocks run on several threads."""
    b, c = WH.shape
    res = np.zeros(b)
    for i in range(b):
        s = 0.0
        for j in range(c):
            e = np.float64(X[r0 + i, j]) - np.float64(WH[i, j])
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


# Rows per parallel task of the row-block kernels (HALS, Frobenius MU, sparse products):
# each task works on its block alone, so results do not depend on the thread count.
ROW_BLOCK = 64


@njit(**JIT)
def stop_rows(change, first, live, rows, repeat, delta, counts, lo):
    """The row-wise stopping rule of repeated updates on a block of rows ``lo:lo+rows``
    (Gillis & Glineur 2012, with their δ per row): after repetition ``repeat`` (0-based),
    record it in ``counts`` for the live rows, and stop (``live[j] = 0``) those whose
    squared change is at most ``delta`` times that of their first. Returns how many rows
    go on."""
    active = 0
    for j in range(rows):
        if live[j] == 0:
            continue
        counts[lo + j] = repeat + 1
        if repeat == 0:
            first[j] = change[j]
        if change[j] <= delta * first[j]:
            live[j] = 0
        else:
            active += 1
    return active


@njit(**JIT)
def store_transposed(F, lo, rows, Ft):
    """``F[lo:lo+rows] = Ft[:, :rows]ᵀ``: a row block worked on transposed goes back."""
    for j in range(rows):
        for t in range(F.shape[1]):
            F[lo + j, t] = Ft[t, j]


@njit(inline="always", **JIT)
def raise_to_floor(F, row_max, floor_ratio):
    """Raise every entry of F to ``floor_ratio`` times its largest (``row_max`` holds
    each row's largest): a multiplicative update never grows an entry at exactly 0."""
    r, k = F.shape
    floor = floor_ratio * row_max.max() if r > 0 else 0.0
    for i in prange(r):
        for t in range(k):
            if F[i, t] < floor:
                F[i, t] = floor


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
    raise_to_floor(F, row_max, floor_ratio)
