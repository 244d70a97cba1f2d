"""Tests of fastnmf.datasets: the swimmer images and planted low-rank matrices."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastnmf.datasets import low_rank, swimmer

# --- swimmer --------------------------------------------------------------------------------


def test_swimmer_shapes_and_values():
    X, parts = swimmer()
    assert X.shape == (256, 1024) and X.dtype == np.float64
    assert parts.shape == (17, 1024) and parts.dtype == np.float64
    assert set(np.unique(X)) == {0.0, 1.0}
    assert set(np.unique(parts)) == {0.0, 1.0}
    assert X.flags.writeable and parts.flags.writeable


def test_swimmer_parts_are_disjoint_and_shaped():
    _, parts = swimmer()
    assert parts.sum(axis=0).max() == 1  # no pixel in two parts
    sizes = parts.sum(axis=1)
    assert sizes[0] > sizes[1:].max()  # the torso is the largest part
    assert np.all((sizes[1:] >= 5) & (sizes[1:] <= 7))  # limbs are short segments
    # The torso is a vertical bar in the middle of the image.
    rows, cols = np.nonzero(parts[0].reshape(32, 32))
    assert np.ptp(rows) > np.ptp(cols) and set(cols) <= {14, 15, 16, 17}


def test_swimmer_images_are_torso_plus_one_position_per_limb():
    X, parts = swimmer()
    # Parts are disjoint 0/1 masks, so X @ parts.T counts each part's pixels in an image.
    coverage = X @ parts.T / parts.sum(axis=1)
    assert np.all(np.isin(coverage, (0.0, 1.0)))
    assert np.all(coverage[:, 0] == 1)  # the torso is in every image
    present = coverage[:, 1:].reshape(256, 4, 4)
    assert np.all(present.sum(axis=2) == 1)  # exactly one position per limb
    np.testing.assert_array_equal(X, coverage @ parts)  # image = sum of its 5 parts
    # All 4**4 combinations, each exactly once.
    combos = present.argmax(axis=2)
    assert len({tuple(c) for c in combos}) == 256
    assert len(np.unique(X, axis=0)) == 256
    # The documented row order: 64 a + 16 b + 4 c + d.
    np.testing.assert_array_equal(combos @ np.array([64, 16, 4, 1]), np.arange(256))


def test_swimmer_returns_copies():
    X, parts = swimmer()
    X[:] = 7
    parts[:] = -1
    X2, parts2 = swimmer()
    assert set(np.unique(X2)) == {0.0, 1.0}
    assert parts2.sum(axis=0).max() == 1


# --- low_rank -------------------------------------------------------------------------------


def test_low_rank_exact():
    X, W, H = low_rank(40, 30, 4, random_state=0)
    assert X.shape == (40, 30) and W.shape == (40, 4) and H.shape == (4, 30)
    assert all(a.dtype == np.float64 for a in (X, W, H))
    assert (W >= 0).all() and (H >= 0).all()
    np.testing.assert_array_equal(X, W @ H)
    assert np.linalg.matrix_rank(X) == 4
    # Some zeros make the factors identifiable; no sample is all zero.
    assert (W == 0).any() and (H == 0).any()
    assert W.any(axis=1).all() and H.any(axis=0).all()


def test_low_rank_noise_is_nonnegative_and_scaled():
    X0, W, H = low_rank(200, 100, 5, random_state=1)
    X, W1, H1 = low_rank(200, 100, 5, noise=0.1, random_state=1)
    np.testing.assert_array_equal(W, W1)
    np.testing.assert_array_equal(H, H1)
    E = X - W @ H
    assert (X >= 0).all() and (E >= 0).all() and (E > 0).any()
    # mean of 0.1 * std(WH) * |N(0, 1)| is 0.1 * std * sqrt(2 / pi)
    expected = 0.1 * np.std(X0) * np.sqrt(2 / np.pi)
    assert abs(E.mean() / expected - 1) < 0.05


@pytest.mark.parametrize("density", [0.05, 0.3, 1.0])
def test_low_rank_sparse(density):
    Xs, W, H = low_rank(100, 80, 3, noise=0.05, sparse_density=density, random_state=2)
    Xd, _, _ = low_rank(100, 80, 3, noise=0.05, random_state=2)
    assert sp.issparse(Xs) and Xs.format == "csr" and Xs.shape == (100, 80)
    assert Xs.nnz == round(density * 100 * 80)
    assert Xs.has_sorted_indices
    # The stored entries are entries of the dense X.
    coo = Xs.tocoo()
    np.testing.assert_array_equal(coo.data, Xd[coo.row, coo.col])
    if density == 1.0:
        np.testing.assert_array_equal(Xs.toarray(), Xd)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32"])
def test_low_rank_dtype(dtype):
    X, W, H = low_rank(20, 10, 2, noise=0.5, dtype=dtype, random_state=3)
    assert X.dtype == W.dtype == H.dtype == np.dtype(dtype)
    Xs, _, _ = low_rank(20, 10, 2, sparse_density=0.5, dtype=dtype, random_state=3)
    assert Xs.dtype == np.dtype(dtype)


def test_low_rank_exact_float32():
    X, W, H = low_rank(30, 20, 3, dtype=np.float32, random_state=4)
    np.testing.assert_array_equal(X, W @ H)


def test_low_rank_reproducible():
    a = low_rank(30, 20, 3, noise=0.1, sparse_density=0.2, random_state=5)
    b = low_rank(30, 20, 3, noise=0.1, sparse_density=0.2, random_state=5)
    np.testing.assert_array_equal(a[0].toarray(), b[0].toarray())
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    c = low_rank(30, 20, 3, random_state=np.random.default_rng(5))
    d = low_rank(30, 20, 3, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(c[0], d[0])
    e = low_rank(30, 20, 3, random_state=6)
    assert not np.array_equal(c[0], e[0])


def test_low_rank_generator_is_advanced():
    rng = np.random.default_rng(7)
    first, _, _ = low_rank(10, 10, 2, random_state=rng)
    second, _, _ = low_rank(10, 10, 2, random_state=rng)
    assert not np.array_equal(first, second)


def test_low_rank_small_shapes():
    X, W, H = low_rank(1, 1, 1, random_state=0)
    assert X.shape == (1, 1) and X[0, 0] > 0
    X, W, H = low_rank(3, 2, 5, random_state=0)  # rank may exceed min(m, n)
    assert X.shape == (3, 2) and W.shape == (3, 5) and H.shape == (5, 2)
    Xs, _, _ = low_rank(2, 2, 1, sparse_density=0.01, random_state=0)
    assert Xs.nnz == 1  # at least one entry is kept


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(m=0), ValueError, "m must be >= 1"),
        (dict(n=-3), ValueError, "n must be >= 1"),
        (dict(rank=0), ValueError, "rank must be >= 1"),
        (dict(m=2.5), TypeError, "m must be an integer"),
        (dict(rank="3"), TypeError, "rank must be an integer"),
        (dict(m=True), TypeError, "m must be an integer"),
        (dict(noise=-0.1), ValueError, "noise"),
        (dict(noise=np.inf), ValueError, "noise"),
        (dict(noise="a"), TypeError, "noise"),
        (dict(sparse_density=0), ValueError, "sparse_density"),
        (dict(sparse_density=1.5), ValueError, "sparse_density"),
        (dict(sparse_density=-0.2), ValueError, "sparse_density"),
        (dict(dtype=np.int64), ValueError, "dtype"),
        (dict(dtype="not a dtype"), TypeError, "dtype"),
        (dict(random_state="seed"), TypeError, "random_state"),
    ],
)
def test_low_rank_bad_arguments(kwargs, error, match):
    args = dict(m=10, n=8, rank=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        low_rank(**args)
