"""Data sets for examples, tests and benchmarks, generated in code (no downloads).

``swimmer()`` is the classic swimmer image set of Donoho & Stodden (2003), whose 17 parts
NMF should recover; ``low_rank()`` draws a planted non-negative low-rank matrix, optionally
noisy and sparse.
"""

import functools

import numpy as np

from ._validation import (
    FLOAT_DTYPES,
    check_int,
    check_nonnegative_float,
    check_random_state,
)

__all__ = ["swimmer", "low_rank"]

# --- swimmer geometry (row, column) on a 32 x 32 grid; rows grow downwards ----------------
_SIZE = 32
_TORSO_COLS = (15, 16)  # a two-pixel-wide vertical bar in the middle
_TORSO_ROWS = (8, 24)  # rows 8 .. 23
_LIMB_LENGTH = 6  # pixels per limb segment
# (pivot, four directions) per limb, in the order left arm, right arm, left leg, right leg.
# Directions are the 45-degree multiples, so the four positions of one limb (and every
# other part) never share a pixel: each image is exactly the sum of its five parts.
_UP, _DOWN, _LEFT, _RIGHT = (-1, 0), (1, 0), (0, -1), (0, 1)
_UP_LEFT, _UP_RIGHT, _DOWN_LEFT, _DOWN_RIGHT = (-1, -1), (-1, 1), (1, -1), (1, 1)
_LIMBS = (
    ((9, 14), (_UP, _UP_LEFT, _LEFT, _DOWN_LEFT)),  # left arm, from the left shoulder
    ((9, 17), (_UP, _UP_RIGHT, _RIGHT, _DOWN_RIGHT)),  # right arm
    ((22, 14), (_UP_LEFT, _LEFT, _DOWN_LEFT, _DOWN)),  # left leg, from the left hip
    ((22, 17), (_UP_RIGHT, _RIGHT, _DOWN_RIGHT, _DOWN)),  # right leg
)


@functools.lru_cache(maxsize=1)
def _build_swimmer():
    """Build the swimmer images and parts once (read-only arrays; callers copy them)."""
    parts = np.zeros((17, _SIZE, _SIZE))
    parts[0, _TORSO_ROWS[0] : _TORSO_ROWS[1], _TORSO_COLS[0] : _TORSO_COLS[1] + 1] = 1.0
    for limb, ((row, col), directions) in enumerate(_LIMBS):
        for position, (drow, dcol) in enumerate(directions):
            part = parts[1 + 4 * limb + position]
            for step in range(1, _LIMB_LENGTH + 1):
                part[row + step * drow, col + step * dcol] = 1.0
    parts = parts.reshape(17, _SIZE * _SIZE)

    # All 4**4 combinations of limb positions, the first limb varying slowest.
    combos = np.array(np.meshgrid(*[np.arange(4)] * 4, indexing="ij")).reshape(4, -1).T
    X = np.tile(parts[0], (len(combos), 1))
    for limb in range(4):
        X += parts[1 + 4 * limb + combos[:, limb]]
    X.flags.writeable = False
    parts.flags.writeable = False
    return X, parts


def swimmer():
    """The swimmer data set: 256 images of a stick figure with four moving limbs.

    Each 32 x 32 image shows the torso (a vertical bar in the middle) and four limbs (two
    arms, two legs), each limb in one of four positions (angles 45 degrees apart around
    its shoulder or hip). The 256 images are all ``4**4`` combinations of limb positions.
    The 17 parts are pairwise disjoint, so every image is exactly the sum of its five parts
    and NMF at rank 17 can in principle recover them (Donoho & Stodden, 2003).

    Returns
    -------
    X : ndarray of shape (256, 1024), float64
        One image per row, flattened in row-major (C) order, pixels 0 or 1. Row
        ``64 * a + 16 * b + 4 * c + d`` has the left arm in position ``a``, the right arm
        in ``b``, the left leg in ``c`` and the right leg in ``d``.
    parts : ndarray of shape (17, 1024), float64
        The ground-truth parts, 0/1 each: row 0 is the torso, rows ``1 + 4 * limb + p``
        (``limb`` = 0 left arm, 1 right arm, 2 left leg, 3 right leg; ``p`` = 0..3) the
        limb positions.

    Notes
    -----
    The arrays are built once and cached; every call returns fresh copies, so modifying
    them is safe. View an image with ``X[i].reshape(32, 32)``.

    References
    ----------
    D. Donoho and V. Stodden, "When does non-negative matrix factorization give a correct
    decomposition into parts?", NIPS 2003.

    Examples
    --------
    >>> from fastnmf.datasets import swimmer
    >>> X, parts = swimmer()
    >>> X.shape, parts.shape
    ((256, 1024), (17, 1024))
    """
    X, parts = _build_swimmer()
    return X.copy(), parts.copy()


