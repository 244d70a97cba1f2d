"""Passes over the stored entries of a CSR matrix Y (r, c) against dense factors.

With ``Y ≈ F Gᵀ`` (F is r×k, G is c×k; Y is X for the update of W, Xᵀ stored as its own
CSR for the update of H), these kernels do in O(nnz·k) what would otherwise need dense
r×c blocks:

``spmm``
    the product ``Y G`` that the Frobenius solvers (HALS, ANLS, MU) need, in parallel
    over rows (scipy's ``csr @ dense`` runs on one thread);
``nnz_beta``
    the β-divergence multiplicative-update weights of Févotte & Idier (2011, eq. 4),
    ``(Y ∘ V^(β-2)) G`` and ``V^(β-1) G`` with ``V = F Gᵀ``, evaluated at the stored
    entries only, with the divergence ``d_β(Y | V)`` summed there. For a sparse X the
    generalised KL (β = 1) needs ``(W H)`` only where X is non-zero:
    ``D(X | V) = Σ_{x≠0} (x log(x/v) − x) + Σ_all v``, the last sum coming from the
    column sums of the factors (so the caller takes ``divergence − sum_v + Σ_all v``),
    and likewise ``‖X − V‖² = squared − sum_v2 + Σ_all v²``; for a masked problem
    (stored entries = observed entries) the returned sums are the whole masked
    objective and the weights the whole masked update;
``row_grams``
    the Gram matrices ``S_i = Σ_{j stored in row i} G_j G_jᵀ`` (or ``GᵀG − S_i``) of the
    per-row normal equations of a masked least-squares problem
    ``min Σ_{(i,j) observed} (Y_ij − F_i · G_j)²``; the complement serves when the CSR
    stores the *missing* positions.

Calling contract (the kernels never validate nor convert):

* ``indptr`` is int64 and ``indices`` int32 — scipy hands out int32 or int64 depending
  on the size, so the caller converts both once, which keeps one compiled
  specialisation per data dtype;
* ``data``, the factors and the outputs share one dtype, float32 or float64, and are
  C-contiguous;
* stored zeros are entries like any other, and column indices need not be sorted
  within a row (entries are visited in storage order);
* scalars (``beta``, ``tiny``) are Python floats, flags Python bools, ``r0`` an int.

Reductions are accumulated in float64. Every row of the result is computed by one task
from its own entries in storage order, and whole-matrix sums are reduced from per-row
partial sums in row order, so the results do not depend on the number of threads.
"""

import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT
from .blocks import ROW_BLOCK  # the float64 buffers are allocated once per task, not per row


@njit(**PARALLEL_JIT)
def spmm(indptr, indices, data, G, out):
    """Sparse × dense product ``out = Y G``.

    Parameters
    ----------
    indptr, indices, data : ndarray
        CSR structure of Y (r, c): int64 row pointers, int32 column indices, values.
    G : ndarray, shape (c, k)
        Dense factor, same dtype as ``data``.
    out : ndarray, shape (r, k)
        Overwritten with ``Y G`` (rows without entries become 0).

    Notes
    -----
    Each row is accumulated in a float64 buffer, four stored entries at a time
    (``acc += (x₀G₀ + x₁G₁) + (x₂G₂ + x₃G₃)``): this quarters the buffer traffic and
    keeps several independent loads of G in flight, 1.2-1.4× faster than one entry
    at a time.
    """
    r, k = out.shape
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        acc = np.empty(k)
        for i in range(block * ROW_BLOCK, min(r, (block + 1) * ROW_BLOCK)):
            for t in range(k):
                acc[t] = 0.0
            p = indptr[i]
            end = indptr[i + 1]
            while p + 4 <= end:
                x0 = np.float64(data[p])
                x1 = np.float64(data[p + 1])
                x2 = np.float64(data[p + 2])
                x3 = np.float64(data[p + 3])
                j0 = indices[p]
                j1 = indices[p + 1]
                j2 = indices[p + 2]
                j3 = indices[p + 3]
                for t in range(k):
                    acc[t] += (x0 * G[j0, t] + x1 * G[j1, t]) + (x2 * G[j2, t] + x3 * G[j3, t])
                p += 4
            while p < end:
                x = np.float64(data[p])
                j = indices[p]
                for t in range(k):
                    acc[t] += x * G[j, t]
                p += 1
            for t in range(k):
                out[i, t] = acc[t]


