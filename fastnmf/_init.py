"""Initial factors: NNDSVD and its variants (Boutsidis & Gallopoulos 2008), random, custom."""

import weakref

import numpy as np
import scipy.linalg

INITS = ("nndsvd", "nndsvda", "nndsvdar", "random")
SVD_INITS = ("nndsvd", "nndsvda", "nndsvdar")

# Below this many entries a full LAPACK SVD is cheaper and exact.
_FULL_SVD_ENTRIES = 250_000
# The randomized SVD behind the NNDSVD inits makes power iterations (Halko et al. 2011,
# §4.5; two products with X each): q of them weigh X's j-th direction in the sketch by
# σ_j^(2q+1), so the leading ``rank`` directions stand out from those beyond the sketch's
# width w by (σ_w/σ_rank)^(2q+1) at least. It stops once that ratio, from the sketch's own
# value estimates, is below SEPARATION_TOL: after one power iteration at least (without,
# the many small directions beyond w leak into the singular vectors), at most
# scikit-learn's 7. The singular values settle long before the vectors NNDSVD is built
# from. Measured (benchmarks/common.py's data): on low rank plus noise (σ_w/σ_rank ≈ 0.02)
# the vectors after one power iteration move by < 2e-6 in the next, and the rule stops
# there; on sparse word counts (σ_w/σ_rank ≈ 0.72) the values move by 5 % in the fourth,
# while the vectors still turn by 0.3-0.99 (sines) and by 0.02-0.08 in the seventh. From
# the fourth, NNDSVDa's factors lead to other local minima than from an accurate SVD, some
# far above (compare.py row i, seeds 0-2: HALS reached scikit-learn cd's objective in 15,
# 22, 20 iterations, from the seventh in 13 each; stopping on values within 5 % or 2 %
# left one or two seeds above it for good).
MAX_POWER_ITERATIONS = 7
SEPARATION_TOL = 1e-2
OVERSAMPLE = 10


def initialize(data, rank, init, rng):
    """Initial ``(W, Ht)``, both C-contiguous in the data's dtype.

    ``Ht`` is Hᵀ (n, k): the driver keeps both factors with the rank along rows' end so
    that each row of a factor is one independent sub-problem. ``init`` is a name from
    ``INITS`` (custom factors are validated and transposed by the caller).
    """
    m, n = data.shape
    # The scale of the factors: W Hᵀ with entries of this size has the mean of
    # (the observed entries of) X.
    scale = np.sqrt(max(data.total, 0.0) / data.n_observed / rank)
    if init == "random":
        W = scale * rng.standard_normal((m, rank))
        Ht = scale * rng.standard_normal((n, rank))
        W, Ht = np.abs(W), np.abs(Ht)
    else:
        W, Ht = _nndsvd(data, rank, rng)
        if init == "nndsvda":
            W[W == 0] = scale
            Ht[Ht == 0] = scale
        elif init == "nndsvdar":
            W[W == 0] = scale * rng.random(np.count_nonzero(W == 0)) / 100
            Ht[Ht == 0] = scale * rng.random(np.count_nonzero(Ht == 0)) / 100
    dtype = data.dtype
    return np.ascontiguousarray(W, dtype=dtype), np.ascontiguousarray(Ht, dtype=dtype)


def _exact_svd(data, rank):
    """Whether the SVD inits take the exact SVD (small X, or a rank near min(m, n))."""
    m, n = data.shape
    return m * n <= _FULL_SVD_ENTRIES or rank > min(m, n) // 2


def _truncated_svd(data, rank, rng):
    """Leading ``rank`` singular triplets of the data: exact for small X, randomized
    otherwise."""
    if _exact_svd(data, rank):
        Y = data.Y
        if hasattr(Y, "toarray"):
            Y = Y.toarray()
        U, S, Vt = scipy.linalg.svd(Y, full_matrices=False, check_finite=False)
        return U[:, :rank], S[:rank], Vt[:rank]
    return randomized_svd(data, rank, rng)


