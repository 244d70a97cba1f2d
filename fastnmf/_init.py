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
    m, n = data.shape
    W = np.zeros((m, rank))
    Ht = np.zeros((n, rank))
    # The leading singular vectors of a non-negative matrix can be taken non-negative.
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    Ht[:, 0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, rank):
        x, y = U[:, j], Vt[j]
        xp, xn = np.maximum(x, 0), np.maximum(-x, 0)
        yp, yn = np.maximum(y, 0), np.maximum(-y, 0)
        xp_norm, yp_norm = np.linalg.norm(xp), np.linalg.norm(yp)
        xn_norm, yn_norm = np.linalg.norm(xn), np.linalg.norm(yn)
        positive, negative = xp_norm * yp_norm, xn_norm * yn_norm
        if positive >= negative:
            u, v, sigma, un, vn = xp, yp, positive, xp_norm, yp_norm
        else:
            u, v, sigma, un, vn = xn, yn, negative, xn_norm, yn_norm
        if sigma > 0:
            lam = np.sqrt(S[j] * sigma)
            W[:, j] = lam * u / un
            Ht[:, j] = lam * v / vn
    # Round-off leaves tiny positive entries where the exact factor is zero.
    cutoff = 1e-6 * max(W.max(initial=0), Ht.max(initial=0))
    W[W < cutoff] = 0
    Ht[Ht < cutoff] = 0
    return W, Ht
