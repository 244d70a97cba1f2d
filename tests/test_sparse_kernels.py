"""The CSR kernels of fastnmf._kernels.sparse against plain NumPy references.

The matrices are built by hand with ``csr_array((data, indices, indptr))`` so that they
keep what scipy would otherwise tidy away: explicit zeros, unsorted column indices
within a row, empty rows and a completely full row. Kernels are called as the contract
of the module says: int64 ``indptr``, int32 ``indices``, data of the factors' dtype.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_array

from fastnmf._kernels.sparse import nnz_beta, row_grams, spmm

RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
BETAS = [1.0, 0.0, 2.0, 0.5, 1.5, 3.0]
DTYPES = [np.float64, np.float32]
# (rows, columns, rank): 1×1, rank 1, and more rows than one task holds (ROW_BLOCK = 64)
SHAPES = [(1, 1, 1), (1, 1, 4), (2, 5, 1), (40, 25, 7), (150, 33, 3)]
TINY = 1e-6


def make_csr(rng, r, c, density=0.3, dtype=np.float64, zeros=True):
    """CSR (r, c) with unsorted indices, explicit zeros (if ``zeros``), row 1 full and
    the last row empty (when r > 1; a 1×c matrix has its only row full)."""
    lengths = rng.binomial(c, density, size=r)
    if r == 1:
        lengths[0] = c
    elif r > 1:
        lengths[1] = c
        lengths[-1] = 0
    indptr = np.zeros(r + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(lengths)
    parts = [rng.permutation(c)[:n] for n in lengths]  # random order within each row
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    data = rng.uniform(0.1, 2.0, size=indptr[-1])
    if zeros:
        data[rng.random(data.size) < 0.15] = 0.0
    return csr_array((data.astype(dtype), indices.astype(np.int32), indptr), shape=(r, c))


def args(Y):
    """The CSR arrays as the kernels take them."""
    return Y.indptr.astype(np.int64), Y.indices.astype(np.int32), Y.data


def pattern(Y):
    """Dense stored-entry mask and dense values (explicit zeros are in the mask)."""
    rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
    M = np.zeros(Y.shape, dtype=bool)
    M[rows, Y.indices] = True
    X = np.zeros(Y.shape)
    X[rows, Y.indices] = Y.data.astype(np.float64)
    return M, X


def factors(rng, r, c, k, dtype):
    F = rng.uniform(0.1, 1.0, size=(r, k))
    G = rng.uniform(0.1, 1.0, size=(c, k))
    if r > 2:
        F[2] = 0  # products of 0 there: the floor ``tiny`` is used
    if c > 1:
        G[0] = 0
    return F.astype(dtype), G.astype(dtype)


def divergence(x, v, beta):
    """d_β(x | v) elementwise (Févotte & Idier 2011), 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if beta == 1:
            return np.where(x > 0, x * np.log(x / v), 0.0) - x + v
        if beta == 0:
            return np.where(x > 0, x / v - np.log(x / v) - 1, np.inf)
        if beta == 2:
            return 0.5 * (x - v) ** 2
        d = (x**beta + (beta - 1) * v**beta - beta * x * v ** (beta - 1)) / (beta * (beta - 1))
        return np.where((x == 0) & (beta <= 0), np.inf, d)


def naive_beta(Y, F, G, beta, tiny):
    """num, den and the four sums from dense (r, c) matrices, masked to stored entries."""
    M, X = pattern(Y)
    F64, G64 = F.astype(np.float64), G.astype(np.float64)
    Vraw = F64 @ G64.T
    V = np.maximum(Vraw, tiny)
    num = (M * X * V ** (beta - 2)) @ G64
    den = (M * V ** (beta - 1)) @ G64
    x, v, vr = X[M], V[M], Vraw[M]
    sums = (divergence(x, v, beta).sum(), ((x - vr) ** 2).sum(), vr.sum(), (vr**2).sum())
    return num, den, sums