def randomized_svd(data, rank, rng, oversample=OVERSAMPLE):
    """Leading singular triplets from the data layer's products (Halko, Martinsson &
    Tropp 2011, Algorithm 5.1 on the ``range_sketch`` of width rank + ``oversample``),
    so that sparse and masked X use the parallel product kernels.

    Returns ``(U, S, Vt)`` with ``rank`` triplets; when X has fewer directions than
    ``rank``, the missing ones are zero.
    """
    Q, XtQ = range_sketch(data, sketch_width(data, rank, oversample), rng)
    T, S, Vt = svd_of_range(XtQ, rank)
    return Q @ T.astype(data.dtype), S, Vt


def sketch_width(data, rank, oversample=OVERSAMPLE):
    """Columns of the range sketch for ``rank`` directions."""
    return min(rank + oversample, *data.shape)


# The last range sketch of each data object: an SVD init computes it, and the warm start
# on the sketch (``_solvers.warm``) reuses it instead of computing it again.
_sketches = weakref.WeakKeyDictionary()


def range_sketch(data, width, rng):
    """``(Q, XᵀQ)``: Q (m, w) has orthonormal columns spanning X's dominant range
    (Halko, Martinsson & Tropp 2011, Algorithm 4.4: a randomized range finder, with power
    iterations until ``power_iterations_done``). Computed once per data object: a sketch
    already computed at a width w ≥ ``width`` serves (its leading directions are at least
    as accurate), else one of width ``width`` is."""
    cached = _sketches.get(data)
    if cached is not None and cached[0].shape[1] >= width:
        return cached
    Z = rng.standard_normal((data.shape[1], width)).astype(data.dtype)
    for power in range(MAX_POWER_ITERATIONS + 1):
        Q = orthonormal(data.matmul(Z), data.dtype)
        XtQ = data.T.matmul(Q)
        values, Z = range_values_and_basis(XtQ, data.dtype)
        if power_iterations_done(power, values, width):
            break
    sketch = _sketches[data] = Q, XtQ
    return sketch


def share_sketch(data, ranks, rng):
    """Before SVD inits at several ``ranks`` on one data object (a rank survey): compute
    the range sketch of the widest rank that takes the randomized SVD, which every
    narrower one then reuses (``range_sketch``), instead of one sketch per rank."""
    randomized = [int(r) for r in ranks if not _exact_svd(data, int(r))]
    if randomized:
        range_sketch(data, sketch_width(data, max(randomized)), rng)


def range_values_and_basis(XtQ, dtype):
    """The singular values of ``XᵀQ`` (largest first: estimates of X's) and an orthonormal
    basis of its range (the next power iteration's start), from one float64 Gram."""
    Y = XtQ.astype(np.float64, copy=False)
    gram = Y.T @ Y
    values = np.sqrt(np.clip(np.linalg.eigvalsh(gram)[::-1], 0, None))
    return values, (Y @ orthonormalizer(gram)).astype(dtype, copy=False)


def power_iterations_done(power, values, width):
    """Whether the range finder may stop after ``power`` power iterations, ``values``
    being its singular value estimates: X's leading ``width − OVERSAMPLE`` directions
    stand out from the rest by ``(σ_w/σ_lead)^(2·power + 1) ≤ SEPARATION_TOL`` (see the
    comment above), or ``power`` is MAX_POWER_ITERATIONS. Fewer values than ``width``
    mean X has fewer directions (``orthonormal`` dropped the others): the sketch spans
    X's range and is exact."""
    if len(values) < width:
        return True
    if power < 1:
        return False
    if power >= MAX_POWER_ITERATIONS:
        return True
    lead = max(1, width - OVERSAMPLE)
    # directions below 1e-3 of the largest (X of lower rank) carry no weight in NNDSVD
    scale = max(values[lead - 1], 1e-3 * values[0])
    if scale <= 0:  # X = 0
        return True
    return bool((values[-1] / scale) ** (2 * power + 1) <= SEPARATION_TOL)


