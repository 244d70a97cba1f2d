"""Initial factors: NNDSVD and its variants (Boutsidis & Gallopoulos 2008), random, custom."""

import numpy as np
import scipy.linalg

INITS = ("nndsvd", "nndsvda", "nndsvdar", "random")
SVD_INITS = ("nndsvd", "nndsvda", "nndsvdar")

# Below this many entries a full LAPACK SVD is cheaper and exact.
_FULL_SVD_ENTRIES = 250_000


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


def _truncated_svd(Y, rank, rng):
    """Leading ``rank`` singular triplets: exact for small X, randomized otherwise
    (``Y`` dense or scipy.sparse)."""
    m, n = Y.shape
    if m * n <= _FULL_SVD_ENTRIES or rank > min(m, n) // 2:
        if hasattr(Y, "toarray"):
            Y = Y.toarray()
        U, S, Vt = scipy.linalg.svd(Y, full_matrices=False, check_finite=False)
        return U[:, :rank], S[:rank], Vt[:rank]
    # scikit-learn takes a second to import: only large problems pay for it.
    from sklearn.utils.extmath import randomized_svd

    seed = int(rng.integers(2**31 - 1))
    return randomized_svd(Y, rank, n_iter=4, random_state=seed)


def _nndsvd(data, rank, rng):
    """NNDSVD: each singular pair split into its dominant non-negative part."""
    U, S, Vt = _truncated_svd(data.Y, rank, rng)
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
