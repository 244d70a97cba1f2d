"""Sparse and masked X through every solver (the data layer's SparseData and MaskedData)."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnmf
from fastnmf._data import MaskedData, load

from conftest import TOL, low_rank_matrix
from naive import objective, projected_gradient_norm

# (solver, loss) pairs covering every solver and the β families of mu
CASES = [(s, "frobenius") for s in fastnmf.SOLVERS] + [("mu", "kl"), ("mu", 1.5), ("mu", 0.5)]


def sparse_low_rank(m=40, n=30, k=3, density=0.4, seed=0, dtype=np.float64):
    """Low-rank data with a random ``1 − density`` of its entries set to zero."""
    X, _, _ = low_rank_matrix(m, n, k, seed=seed, noise=0.05, dtype=dtype)
    X[np.random.default_rng(seed).random(X.shape) > density] = 0
    return X


def init_for(X, k, seed=1):
    r = np.random.default_rng(seed)
    return r.random((X.shape[0], k)) + 0.1, r.random((k, X.shape[1])) + 0.1


@pytest.mark.parametrize("solver,loss", CASES)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_equals_dense(solver, loss, fmt):
    X = sparse_low_rank()
    init = init_for(X, 3)
    kwargs = dict(solver=solver, loss=loss, init=init, max_iter=25, tol=0)
    dense = fastnmf.nmf(X, 3, **kwargs)
    sparse = fastnmf.nmf(sp.csr_array(X).asformat(fmt), 3, **kwargs)
    tol = TOL[np.dtype(np.float64)]["run"]
    np.testing.assert_allclose(sparse.W @ sparse.H, dense.W @ dense.H, rtol=tol, atol=tol * X.max())
    assert sparse.objective == pytest.approx(dense.objective, rel=tol)
    assert sparse.relative_error == pytest.approx(dense.relative_error, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_sparse_dtypes(dtype):
    X = np.round(10 * sparse_low_rank()).astype(dtype)
    res = fastnmf.nmf(sp.csr_matrix(X), 3, max_iter=20)
    assert res.W.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all()


def test_sparse_duplicates_unsorted_and_explicit_zeros_are_read_as_scipy_does():
    X = sparse_low_rank(20, 15)
    coo = sp.coo_array(X)
    # the same entries split into two duplicates each, in reverse order, plus explicit zeros
    rows = np.concatenate([coo.row, coo.row, [0, 1]])[::-1]
    cols = np.concatenate([coo.col, coo.col, [0, 1]])[::-1]
    half = coo.data / 2
    data = np.concatenate([half, half, [0.0, 0.0]])[::-1]
    messy = sp.coo_array((data, (rows, cols)), shape=X.shape)
    init = init_for(X, 2)
    a = fastnmf.nmf(messy, 2, init=init, max_iter=10, tol=0)
    b = fastnmf.nmf(X, 2, init=init, max_iter=10, tol=0)
    np.testing.assert_allclose(a.W @ a.H, b.W @ b.H, rtol=1e-9)


@pytest.mark.parametrize("solver,loss", CASES)
def test_inputs_not_modified(solver, loss):
    X = sp.csr_array(sparse_low_rank())
    mask = np.random.default_rng(0).random(X.shape) > 0.2
    copies = X.data.copy(), X.indices.copy(), X.indptr.copy(), mask.copy()
    fastnmf.nmf(X, 3, solver=solver, loss=loss, max_iter=5)
    fastnmf.nmf(X, 3, solver=solver, loss=loss, mask=mask, max_iter=5)
    fastnmf.nmf(X, 3, solver=solver, loss=loss, missing="zeros", max_iter=5)
    for before, after in zip(copies, (X.data, X.indices, X.indptr, mask)):
        np.testing.assert_array_equal(before, after)


# ----------------------------------------------------------------------------- masks


def masked_problem(fraction_observed, seed=0, m=40, n=30, k=3):
    X, W, H = low_rank_matrix(m, n, k, seed=seed, noise=0.0)
    mask = np.random.default_rng(seed + 1).random(X.shape) < fraction_observed
    return X, mask


@pytest.mark.parametrize("solver,loss", CASES)
@pytest.mark.parametrize("fraction", [0.9, 0.3])  # the complement and the observed form
@pytest.mark.parametrize("sparse", [False, True])
def test_masked_entries_are_never_read(solver, loss, fraction, sparse):
    X, mask = masked_problem(fraction)
    X = X + 0.5  # no zeros, so every β is defined at every observed entry
    init = init_for(X, 3)
    results = []
    for fill in (np.nan, -7.0, 1e30):
        Xf = np.where(mask, X, fill)
        if sparse:
            Xf = sp.csr_array(Xf)
        results.append(fastnmf.nmf(Xf, 3, solver=solver, loss=loss, mask=mask, init=init, max_iter=10, tol=0))
    for other in results[1:]:
        np.testing.assert_array_equal(other.W, results[0].W)
        np.testing.assert_array_equal(other.H, results[0].H)
    # the recorded objective is the loss over the observed entries
    res = results[0]
    beta = {"frobenius": 2.0, "kl": 1.0}.get(loss, loss)
    expected = objective(X, res.W, res.H, beta=beta, mask=mask)
    assert res.objective == pytest.approx(expected, rel=1e-9)
    diff = np.where(mask, X - res.W @ res.H, 0)
    assert res.relative_error == pytest.approx(np.linalg.norm(diff) / np.linalg.norm(X[mask]), rel=1e-6)


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "anls_as", "mu"])
@pytest.mark.parametrize("sparse", [False, True])
def test_hidden_entries_are_predicted(solver, sparse):
    """Low-rank data with 5 % of its entries hidden: the factors predict them."""
    X, _, _ = low_rank_matrix(80, 60, 4, seed=3)
    X += 0.1
    mask = np.random.default_rng(4).random(X.shape) > 0.05
    Xin = sp.csr_array(np.where(mask, X, 0)) if sparse else np.where(mask, X, np.nan)
    res = fastnmf.nmf(Xin, 4, solver=solver, mask=mask, max_iter=3000, tol=1e-12, target_error=1e-6)
    hidden = ~mask
    predicted = (res.W @ res.H)[hidden]
    assert np.linalg.norm(predicted - X[hidden]) / np.linalg.norm(X[hidden]) < 0.02


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "anls_as"])
def test_masked_result_satisfies_kkt(solver):
    X, mask = masked_problem(0.8, seed=5)
    res = fastnmf.nmf(X, 3, solver=solver, mask=mask, max_iter=2000, tol=1e-14)
    start = projected_gradient_norm(X, *init_for(X, 3), mask=mask)
    assert projected_gradient_norm(X, res.W, res.H, mask=mask) < 1e-5 * start
    assert res.kkt_residual < 1e-4


def test_all_true_mask_is_no_mask():
    X, _ = masked_problem(1.0)
    init = init_for(X, 3)
    a = fastnmf.nmf(X, 3, init=init, max_iter=10)
    b = fastnmf.nmf(X, 3, init=init, max_iter=10, mask=np.ones(X.shape, bool))
    np.testing.assert_array_equal(a.W, b.W)


def test_fully_masked_rows_and_columns_stay_finite():
    X, mask = masked_problem(0.8)
    mask[3] = False
    mask[:, 5] = False
    for solver, loss in CASES:
        res = fastnmf.nmf(np.where(mask, X, np.nan), 3, solver=solver, loss=loss, mask=mask, max_iter=20)
        assert np.isfinite(res.W).all() and np.isfinite(res.H).all(), solver


def test_sparse_mask_equals_dense_mask():
    X, mask = masked_problem(0.6)
    init = init_for(X, 3)
    a = fastnmf.nmf(sp.csr_array(X), 3, mask=mask, init=init, max_iter=15)
    b = fastnmf.nmf(sp.csr_array(X), 3, mask=sp.csr_array(mask), init=init, max_iter=15)
    c = fastnmf.nmf(X, 3, mask=mask, init=init, max_iter=15)
    np.testing.assert_allclose(a.W @ a.H, b.W @ b.H, rtol=1e-12)
    np.testing.assert_allclose(a.W @ a.H, c.W @ c.H, rtol=1e-9)


@pytest.mark.parametrize("solver,loss", CASES)
def test_missing_zeros_is_the_mask_of_stored_entries(solver, loss):
    X = sparse_low_rank(density=0.5)
    X[X > 0] += 0.5
    rows, cols = np.nonzero(X)
    j0 = int(np.flatnonzero(X[0] == 0)[0])  # an explicit zero is stored, hence observed
    csr = sp.csr_array(
        (np.append(X[rows, cols], 0.0), (np.append(rows, 0), np.append(cols, j0))), shape=X.shape
    )
    assert csr.nnz == rows.size + 1
    mask = X != 0
    mask[0, j0] = True
    init = init_for(X, 3)
    kwargs = dict(solver=solver, loss=loss, init=init, max_iter=10, tol=0)
    a = fastnmf.nmf(csr, 3, missing="zeros", **kwargs)
    b = fastnmf.nmf(X, 3, mask=mask, **kwargs)
    np.testing.assert_allclose(a.W @ a.H, b.W @ b.H, rtol=1e-9)


# ----------------------------------------------------------------------------- data layer


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_both_mask_forms_give_the_same_products(sparse, transposed):
    """The observed form (forced by β ≤ 0) and the complement form agree with NumPy."""
    X, mask = masked_problem(0.85, seed=7)
    X = X + 0.3
    Xin = sp.csr_array(X) if sparse else X
    observed = load(Xin, mask, beta=0.0)
    complement = load(Xin, mask, beta=2.0)
    assert isinstance(observed, MaskedData) and not observed.complement and complement.complement
    r = np.random.default_rng(0)
    Xd, M = (X.T, mask.T) if transposed else (X, mask)
    F, G = r.random((Xd.shape[0], 3)), r.random((Xd.shape[1], 3))
    WH = F @ G.T
    for data in (observed, complement):
        data = data.T if transposed else data
        np.testing.assert_allclose(data.matmul(G), np.where(M, Xd, 0) @ G, rtol=1e-12)
        Qs = np.concatenate([Q for _, Q in data.gram_blocks(G, G.T @ G)])
        expected = np.stack([G[M[i]].T @ G[M[i]] for i in range(Xd.shape[0])])
        np.testing.assert_allclose(Qs, expected, rtol=1e-10, atol=1e-12)
        assert data.residual_sqnorm(F, G) == pytest.approx(np.sum((Xd - WH)[M] ** 2), rel=1e-10)
        for beta in (1.0, 1.5):
            num, den, div, sq = data.beta_products(F, G, beta)
            np.testing.assert_allclose(num, np.where(M, Xd * WH ** (beta - 2), 0) @ G, rtol=1e-10)
            np.testing.assert_allclose(np.broadcast_to(den, F.shape), np.where(M, WH ** (beta - 1), 0) @ G, rtol=1e-10)
            assert div == pytest.approx(objective(Xd, F, G.T, beta=beta, mask=M), rel=1e-10)
            assert sq == pytest.approx(np.sum((Xd - WH)[M] ** 2), rel=1e-10)


@pytest.mark.parametrize("transposed", [False, True])
def test_sparse_kl_products_touch_nonzeros_only_and_match_dense(transposed):
    X = sparse_low_rank(30, 20, density=0.3)
    data = load(sp.csr_array(X))
    data, Xd = (data.T, X.T) if transposed else (data, X)
    r = np.random.default_rng(0)
    F, G = r.random((Xd.shape[0], 3)), r.random((Xd.shape[1], 3))
    num, den, div, sq = data.beta_products(F, G, 1.0)
    WH = F @ G.T
    np.testing.assert_allclose(num, (Xd / WH) @ G, rtol=1e-12)
    np.testing.assert_allclose(np.broadcast_to(den, F.shape), np.ones_like(Xd) @ G, rtol=1e-12)
    assert div == pytest.approx(objective(Xd, F, G.T, beta=1.0), rel=1e-12)
    assert sq == pytest.approx(np.sum((Xd - WH) ** 2), rel=1e-10)
    assert data.residual_sqnorm(F, G) == pytest.approx(np.sum((Xd - WH) ** 2), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    density=st.floats(0.05, 1.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_property_sparse_equals_dense_for_any_shape(m, n, density, dtype, seed):
    r = np.random.default_rng(seed)
    X = (r.random((m, n)) * (r.random((m, n)) < density)).astype(dtype)
    k = min(m, n, 2)
    init = (r.random((m, k)).astype(dtype) + 0.1, r.random((k, n)).astype(dtype) + 0.1)
    dense = fastnmf.nmf(X, k, init=init, max_iter=5, tol=0)
    sparse = fastnmf.nmf(sp.csr_array(X), k, init=init, max_iter=5, tol=0)
    tol = TOL[np.dtype(dtype)]["run"]
    assert sparse.W.dtype == dtype
    assert np.isfinite(sparse.W).all() and np.isfinite(sparse.H).all()
    np.testing.assert_allclose(sparse.W @ sparse.H, dense.W @ dense.H, rtol=tol, atol=tol * max(X.max(), 1e-3))