def low_rank(
    m,
    n,
    rank,
    noise=0.0,
    sparse_density=None,
    dtype=np.float64,
    random_state=None,
):
    """A random non-negative matrix of planted low rank, optionally noisy and sparse.

    Draws sparse non-negative factors ``W`` (m, rank) and ``H`` (rank, n) with
    exponentially distributed non-zeros (about a quarter of the entries are zero, which
    makes the factorisation essentially unique) and returns
    ``X = W @ H + noise * std(W @ H) * |N(0, 1)|``, which is always non-negative.

    Parameters
    ----------
    m, n : int
        Shape of ``X`` (samples, features), each >= 1.
    rank : int
        Inner dimension of the planted factors, >= 1.
    noise : float, default=0.0
        Non-negative level of additive half-normal noise, relative to the standard
        deviation of ``W @ H``. With ``noise=0``, ``X`` equals ``W @ H`` exactly.
    sparse_density : float in (0, 1] or None, default=None
        When given, ``X`` is returned as a ``scipy.sparse.csr_matrix`` holding a random
        subset of exactly ``round(sparse_density * m * n)`` (at least one) entries of the
        dense ``X`` above, with their values; the other entries are implicit zeros. An
        entry of the dense ``X`` that happens to be zero is kept as an explicit zero when
        it is drawn, so the stored entries are exactly the sampled ones.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Dtype of ``X``, ``W`` and ``H``.
    random_state : None, int or numpy.random.Generator, default=None
        Seed or generator; the same seed gives the same arrays.

    Returns
    -------
    X : ndarray of shape (m, n) or scipy.sparse.csr_matrix
        The data, dense unless ``sparse_density`` is given.
    W : ndarray of shape (m, rank)
        The planted sample factor; every row has at least one non-zero.
    H : ndarray of shape (rank, n)
        The planted feature factor; every column has at least one non-zero.

    Raises
    ------
    TypeError
        If ``m``, ``n`` or ``rank`` is not an integer, ``noise`` or ``sparse_density`` is
        not a real number, or ``random_state`` is of the wrong type.
    ValueError
        If a size is < 1, ``noise`` is negative or not finite, ``sparse_density`` is not
        in (0, 1], or ``dtype`` is not float32/float64.

    Examples
    --------
    >>> from fastnmf.datasets import low_rank
    >>> X, W, H = low_rank(100, 50, 5, random_state=0)
    >>> X.shape, W.shape, H.shape
    ((100, 50), (100, 5), (5, 50))
    >>> bool((X == W @ H).all())
    True
    """
    m = check_int("m", m, 1)
    n = check_int("n", n, 1)
    rank = check_int("rank", rank, 1)
    noise = check_nonnegative_float("noise", noise)
    sparse_density = check_nonnegative_float(
        "sparse_density", sparse_density, allow_none=True, strictly_positive=True
    )
    if sparse_density is not None and sparse_density > 1:
        raise ValueError(
            f"sparse_density must be in (0, 1] (the fraction of entries kept), "
            f"got {sparse_density}."
        )
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}.") from exc
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}.")
    rng = check_random_state(random_state)

    W = _sparse_factor(rng, m, rank).astype(dtype)
    H = _sparse_factor(rng, n, rank).T.astype(dtype, order="C")
    X = W @ H
    if noise > 0:
        scale = noise * float(np.std(X, dtype=np.float64))
        X += (scale * np.abs(rng.standard_normal((m, n)))).astype(dtype)

    if sparse_density is not None:
        size = m * n
        keep = max(1, int(round(sparse_density * size)))
        flat = np.sort(rng.choice(size, size=keep, replace=False))
        rows, cols = np.divmod(flat, n)
        import scipy.sparse as sp  # lazily: keeps `import fastnmf` fast

        X = sp.csr_matrix((X[rows, cols], (rows, cols)), shape=(m, n), dtype=dtype)
        X.sort_indices()
    return X, W, H


def _sparse_factor(rng, rows, rank, zero_fraction=0.25):
    """A (rows, rank) exponential factor with ~``zero_fraction`` zeros, no all-zero row."""
    F = rng.exponential(size=(rows, rank))
    F[rng.random((rows, rank)) < zero_fraction] = 0.0
    empty = np.flatnonzero(~F.any(axis=1))
    if empty.size:
        F[empty, rng.integers(rank, size=empty.size)] = rng.exponential(size=empty.size) + 0.1
    return F
