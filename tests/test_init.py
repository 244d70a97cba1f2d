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
    """When X has fewer directions than the sketch, its first pass spans X: exact
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
    else:  # full rank: the leading values to 1 %
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


def test_power_iterations_stop_once_the_leading_directions_stand_out(monkeypatch):
    """Two products per pass: on low rank plus noise (a wide gap after the leading
    directions) one power iteration separates them, and the rule stops there; on a
    slowly decaying spectrum it makes the maximum, and the singular vectors are
    accurate then; on X of lower rank than the sketch's width the first pass spans X."""
    from fastnmf import _init

    calls = _count_products(monkeypatch)
    rng = np.random.default_rng(0)
    low_rank = _low_rank(600, 500, 8) + 0.01 * rng.random((600, 500))
    randomized_svd(load(low_rank), 8, np.random.default_rng(1))
    assert len(calls) == 2 * (1 + 1)
    calls.clear()
    randomized_svd(load(_low_rank(600, 500, 3)), 8, np.random.default_rng(1))  # exactly rank 3
    assert len(calls) == 2  # the first pass spans X
    calls.clear()
    U0, _ = np.linalg.qr(rng.standard_normal((600, 500)))
    V0, _ = np.linalg.qr(rng.standard_normal((500, 500)))
    decaying = (U0 * np.arange(1, 501) ** -0.3) @ V0.T  # σ_j = j^-0.3, shifted by a rank one:
    decaying -= decaying.min()
    U, S, Vt = randomized_svd(load(decaying), 8, np.random.default_rng(1))
    assert len(calls) == 2 * (1 + _init.MAX_POWER_ITERATIONS)
    exact_U, exact_S, exact_Vt = np.linalg.svd(decaying, full_matrices=False)
    np.testing.assert_allclose(S, exact_S[:8], rtol=1e-3)
    # the leading right singular subspace within a small angle of the exact one
    cosines = np.linalg.svd(Vt @ exact_Vt[:8].T, compute_uv=False)
    assert np.sqrt(1 - cosines.min() ** 2) < 0.05


def test_the_power_iteration_rule():
    """Stop after one power iteration at least, at the maximum at most, and in between
    once (σ_w/σ_lead)^(2q+1) ≤ SEPARATION_TOL; directions below 1e-3 of the largest do
    not count as leading."""
    from fastnmf._init import MAX_POWER_ITERATIONS, OVERSAMPLE, SEPARATION_TOL, power_iterations_done

    width = 3 + OVERSAMPLE
    values = np.linspace(1.0, 0.5, width)
    ratio = values[-1] / values[2]
    q = next(q for q in range(1, 100) if ratio ** (2 * q + 1) <= SEPARATION_TOL)
    assert q < MAX_POWER_ITERATIONS
    assert [power_iterations_done(p, values, width) for p in range(q + 1)] == [False] * q + [True]
    flat = np.ones(width)
    assert not power_iterations_done(MAX_POWER_ITERATIONS - 1, flat, width)
    assert power_iterations_done(MAX_POWER_ITERATIONS, flat, width)
    rank_one = np.r_[1.0, np.full(width - 1, 1e-4)]
    assert not power_iterations_done(0, rank_one, width) and power_iterations_done(1, rank_one, width)
    assert power_iterations_done(1, np.zeros(width), width)
    assert power_iterations_done(0, values[:-1], width)  # X has fewer directions