@njit(inline="always", **JIT)
def _entry(mode, x, v_raw, beta, tiny, with_objective):
    """Weights ``x v^(β-2)``, ``v^(β-1)`` and ``d_β(x | v)`` (0 unless ``with_objective``)
    of one entry, ``v = max(v_raw, tiny)``; ``mode`` is 1, 0, 2 for those β, else 3."""
    v = max(v_raw, tiny)
    d = 0.0
    if mode == 1:
        q = x / v
        wn = q
        wd = 1.0
        if with_objective:
            d = v - x + (x * np.log(q) if x > 0 else 0.0)
    elif mode == 0:
        # x / v² written so that no intermediate is shared with the objective: with the
        # fast-math flags, (x / v) / v was rewritten differently in the loop copies the
        # compiler makes for each value of ``with_objective``, changing num in the last bit
        wn = x / (v * v)
        wd = 1.0 / v
        if with_objective:
            q = x / v
            d = q - np.log(q) - 1.0 if x > 0 else np.inf
    elif mode == 2:
        wn = x
        wd = v
        if with_objective:
            d = 0.5 * (x - v) * (x - v)
    else:
        pw = v ** (beta - 2.0)
        wn = x * pw
        wd = pw * v
        if with_objective:
            if x > 0:
                d = (x**beta + (beta - 1.0) * wd * v - beta * x * wd) / (beta * (beta - 1.0))
            elif beta <= 0:
                d = np.inf
            else:
                d = wd * v / beta  # x = 0, β > 0: v^β / β
    return wn, wd, d