def orthonormal(Y, dtype):
    """An orthonormal basis of Y's well-conditioned range (Cholesky-QR by ``orthonormalizer``,
    in float64: the Gram squares Y's condition number)."""
    Y = Y.astype(np.float64, copy=False)
    return (Y @ orthonormalizer(Y.T @ Y)).astype(dtype, copy=False)


def orthonormalizer(gram):
    """T such that Y T has orthonormal columns spanning Y's well-conditioned range,
    from the Gram ``YᵀY = V Λ Vᵀ`` (T = V Λ^-½ over the eigenvalues that are not noise)."""
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max(initial=0) * gram.shape[0] * np.finfo(np.float64).eps
    if not keep.any():
        keep[-1] = True
        values = np.maximum(values, 1.0)
    return vectors[:, keep] / np.sqrt(values[keep])


def svd_of_range(XtQ, rank):
    """``(T, S, Vt)`` from ``XᵀQ`` (n, w), where Q has orthonormal columns spanning X's
    range: X ≈ Q B with ``Bᵀ = XᵀQ = U_b S V_bᵀ``, so X ≈ (Q V_b) S U_bᵀ and ``U = Q T``
    with ``T = V_b``. Triplets beyond X's directions are zero."""
    Ub, S, Vbt = np.linalg.svd(XtQ.astype(np.float64, copy=False), full_matrices=False)
    r = min(rank, len(S))
    T, S_rank, Vt = np.zeros((Vbt.shape[1], rank)), np.zeros(rank), np.zeros((rank, XtQ.shape[0]))
    T[:, :r], S_rank[:r], Vt[:r] = Vbt[:r].T, S[:r], Ub[:, :r].T
    return T, S_rank, Vt


def _nndsvd(data, rank, rng):
    """NNDSVD: each singular pair split into its dominant non-negative part."""
    U, S, Vt = _truncated_svd(data, rank, rng)
    V = Vt.T
    signs, coef_u, coef_v = nndsvd_plan(S, part_norms(U), part_norms(V))
    W, Ht = nndsvd_part(U, signs, coef_u), nndsvd_part(V, signs, coef_v)
    # Round-off leaves tiny positive entries where the exact factor is zero.
    cutoff = 1e-6 * max(W.max(initial=0), Ht.max(initial=0))
    W[W < cutoff] = 0
    Ht[Ht < cutoff] = 0
    return W, Ht


def part_norms(A):
    """Norms of the positive and of the negative parts of each column of A."""
    return np.linalg.norm(np.maximum(A, 0), axis=0), np.linalg.norm(np.minimum(A, 0), axis=0)


def nndsvd_plan(S, u_norms, v_norms):
    """Which part of each singular pair NNDSVD keeps, and its scale (Boutsidis &
    Gallopoulos 2008, Algorithm 1), from the singular values and the ``part_norms`` of
    the left and right singular vectors.

    Returns ``(signs, coef_u, coef_v)``: column j of the factor is ``coef[j]`` times the
    positive part (sign +1), the negative part (−1) or, for the leading pair, whose
    vectors can be taken non-negative, the absolute value (0) of singular vector j.
    """
    (up, un), (vp, vn) = u_norms, v_norms
    rank = len(S)
    signs = np.zeros(rank)
    coef_u, coef_v = np.zeros(rank), np.zeros(rank)
    coef_u[0] = coef_v[0] = np.sqrt(S[0])
    for j in range(1, rank):
        positive, negative = up[j] * vp[j], un[j] * vn[j]
        if positive >= negative:
            signs[j], sigma, nu, nv = 1, positive, up[j], vp[j]
        else:
            signs[j], sigma, nu, nv = -1, negative, un[j], vn[j]
        if sigma > 0:
            lam = np.sqrt(S[j] * sigma)
            coef_u[j], coef_v[j] = lam / nu, lam / nv
    return signs, coef_u, coef_v


def nndsvd_part(A, signs, coef):
    """The columns of A reduced to the part ``nndsvd_plan`` chose, times its scale."""
    part = np.where(signs > 0, np.maximum(A, 0), np.where(signs < 0, np.maximum(-A, 0), np.abs(A)))
    return part * coef