def assert_close(got, expected, dtype, scale=None):
    tol = RTOL[np.dtype(dtype)]
    atol = 0.0 if scale is None else tol * scale
    np.testing.assert_allclose(got, expected, rtol=tol, atol=atol)


def run_beta(Y, F, G, beta, need_den=True, with_objective=True):
    r, k = F.shape
    num = np.full((r, k), np.nan, dtype=F.dtype)  # must be fully overwritten
    den = np.full((r, k), np.nan, dtype=F.dtype) if need_den else np.empty((0, k), dtype=F.dtype)
    sums = nnz_beta(*args(Y), F, G, beta, TINY, num, den, need_den, with_objective)
    return num, den, sums


@pytest.fixture
def threads():
    """Yields a setter for the numba thread count and restores it afterwards."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads")
    before = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(before)


# ---------------------------------------------------------------------------- spmm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_spmm_matches_dense(rng, dtype, shape):
    r, c, k = shape
    Y = make_csr(rng, r, c, dtype=dtype)
    if r > 5:
        assert not Y.has_sorted_indices and np.any(Y.data == 0)
    _, G = factors(rng, r, c, k, dtype)
    out = np.full((r, k), np.nan, dtype=dtype)
    spmm(*args(Y), G, out)
    _, X = pattern(Y)
    assert out.dtype == dtype
    assert_close(out, X @ G.astype(np.float64), dtype)
    if r > 1:
        assert np.all(out[-1] == 0)  # the empty row


def test_spmm_without_entries(rng):
    Y = csr_array((4, 6))
    G = rng.random((6, 3))
    out = np.full((4, 3), np.nan)
    spmm(*args(Y), G, out)
    assert np.all(out == 0)


@settings(max_examples=60, deadline=None)
@given(
    r=st.integers(0, 70),
    c=st.integers(1, 40),
    k=st.integers(1, 9),
    density=st.floats(0.0, 1.0),
    dtype=st.sampled_from(DTYPES),
    zeros=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_spmm_property(r, c, k, density, dtype, zeros, seed):
    rng = np.random.default_rng(seed)
    Y = make_csr(rng, r, c, density, dtype, zeros)
    G = rng.uniform(0.0, 1.0, size=(c, k)).astype(dtype)
    out = np.full((r, k), np.nan, dtype=dtype)
    spmm(*args(Y), G, out)
    _, X = pattern(Y)
    assert out.shape == (r, k) and out.dtype == dtype
    assert_close(out, X @ G.astype(np.float64), dtype)


# ------------------------------------------------------------------------ nnz_beta


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_nnz_beta_matches_dense(rng, dtype, beta, shape):
    r, c, k = shape
    for zeros in (True, False):  # β = 0 with stored zeros is +inf: check the finite case too
        Y = make_csr(rng, r, c, dtype=dtype, zeros=zeros)
        F, G = factors(rng, r, c, k, dtype)
        num, den, sums = run_beta(Y, F, G, beta)
        enum, eden, esums = naive_beta(Y, F, G, beta, TINY)
        assert num.dtype == dtype and den.dtype == dtype
        assert all(isinstance(s, float) for s in sums)
        assert_close(num, enum, dtype)
        assert_close(den, eden, dtype)
        for got, expected in zip(sums, esums):
            if np.isinf(expected):
                assert got == expected
            else:
                assert_close(got, expected, dtype)
        if zeros and beta == 0 and np.any(Y.data == 0):
            assert sums[0] == np.inf


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", BETAS)
def test_nnz_beta_flags(rng, dtype, beta):
    Y = make_csr(rng, 90, 30, dtype=dtype)
    F, G = factors(rng, 90, 30, 5, dtype)
    num, den, _ = run_beta(Y, F, G, beta)
    # no objective: four zeros, the same weights
    num2, den2, sums = run_beta(Y, F, G, beta, with_objective=False)
    assert sums == (0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(num2, num)
    np.testing.assert_array_equal(den2, den)
    # no denominator: an empty den is fine, a full one is left untouched. num may differ
    # in the last bit (the compiler fuses the multiply-adds of the two loops differently)
    num3, den3, _ = run_beta(Y, F, G, beta, need_den=False)
    assert den3.shape == (0, 5)
    assert_close(num3, num, dtype)
    sentinel = np.full((90, 5), -7.0, dtype=dtype)
    num4 = np.empty_like(num)
    nnz_beta(*args(Y), F, G, beta, TINY, num4, sentinel, False, True)
    assert np.all(sentinel == -7.0)
    np.testing.assert_array_equal(num4, num3)


@pytest.mark.parametrize("beta", [0.0, -1.0])
def test_nnz_beta_stored_zero_with_nonpositive_beta_is_inf(rng, beta):
    Y = make_csr(rng, 20, 10, zeros=False)
    Y.data[3] = 0.0
    F, G = factors(rng, 20, 10, 4, np.float64)
    num, den, sums = run_beta(Y, F, G, beta)
    assert sums[0] == np.inf and np.isfinite(sums[1:]).all()
    enum, eden, _ = naive_beta(Y, F, G, beta, TINY)
    assert_close(num, enum, np.float64)
    assert_close(den, eden, np.float64)


# ----------------------------------------------------------------------- row_grams


def naive_grams(Y, G, r0, b):
    G64 = G.astype(np.float64)
    out = np.empty((b, G.shape[1], G.shape[1]))
    for q in range(b):
        idx = Y.indices[Y.indptr[r0 + q] : Y.indptr[r0 + q + 1]]
        out[q] = G64[idx].T @ G64[idx]
    return out


# (rows, columns, rank, first row, batch size)
GRAM_CASES = [(1, 1, 1, 0, 1), (2, 4, 1, 1, 1), (40, 25, 7, 1, 39), (150, 33, 3, 5, 140)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("complement", [False, True])
@pytest.mark.parametrize("case", GRAM_CASES)
def test_row_grams_matches_dense(rng, dtype, complement, case):
    r, c, k, r0, b = case
    Y = make_csr(rng, r, c, dtype=dtype)
    _, G = factors(rng, r, c, k, dtype)
    GtG = G.T @ G
    Q = np.full((b, k, k), np.nan, dtype=dtype)
    row_grams(*args(Y)[:2], G, GtG, complement, r0, Q)
    S = naive_grams(Y, G, r0, b)
    assert Q.dtype == dtype
    np.testing.assert_array_equal(Q, Q.transpose(0, 2, 1))
    if complement:
        expected = GtG.astype(np.float64) - S
        assert_close(Q, expected, dtype, scale=np.abs(GtG).max())
        if r0 + b == r and r > 1:
            np.testing.assert_array_equal(Q[-1], GtG)  # the empty last row
    else:
        assert_close(Q, S, dtype)


# ------------------------------------------------------------------ thread counts


@pytest.mark.parametrize("dtype", DTYPES)
def test_identical_for_any_thread_count(rng, threads, dtype):
    r, c, k = 700, 300, 6
    Y = make_csr(rng, r, c, density=0.1, dtype=dtype)
    F, G = factors(rng, r, c, k, dtype)
    GtG = G.T @ G
    results = []
    for n in (1, 2):
        threads(n)
        out = np.empty((r, k), dtype=dtype)
        spmm(*args(Y), G, out)
        beta = [run_beta(Y, F, G, b) for b in (1.0, 0.0, 2.0, 1.5)]
        Q = np.empty((r - 3, k, k), dtype=dtype)
        row_grams(*args(Y)[:2], G, GtG, True, 3, Q)
        results.append((out, beta, Q))
    (out1, beta1, Q1), (out2, beta2, Q2) = results
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(Q1, Q2)
    for (n1, d1, s1), (n2, d2, s2) in zip(beta1, beta2):
        np.testing.assert_array_equal(n1, n2)
        np.testing.assert_array_equal(d1, d2)
        assert s1 == s2