@njit(**PARALLEL_JIT)
def nnz_beta(indptr, indices, data, F, G, beta, tiny, num, den, need_den, with_objective):
    """β-divergence update weights and objective terms at the stored entries of Y.

    For every stored entry ``x = Y[i, j]`` let ``v_raw = F[i] · G[j]`` (float64) and
    ``v = max(v_raw, tiny)``. Then

    * ``num[i] = Σ_j x v^(β-2) G[j]``  (β = 1: ``x / v``; β = 2: ``x``),
    * ``den[i] = Σ_j v^(β-1) G[j]``    (β = 1: ``1``; β = 2: ``v``), only if ``need_den``,

    the sums running over the entries stored in row i (Févotte & Idier 2011, eq. 4).

    Parameters
    ----------
    indptr, indices, data : ndarray
        CSR structure of Y (r, c): int64 row pointers, int32 column indices, values.
    F : ndarray, shape (r, k)
    G : ndarray, shape (c, k)
        Factors, same dtype as ``data``.
    beta : float
        The β of the divergence.
    tiny : float
        Floor applied to ``v`` so no power of 0 or division by 0 occurs.
    num : ndarray, shape (r, k)
        Overwritten with the numerator term (rows without entries become 0).
    den : ndarray, shape (r, k) or (0, k)
        Overwritten with the denominator term if ``need_den``, else not touched.
    need_den : bool
    with_objective : bool
        Whether to accumulate the four sums returned.

    Returns
    -------
    divergence : float
        ``Σ d_β(x | v)`` over stored entries, with ``d_1 = x log(x/v) − x + v``
        (0 log 0 = 0), ``d_0 = x/v − log(x/v) − 1``, ``d_2 = ½ (x − v)²`` and otherwise
        ``(x^β + (β−1) v^β − β x v^(β−1)) / (β(β−1))``; +inf if some stored ``x = 0``
        with ``β ≤ 0``.
    squared : float
        ``Σ (x − v_raw)²`` over stored entries.
    sum_v, sum_v2 : float
        ``Σ v_raw`` and ``Σ v_raw²`` over stored entries.

    All four are float64 and are 0 when ``with_objective`` is False: the logarithms and
    powers of the divergence are then skipped, they are the costliest part of the pass.

    Notes
    -----
    Entries are taken four at a time (the four dot products in one loop over k, one
    fused update of the row buffers), which keeps four rows of G in flight: two at a
    time was 1.4-1.6× faster than one, four another 1.2-1.6× (KL at 20000×10000, 0.5 %
    non-zeros, k = 30). The β cases are chosen once, outside the loops.
    """
    r, k = num.shape
    parts = np.zeros((r if with_objective else 0, 4))
    if beta == 1.0:
        mode = 1
    elif beta == 0.0:
        mode = 0
    elif beta == 2.0:
        mode = 2
    else:
        mode = 3
    for block in prange((r + ROW_BLOCK - 1) // ROW_BLOCK):
        f = np.empty(k)
        na = np.empty(k)
        da = np.empty(k)
        for i in range(block * ROW_BLOCK, min(r, (block + 1) * ROW_BLOCK)):
            for t in range(k):
                f[t] = F[i, t]
                na[t] = 0.0
                da[t] = 0.0
            d = 0.0
            sq = 0.0
            sv = 0.0
            sv2 = 0.0
            p = indptr[i]
            end = indptr[i + 1]
            while p + 4 <= end:  # four entries at a time: four G rows in flight
                j0 = indices[p]
                j1 = indices[p + 1]
                j2 = indices[p + 2]
                j3 = indices[p + 3]
                v0 = 0.0
                v1 = 0.0
                v2 = 0.0
                v3 = 0.0
                for t in range(k):
                    ft = f[t]
                    v0 += ft * G[j0, t]
                    v1 += ft * G[j1, t]
                    v2 += ft * G[j2, t]
                    v3 += ft * G[j3, t]
                x0 = np.float64(data[p])
                x1 = np.float64(data[p + 1])
                x2 = np.float64(data[p + 2])
                x3 = np.float64(data[p + 3])
                wn0, wd0, d0 = _entry(mode, x0, v0, beta, tiny, with_objective)
                wn1, wd1, d1 = _entry(mode, x1, v1, beta, tiny, with_objective)
                wn2, wd2, d2 = _entry(mode, x2, v2, beta, tiny, with_objective)
                wn3, wd3, d3 = _entry(mode, x3, v3, beta, tiny, with_objective)
                if with_objective:
                    e0 = x0 - v0
                    e1 = x1 - v1
                    e2 = x2 - v2
                    e3 = x3 - v3
                    d += (d0 + d1) + (d2 + d3)
                    sq += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                    sv += (v0 + v1) + (v2 + v3)
                    sv2 += (v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)
                if need_den:
                    for t in range(k):
                        g0 = np.float64(G[j0, t])
                        g1 = np.float64(G[j1, t])
                        g2 = np.float64(G[j2, t])
                        g3 = np.float64(G[j3, t])
                        na[t] += (wn0 * g0 + wn1 * g1) + (wn2 * g2 + wn3 * g3)
                        da[t] += (wd0 * g0 + wd1 * g1) + (wd2 * g2 + wd3 * g3)
                else:
                    for t in range(k):
                        na[t] += (wn0 * G[j0, t] + wn1 * G[j1, t]) + (wn2 * G[j2, t] + wn3 * G[j3, t])
                p += 4
            while p < end:  # the last entries of the row, one at a time
                j0 = indices[p]
                x0 = np.float64(data[p])
                v0 = 0.0
                for t in range(k):
                    v0 += f[t] * G[j0, t]
                wn0, wd0, d0 = _entry(mode, x0, v0, beta, tiny, with_objective)
                if with_objective:
                    e0 = x0 - v0
                    d += d0
                    sq += e0 * e0
                    sv += v0
                    sv2 += v0 * v0
                if need_den:
                    for t in range(k):
                        g0 = np.float64(G[j0, t])
                        na[t] += wn0 * g0
                        da[t] += wd0 * g0
                else:
                    for t in range(k):
                        na[t] += wn0 * G[j0, t]
                p += 1
            for t in range(k):
                num[i, t] = na[t]
            if need_den:
                for t in range(k):
                    den[i, t] = da[t]
            if with_objective:
                parts[i, 0] = d
                parts[i, 1] = sq
                parts[i, 2] = sv
                parts[i, 3] = sv2
    divergence = 0.0
    squared = 0.0
    sum_v = 0.0
    sum_v2 = 0.0
    for i in range(parts.shape[0]):  # sequential: row order, whatever the thread count
        divergence += parts[i, 0]
        squared += parts[i, 1]
        sum_v += parts[i, 2]
        sum_v2 += parts[i, 3]
    return divergence, squared, sum_v, sum_v2


@njit(**PARALLEL_JIT)
def row_grams(indptr, indices, G, GtG, complement, r0, Q):
    """Per-row Gram matrices of the factor rows selected by the stored entries.

    For rows ``i = r0, …, r0 + b − 1`` of the CSR structure (its values are not used),
    with ``S_i = Σ_{p in row i} G[indices[p]] G[indices[p]]ᵀ``:
    ``Q[i − r0] = GtG − S_i`` if ``complement`` else ``S_i``.

    Parameters
    ----------
    indptr, indices : ndarray
        CSR structure: int64 row pointers, int32 column indices.
    G : ndarray, shape (c, k)
    GtG : ndarray, shape (k, k)
        ``GᵀG``, same dtype as G; only its upper triangle is read, and only when
        ``complement``.
    complement : bool
    r0 : int
        First row of the batch.
    Q : ndarray, shape (b, k, k)
        Overwritten with the b Gram matrices (exactly symmetric), same dtype as G.

    Notes
    -----
    ``S_i`` is accumulated in float64 by rank-8 updates (eight stored entries at a
    time) of the full square, whose contiguous inner loop vectorises: 1.8× faster than
    rank-2 updates of the upper triangle, and rank-8 another 10-25 % over rank-4 (one
    load and store of S per eight products). The upper triangle is then mirrored, so Q
    is exactly symmetric.
    """
    b = Q.shape[0]
    k = G.shape[1]
    for block in prange((b + ROW_BLOCK - 1) // ROW_BLOCK):
        S = np.empty((k, k))
        B = np.empty((8, k))
        for q in range(block * ROW_BLOCK, min(b, (block + 1) * ROW_BLOCK)):
            i = r0 + q
            S[:] = 0.0
            p = indptr[i]
            end = indptr[i + 1]
            while p < end:
                taken = min(8, end - p)
                for e in range(8):  # gather 8 rows of G (zeros past the row's end)
                    if e < taken:
                        j = indices[p + e]
                        for t in range(k):
                            B[e, t] = G[j, t]
                    else:
                        for t in range(k):
                            B[e, t] = 0.0
                for a in range(k):
                    b0 = B[0, a]
                    b1 = B[1, a]
                    b2 = B[2, a]
                    b3 = B[3, a]
                    b4 = B[4, a]
                    b5 = B[5, a]
                    b6 = B[6, a]
                    b7 = B[7, a]
                    for c in range(k):
                        S[a, c] += ((b0 * B[0, c] + b1 * B[1, c]) + (b2 * B[2, c] + b3 * B[3, c])) + (
                            (b4 * B[4, c] + b5 * B[5, c]) + (b6 * B[6, c] + b7 * B[7, c])
                        )
                p += taken
            for a in range(k):
                for c in range(a, k):
                    s = np.float64(GtG[a, c]) - S[a, c] if complement else S[a, c]
                    Q[q, a, c] = s
                    Q[q, c, a] = s
