"""The randomized SVD behind the NNDSVD inits, on every kind of data."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastnmf
from fastnmf._data import load
from fastnmf._init import randomized_svd


def _low_rank(m, n, r, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((m, r)) @ rng.random((r, n))
    return X.astype(dtype)


@pytest.mark.parametrize("kind", ["C", "F", "sparse", "masked"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_randomized_svd_is_exact_on_low_rank_data(kind, dtype):
    """When X has fewer directions than the sketch, one power iteration gives its exact
    singular values and a factorization that reproduces it."""
    X = _low_rank(300, 200, 6, dtype=dtype)
    if kind == "F":
        X = np.asfortranarray(X)
    if kind == "sparse":
        X[X < np.quantile(X, 0.5)] = 0  # half the entries: no longer of low rank
        data = load(sp.csr_array(X))
    elif kind == "masked":
        data = load(X, mask=np.broadcast_to(np.arange(200) % 7 != 0, X.shape))
        X = X * (np.arange(200) % 7 != 0)  # the masked-out columns count as zeros: full rank
    else:
        data = load(X)
    rank = 5
    U, S, Vt = randomized_svd(data, rank, np.random.default_rng(1))
    exact = np.linalg.svd(X.astype(np.float64), compute_uv=False)[:rank]
    tol = 1e-9 if dtype == np.float64 else 2e-4
    assert U.shape == (300, rank) and S.shape == (rank,) and Vt.shape == (rank, 200)
    assert U.dtype == dtype
    if kind in ("C", "F"):  # exactly rank 6 ≤ rank + oversample: the sketch spans X
        np.testing.assert_allclose(S, exact, rtol=tol)
        np.testing.assert_allclose(U.T @ U, np.eye(rank), atol=10 * tol)
    else:  # full rank: the leading values to the accuracy of one power iteration
        np.testing.assert_allclose(S[:2], exact[:2], rtol=1e-2)
    assert np.all(np.diff(S) <= 0) and np.all(S > 0)


def test_randomized_svd_pads_missing_directions_with_zeros():
    X = _low_rank(600, 500, 2)
    U, S, Vt = randomized_svd(load(X), 4, np.random.default_rng(0))
    assert S[2] == S[3] == 0 and not U[:, 2:].any() and not Vt[2:].any()
    np.testing.assert_allclose((U * S) @ Vt, X, rtol=1e-9, atol=1e-9 * X.max())


def test_randomized_nndsvd_matches_the_exact_one():
    """Above the size where the init switches to the randomized SVD, a matrix of low rank
    gets the same NNDSVD factors as from the exact SVD (computed on a copy small enough
    for the exact path: the same matrix up to repeated rows)."""
    base = _low_rank(300, 600, 4, seed=3)
    tall = np.vstack([base, base])  # 600 × 600 > the exact-SVD size; the same singular vectors
    small = fastnmf.nmf(base, 4, init="nndsvd", max_iter=0)
    big = fastnmf.nmf(tall, 4, init="nndsvd", max_iter=0)
    # Repeating the rows scales the singular values by √2, split between the factors.
    np.testing.assert_allclose(big.H, small.H * 2**0.25, rtol=1e-6, atol=1e-8 * small.H.max())
    np.testing.assert_allclose(big.W[:300], small.W / 2**0.25, rtol=1e-6, atol=1e-8 * small.W.max())


def _count_products(monkeypatch):
    from fastnmf._data import DenseData

    calls = []
    product = DenseData.matmul
    monkeypatch.setattr(DenseData, "matmul", lambda self, G: calls.append(1) or product(self, G))
    return calls


def test_power_iterations_stop_once_the_values_settle(monkeypatch):
    """Two products per pass: on low rank plus noise, the first power iteration already
    gives the values (the second would confirm it), on a flat spectrum more are made,
    and never more than MAX_POWER_ITERATIONS."""
    from fastnmf import _init

    calls = _count_products(monkeypatch)
    rng = np.random.default_rng(0)
    low_rank = _low_rank(600, 500, 8) + 0.01 * rng.random((600, 500))
    randomized_svd(load(low_rank), 8, np.random.default_rng(1))
    assert len(calls) == 2 * (1 + 1)
    calls.clear()
    randomized_svd(load(_low_rank(600, 500, 3)), 8, np.random.default_rng(1))  # exactly rank 3
    assert len(calls) == 2 * (1 + 1)
    calls.clear()
    flat = rng.random((600, 500)) ** 4
    U, S, Vt = randomized_svd(load(flat), 8, np.random.default_rng(1))
    assert 2 * (1 + 2) <= len(calls) <= 2 * (1 + _init.MAX_POWER_ITERATIONS)
    exact = np.linalg.svd(flat, compute_uv=False)[:8]
    assert np.all(S <= exact * (1 + 1e-12)) and np.all(S >= 0.8 * exact)
    calls.clear()
    monkeypatch.setattr(_init, "POWER_TOL", 0.0)  # never settles: stops at the maximum
    randomized_svd(load(rng.random((600, 500))), 8, np.random.default_rng(1))
    assert len(calls) == 2 * (1 + _init.MAX_POWER_ITERATIONS)
