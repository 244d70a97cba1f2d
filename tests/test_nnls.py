"""nnls, nnls_gram and project (API.md §2, §9 "nnls precision") against scipy."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnmf._kernels import nnls as kernels
from fastnmf.nnls import NNLS_METHODS, nnls, nnls_gram, project

from naive_nnls import kkt_violation, nnls_reference, objective

EXACT = ("bpp", "active_set")
# Relative objective gap to scipy allowed per method (API.md §9): exact methods 1e-10,
# coordinate descent 1e-6 at its default tolerance.
OBJ_TOL = {"bpp": 1e-10, "active_set": 1e-10, "cd": 1e-6}
KKT_TOL = {"bpp": 1e-9, "active_set": 1e-9, "cd": 1e-4}


def problem(m, k, r, seed, signed=False, density=0.4, noise=0.1):
    """A (m, k) and B (m, r) = A X + noise with a sparse non-negative X, so that many
    constraints are active. ``signed`` gives A entries of both signs."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k)) if signed else rng.random((m, k))
    X = rng.random((k, r)) * (rng.random((k, r)) < density)
    B = A @ X + noise * rng.standard_normal((m, r))
    return A, B


def assert_matches_scipy(A, B, X, method):
    ref = objective(A, nnls_reference(A, B), B)
    got = objective(A, X, B)
    floor = 1e-14 * np.sum(np.asarray(B, np.float64) ** 2, axis=0)  # exact fits: f ≈ 0
    excess = got - ref - (OBJ_TOL[method] * ref + floor)
    assert np.all(excess <= 0), excess.max()


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("method", NNLS_METHODS)
@pytest.mark.parametrize("signed", [False, True])
def test_matches_scipy_column_by_column(method, signed):
    A, B = problem(40, 8, 30, seed=1, signed=signed)
    assert np.linalg.cond(A) < 1e2
    X = nnls(A, B, method=method)
    assert X.shape == (8, 30) and X.dtype == np.float64
    assert np.all(X >= 0)
    assert_matches_scipy(A, B, X, method)
    if method in EXACT:
        np.testing.assert_allclose(X, nnls_reference(A, B), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_kkt_conditions(method):
    A, B = problem(30, 12, 40, seed=2)
    X = nnls(A, B, method=method)
    assert np.all(kkt_violation(A, X, B) <= KKT_TOL[method])


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_larger_problem_many_active_constraints(method):
    A, B = problem(200, 30, 60, seed=3, density=0.2)
    X = nnls(A, B, method=method)
    assert 0.3 < np.mean(X == 0) < 0.95  # the constraints matter
    assert_matches_scipy(A, B, X, method)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_badly_scaled_columns(method):
    # column norms over 12 decades: the kernels work in Jacobi-scaled variables
    A, B = problem(60, 10, 30, seed=21)
    A = A * np.logspace(-6, 6, 10)
    X = nnls(A, B, method=method)
    assert_matches_scipy(A, B, X, method)
    assert np.all(kkt_violation(A, X, B) <= KKT_TOL[method])


@pytest.mark.parametrize("spread, cond", [(1e-2, 1e3), (1.3e-3, 1e4)])
def test_cd_on_ill_conditioned_problem(spread, cond):
    # near-duplicate columns: cond(A) ~ 1e3 and just under 1e4, the bound of API.md §9.
    # Plain CD needs ~cond(A)² sweeps here; the polish on its support makes it exact.
    rng = np.random.default_rng(20)
    A = rng.random((200, 20))
    A[:, 15:] = A[:, :5] + spread * rng.random((200, 5))
    X = rng.random((20, 20)) * (rng.random((20, 20)) < 0.5)
    B = A @ X + 0.05 * rng.standard_normal((200, 20))
    assert cond / 2 < np.linalg.cond(A) < min(2 * cond, 1e4)
    assert_matches_scipy(A, B, nnls(A, B, method="bpp"), "bpp")
    assert_matches_scipy(A, B, nnls(A, B, method="cd"), "cd")
    X32 = nnls(A.astype(np.float32), B.astype(np.float32), method="cd")
    assert X32.dtype == np.float32 and np.all(X32 >= 0)


@pytest.mark.parametrize("seed", range(4))
def test_cd_on_prescribed_condition_number(seed):
    # A = U diag(σ) Vᵀ with σ from 1 to 1e-4 (cond(A) = 1e4) and random signs: no
    # near-duplicate structure, so CD's support is further off when it stops
    rng = np.random.default_rng(30 + seed)
    k = 25
    U = np.linalg.qr(rng.standard_normal((100, k)))[0]
    V = np.linalg.qr(rng.standard_normal((k, k)))[0]
    A = U @ np.diag(np.logspace(0, -4, k)) @ V.T
    X = rng.random((k, 30)) * (rng.random((k, 30)) < 0.5)
    B = A @ X + 0.05 * np.linalg.norm(A @ X) / np.sqrt(100 * 30) * rng.standard_normal((100, 30))
    np.testing.assert_allclose(np.linalg.cond(A), 1e4, rtol=1e-6)
    assert_matches_scipy(A, B, nnls(A, B, method="cd"), "cd")


# --------------------------------------------------------------------------- degenerate problems


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_rank_deficient_duplicate_columns(method):
    A, B = problem(30, 6, 20, seed=4)
    A = np.hstack([A, A[:, :3], 2 * A[:, 1:2]])  # rank 6 with 10 columns
    X = nnls(A, B, method=method)
    assert np.all(np.isfinite(X)) and np.all(X >= 0)
    assert_matches_scipy(A, B, X, method)
    if method in EXACT:
        assert np.all(kkt_violation(A, X, B) <= 1e-8)


@pytest.mark.parametrize("method", EXACT)
def test_rank_deficient_exact_fit(method):
    # b in the cone of the columns: the optimum is 0, reached by many x
    rng = np.random.default_rng(5)
    A = rng.random((20, 5))
    A = np.hstack([A, A @ rng.random((5, 4))])  # 4 columns in the span of the others
    B = A @ (rng.random((9, 15)) * (rng.random((9, 15)) < 0.5))
    X = nnls(A, B, method=method)
    assert np.all(objective(A, X, B) <= 1e-20 * np.sum(B**2, axis=0) + 1e-24)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_zero_columns_get_zero(method):
    A, B = problem(30, 6, 10, seed=6)
    A[:, [1, 4]] = 0
    X = nnls(A, B, method=method)
    assert np.all(X[[1, 4]] == 0)
    assert_matches_scipy(A, B, X, method)
    X0 = nnls(np.zeros((5, 3)), np.ones(5), method=method)
    np.testing.assert_array_equal(X0, 0)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_zero_right_hand_side(method):
    A, _ = problem(10, 4, 1, seed=7)
    np.testing.assert_array_equal(nnls(A, np.zeros(10), method=method), 0)
    np.testing.assert_array_equal(nnls(A, np.zeros((10, 3)), method=method), 0)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_negative_correlations_give_zero(method):
    rng = np.random.default_rng(8)
    A = rng.random((15, 5))
    B = -rng.random((15, 4))  # Aᵀb < 0: every variable is better off at 0
    assert np.all(A.T @ B < 0)
    np.testing.assert_array_equal(nnls(A, B, method=method), 0)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_fewer_rows_than_columns(method):
    A, B = problem(6, 10, 25, seed=9, signed=True)
    X = nnls(A, B, method=method)
    assert X.shape == (10, 25) and np.all(np.isfinite(X)) and np.all(X >= 0)
    if method in EXACT:
        assert_matches_scipy(A, B, X, method)
        assert np.all(kkt_violation(A, X, B) <= 1e-8)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_single_column_and_single_row(method):
    rng = np.random.default_rng(10)
    a = rng.random((12, 1))
    b = rng.standard_normal(12)
    x = nnls(a, b, method=method)
    np.testing.assert_allclose(x, [max(a[:, 0] @ b / (a[:, 0] @ a[:, 0]), 0)], rtol=1e-12)
    x = nnls(np.array([[2.0, -1.0]]), np.array([4.0]), method=method)  # m = 1
    assert objective(np.array([[2.0, -1.0]]), x[:, None], np.array([[4.0]]))[0] <= 1e-20


# --------------------------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_vector_and_matrix_right_hand_sides(method):
    A, B = problem(20, 5, 6, seed=11)
    X = nnls(A, B, method=method)
    for j in range(B.shape[1]):
        x = nnls(A, B[:, j], method=method)
        assert x.shape == (5,)
        np.testing.assert_allclose(x, X[:, j], rtol=1e-12, atol=1e-14)
    assert nnls(A, B[:, :1], method=method).shape == (5, 1)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_float32_stays_float32(method):
    A, B = problem(30, 6, 20, seed=12)
    X32 = nnls(A.astype(np.float32), B.astype(np.float32), method=method)
    assert X32.dtype == np.float32 and np.all(X32 >= 0)
    f32 = objective(A, X32, B)
    f64 = objective(A, nnls(A, B), B)
    assert np.all(f32 - f64 <= 1e-4 * f64)
    G = nnls_gram((A.T @ A).astype(np.float32), (A.T @ B).astype(np.float32), method=method)
    assert G.dtype == np.float32
    # mixed dtypes promote, integers become float64
    assert nnls(A.astype(np.float32), B, method=method).dtype == np.float64
    assert nnls(np.array([[1, 0], [0, 2]]), np.array([3, 4]), method=method).dtype == np.float64


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_gram_form_equals_nnls(method):
    A, B = problem(25, 7, 12, seed=13, signed=True)
    X = nnls(A, B, method=method)
    X_gram = nnls_gram(A.T @ A, A.T @ B, method=method)
    np.testing.assert_allclose(X_gram, X, rtol=1e-10, atol=1e-12)
    x = nnls_gram(A.T @ A, A.T @ B[:, 3], method=method)
    assert x.shape == (7,)
    np.testing.assert_allclose(x, X[:, 3], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_thread_count_does_not_change_the_result(method):
    A, B = problem(60, 10, 300, seed=14)
    AtA, AtB = A.T @ A, A.T @ B
    one = nnls_gram(AtA, AtB, method=method, n_threads=1)
    two = nnls_gram(AtA, AtB, method=method, n_threads=2)
    np.testing.assert_array_equal(one, two)
    one = nnls(A, B, method=method, n_threads=1)
    np.testing.assert_array_equal(one, nnls(A, B, method=method, n_threads=2))


# --------------------------------------------------------------------------- project


@pytest.mark.parametrize("method", NNLS_METHODS)
def test_project_equals_row_by_row_nnls(method):
    rng = np.random.default_rng(15)
    H = rng.random((5, 25))
    X_new = rng.random((12, 5)) @ H * (rng.random((12, 25)) < 0.7)
    W = project(X_new, H, method=method)
    assert W.shape == (12, 5) and W.dtype == np.float64
    for i in range(12):
        np.testing.assert_allclose(W[i], nnls(H.T, X_new[i], method=method), rtol=1e-10, atol=1e-12)
    W_sparse = project(sp.csr_matrix(X_new), H, method=method)
    np.testing.assert_allclose(W_sparse, W, rtol=1e-10, atol=1e-12)
    W32 = project(X_new.astype(np.float32), H.astype(np.float32), method=method)
    assert W32.dtype == np.float32


# --------------------------------------------------------------------------- kernels: warm start


@pytest.mark.parametrize("name", EXACT)
def test_warm_start_gives_the_same_answer(name):
    kernel = getattr(kernels, name)
    A, B = problem(40, 10, 50, seed=16)
    GtG, YG = A.T @ A, np.ascontiguousarray(B.T @ A)
    cold = np.zeros_like(YG)
    passive = np.zeros(YG.shape, dtype=bool)
    kernel(GtG, YG, cold, passive)
    assert_matches_scipy(A, B, cold.T, name)
    np.testing.assert_array_equal(passive, cold > 0)  # the final passive sets come back
    warm = np.zeros_like(YG)
    kernel(GtG, YG, warm, passive.copy())
    np.testing.assert_allclose(warm, cold, rtol=1e-12, atol=1e-14)
    guess = np.random.default_rng(0).random(YG.shape) < 0.5  # any start works
    other = np.zeros_like(YG)
    kernel(GtG, YG, other, guess)
    np.testing.assert_allclose(other, cold, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("duplicate", [False, True])
@pytest.mark.parametrize("start", ["cold", "full", "random", "optimal"])
def test_bpp_mostly_passive_solutions(duplicate, start):
    # Most variables positive: bpp solves for the multipliers of the few zeros through
    # Q⁻¹ when Q is well conditioned (here cond ≈ 200), and on the passive blocks when a
    # near-duplicate column makes cond(Q) ≈ 1e10 (above kernels.MAX_COND).
    rng = np.random.default_rng(30)
    A = rng.random((80, 20))
    if duplicate:
        A[:, 1] = A[:, 0] + 1e-4 * rng.random(80)
    X_true = rng.random((20, 60)) * (rng.random((20, 60)) < 0.85)
    B = A @ X_true + 0.3 * rng.standard_normal((80, 60))
    GtG, YG = A.T @ A, np.ascontiguousarray(B.T @ A)
    reference = nnls_reference(A, B).T
    assert 0.6 < np.mean(reference > 0) < 0.95
    passive = {"cold": np.zeros(YG.shape, bool), "full": np.ones(YG.shape, bool),
               "random": rng.random(YG.shape) < 0.8, "optimal": reference > 0}[start]
    F = np.zeros_like(YG)
    kernels.bpp(GtG, YG, F, passive)
    assert_matches_scipy(A, B, F.T, "bpp")
    assert np.all(kkt_violation(A, F.T, B) <= KKT_TOL["bpp"])
    np.testing.assert_array_equal(passive, F > 0)
    if not duplicate:  # unique and well determined
        np.testing.assert_allclose(F, reference, rtol=1e-9, atol=1e-12 * np.abs(reference).max())


def test_cd_kernel_continues_from_given_start():
    A, B = problem(40, 10, 50, seed=17)
    GtG, YG = A.T @ A, np.ascontiguousarray(B.T @ A)
    exact = np.zeros_like(YG)
    kernels.bpp(GtG, YG, exact, np.zeros(YG.shape, dtype=bool))
    F = exact.copy()
    assert kernels.cd(GtG, YG, F, 1e-6, 100) <= 2  # already optimal: stops at once
    np.testing.assert_allclose(F, exact, rtol=1e-10, atol=1e-12)
    F = np.zeros_like(YG)
    kernels.cd(GtG, YG, F, 0.0, 5)
    assert np.all(F >= 0)  # max_iter sweeps from zero, then the polish: feasible
    assert np.all(objective(A, F.T, B) >= objective(A, exact.T, B) * (1 - 1e-12))
    start = np.abs(np.random.default_rng(1).standard_normal(YG.shape))
    F = start.copy()
    assert kernels.cd(GtG, YG, F, 1e-6, 0) == 0
    np.testing.assert_allclose(F, start, rtol=1e-15)  # no sweeps, no polish: the start


# --------------------------------------------------------------------------- inputs and errors


def test_inputs_are_not_modified():
    A, B = problem(20, 5, 8, seed=18)
    A = np.asfortranarray(A)
    AtA, AtB = A.T @ A, A.T @ B
    H, X_new = np.abs(A.T), np.abs(B.T)
    arrays = [A, B, AtA, AtB, H, X_new]
    copies = [a.copy() for a in arrays]
    for method in NNLS_METHODS:
        nnls(A, B, method=method)
        nnls(A, B[:, 0], method=method)
        nnls_gram(AtA, AtB, method=method)
        project(X_new, H, method=method)
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)


def test_error_messages():
    A, B = problem(10, 3, 4, seed=19)
    with pytest.raises(ValueError, match=r"b has shape \(9, 4\) but A has shape \(10, 3\)"):
        nnls(A, B[:9])
    with pytest.raises(ValueError, match=r"b must be 1-D .* 3-D"):
        nnls(A, np.zeros((10, 2, 2)))
    with pytest.raises(ValueError, match=r"A must be a 2-D array"):
        nnls(A[:, 0], B)
    bad = A.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"A contains 1 NaN or infinite entries \(first at \(2, 1"):
        nnls(bad, B)
    with pytest.raises(ValueError, match=r"b contains 1 NaN or infinite"):
        nnls(A, np.where(np.arange(10) == 3, np.inf, 1.0))
    with pytest.raises(ValueError, match=r"method='lbfgs' is not supported; choose one of 'bpp'"):
        nnls(A, B, method="lbfgs")
    with pytest.raises(ValueError, match=r"tol must be a finite number >= 0"):
        nnls(A, B, method="cd", tol=-1e-3)
    with pytest.raises(TypeError, match=r"max_iter must be an integer"):
        nnls(A, B, method="cd", max_iter=10.5)
    with pytest.raises(ValueError, match=r"n_threads must be >= 1"):
        nnls(A, B, n_threads=0)
    with pytest.raises(ValueError, match=r"AtA must be square \(k, k\), got shape \(10, 3\)"):
        nnls_gram(A, B)
    with pytest.raises(ValueError, match=r"AtA is not symmetric"):
        nnls_gram(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2))
    with pytest.raises(ValueError, match=r"AtB has shape \(4,\) but AtA has shape \(3, 3\)"):
        nnls_gram(A.T @ A, np.ones(4))
    with pytest.raises(ValueError, match=r"X_new has shape \(4, 10\) and H has shape \(3, 9\)"):
        project(B.T, A.T[:, :9])
    with pytest.raises(ValueError, match=r"X_new contains 1 NaN"):
        project(sp.csr_matrix(np.array([[np.nan] + [0.0] * 9])), A.T)


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 12),
    k=st.integers(1, 6),
    r=st.integers(1, 4),
    scale=st.sampled_from([1e-3, 0.5, 7.0, 1e4]),
    method=st.sampled_from(NNLS_METHODS),
    seed=st.integers(0, 2**16),
)
def test_shapes_and_scale_invariance(m, k, r, scale, method, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k)) * (rng.random((m, k)) < 0.8)
    B = rng.standard_normal((m, r))
    X = nnls(A, B, method=method)
    assert X.shape == (k, r) and np.all(np.isfinite(X)) and np.all(X >= 0)
    Xc = nnls(A, scale * B, method=method)
    ref = objective(A, X, B)
    floor = 1e-12 * np.sum(B**2, axis=0)
    # same objective, scaled by scale² (solutions may differ where A is rank-deficient)
    tol = 1e-9 if method in EXACT else 1e-5
    scaled = objective(A, Xc, scale * B) / scale**2
    np.testing.assert_allclose(scaled, ref, rtol=tol, atol=floor.max())
    if method in EXACT and np.linalg.matrix_rank(A) == k:
        atol = 1e-10 * scale * np.abs(X).max(initial=1)
        np.testing.assert_allclose(Xc, scale * X, rtol=1e-8, atol=atol)


# --------------------------------------------------------------------------- kernels: Gram per row

ROWS = ("bpp_rows", "active_set_rows")
SHARED = {"bpp_rows": "bpp", "active_set_rows": "active_set"}


def per_row_problems(r, k, seed, kinds=range(7)):
    """Row i's problem ``min ½‖A_i x − b_i‖²`` with its own ``A_i`` (the kinds below in
    turn), as the kernels take it: ``Q[i] = A_iᵀA_i`` and ``YG[i] = A_iᵀb_i``."""
    rng = np.random.default_rng(seed)
    kinds = list(kinds)
    As, bs = [], []
    for i in range(r):
        kind = kinds[i % len(kinds)]
        m = {1: max(k // 2, 1), 5: 1}.get(kind, 3 * k)
        A = rng.standard_normal((m, k)) if kind == 1 else rng.random((m, k))
        if kind == 2 and k >= 3:  # rank-deficient: duplicate and proportional columns
            A[:, -2:] = A[:, :2] * [1.0, 2.0]
        elif kind == 3 and k >= 3:  # zero columns: fixed at 0
            A[:, [1, k - 2]] = 0.0
        elif kind == 4:  # column norms over 8 decades (per-row Jacobi scaling)
            A = A * np.logspace(-4, 4, k)
        x = rng.random(k) * (rng.random(k) < 0.4)
        x[rng.integers(k)] = 1.0  # b ≠ 0
        b = A @ x
        if kind != 6:  # kind 6: an exact fit, b in the cone of the columns
            b = b + 0.1 * rng.standard_normal(m)
        As.append(A)
        bs.append(b)
    Q = np.stack([A.T @ A for A in As])
    YG = np.stack([A.T @ b for A, b in zip(As, bs)])
    return As, bs, Q, YG


def solve_rows(name, Q, YG, passive=None, dtype=np.float64):
    """Run a per-row kernel in ``dtype``; returns ``F`` and the final passive sets."""
    F = np.zeros(YG.shape, dtype=dtype)
    passive = np.zeros(YG.shape, dtype=bool) if passive is None else passive.copy()
    getattr(kernels, name)(
        np.ascontiguousarray(Q, dtype=dtype), np.ascontiguousarray(YG, dtype=dtype), F, passive
    )
    return F, passive


def assert_rows_match_scipy(As, bs, F, obj_tol=1e-10, kkt_tol=1e-9):
    for i, (A, b) in enumerate(zip(As, bs)):
        x = F[i][:, None].astype(np.float64)
        ref = objective(A, nnls_reference(A, b)[:, None], b[:, None])[0]
        got = objective(A, x, b[:, None])[0]
        floor = 1e-14 * np.sum(b**2)
        assert got - ref <= obj_tol * ref + floor, (i, got, ref)
        if kkt_tol is not None:
            assert np.all(x >= 0)
            assert kkt_violation(A, x, b[:, None])[0] <= kkt_tol, i


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("k", [1, 3, 8, 15])
def test_rows_kernels_match_scipy_row_by_row(name, k):
    As, bs, Q, YG = per_row_problems(70, k, seed=40 + k)
    F, passive = solve_rows(name, Q, YG)
    assert F.shape == (70, k) and np.all(np.isfinite(F))
    assert_rows_match_scipy(As, bs, F)
    # the final passive sets come back: the support, plus variables held at 0 because
    # they are dependent on the others (rank-deficient rows)
    assert np.all(passive[F > 0])
    full_rank = np.isin(np.arange(70) % 7, [0, 4])
    np.testing.assert_array_equal(passive[full_rank], F[full_rank] > 0)
    zero_columns = np.einsum("rjj->rj", Q) == 0
    assert zero_columns.any() == (k >= 3) and np.all(F[zero_columns] == 0)


@pytest.mark.parametrize("name", ROWS)
def test_rows_kernels_many_active_constraints(name):
    # larger rows, sparse solutions: many exchanges (and the backup rule) per row
    rng = np.random.default_rng(41)
    k = 25
    As = [rng.random((rng.integers(10, 80), k)) for _ in range(40)]
    bs = [A @ (rng.random(k) * (rng.random(k) < 0.2)) for A in As]
    bs = [b + 0.2 * rng.standard_normal(len(b)) for b in bs]
    Q = np.stack([A.T @ A for A in As])
    YG = np.stack([A.T @ b for A, b in zip(As, bs)])
    F, _ = solve_rows(name, Q, YG)
    assert 0.3 < np.mean(F == 0) < 0.95  # the constraints matter
    assert_rows_match_scipy(As, bs, F)


@pytest.mark.parametrize("name", ROWS)
def test_rows_kernels_equal_shared_kernels_for_equal_grams(name):
    A, B = problem(40, 10, 100, seed=42)
    GtG, YG = A.T @ A, np.ascontiguousarray(B.T @ A)
    Q = np.ascontiguousarray(np.broadcast_to(GtG, (100, 10, 10)))
    shared, shared_passive = np.zeros_like(YG), np.zeros(YG.shape, dtype=bool)
    getattr(kernels, SHARED[name])(GtG, YG, shared, shared_passive)
    F, passive = solve_rows(name, Q, YG)
    np.testing.assert_allclose(F, shared, rtol=1e-10, atol=1e-12 * np.abs(shared).max())
    np.testing.assert_array_equal(passive, shared_passive)
    # rank-deficient and with a zero column: the same optimum (objective) as the shared kernel
    A = np.hstack([A[:, :6], np.zeros((40, 1)), A[:, :3]])
    GtG, YG = A.T @ A, np.ascontiguousarray(B.T @ A)
    getattr(kernels, SHARED[name])(GtG, YG, shared, np.zeros(YG.shape, dtype=bool))
    F, _ = solve_rows(name, np.ascontiguousarray(np.broadcast_to(GtG, (100, 10, 10))), YG)
    assert np.all(F[:, 6] == 0)
    np.testing.assert_allclose(objective(A, F.T, B), objective(A, shared.T, B), rtol=1e-10)


@pytest.mark.parametrize("name", ROWS)
def test_rows_kernels_float32(name):
    As, bs, Q, YG = per_row_problems(50, 6, seed=43, kinds=[0, 1, 3, 5])
    F32, passive = solve_rows(name, Q, YG, dtype=np.float32)
    assert F32.dtype == np.float32 and np.all(F32 >= 0) and np.all(np.isfinite(F32))
    F64, _ = solve_rows(name, Q, YG)
    for i, (A, b) in enumerate(zip(As, bs)):
        f32 = objective(A, F32[i][:, None], b[:, None])[0]
        f64 = objective(A, F64[i][:, None], b[:, None])[0]
        assert f32 - f64 <= 1e-4 * f64 + 1e-6 * np.sum(b**2), i
    assert np.all(passive[F32 > 0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ROWS)
def test_rows_kernels_warm_start_gives_the_same_answer(name, dtype):
    # full column rank (on the non-zero columns): the solution is unique. Rows i % 3 == 2
    # have column norms over 8 decades: their solutions are accurate to ~1e-10 only.
    As, bs, Q, YG = per_row_problems(60, 8, seed=44, kinds=[0, 3, 4])
    badly_scaled = np.arange(60) % 3 == 2
    cold, passive = solve_rows(name, Q, YG, dtype=dtype)
    warm, again = solve_rows(name, Q, YG, passive, dtype=dtype)
    np.testing.assert_array_equal(again, passive)
    guess = np.random.default_rng(1).random(YG.shape) < 0.5  # any start works
    other, _ = solve_rows(name, Q, YG, guess, dtype=dtype)
    atol = 1e-12 * np.abs(cold).max()
    if dtype == np.float64:
        for rows, rtol in ((~badly_scaled, 1e-12), (badly_scaled, 1e-8)):
            np.testing.assert_allclose(warm[rows], cold[rows], rtol=rtol, atol=atol)
            np.testing.assert_allclose(other[rows], cold[rows], rtol=rtol, atol=atol)
        assert_rows_match_scipy(As, bs, warm)
        assert_rows_match_scipy(As, bs, other)
    else:
        np.testing.assert_allclose(warm, cold, rtol=1e-6, atol=1e-6 * np.abs(cold).max())
        np.testing.assert_allclose(other, cold, rtol=1e-4, atol=1e-5 * np.abs(cold).max())


@pytest.mark.parametrize("name", ROWS)
def test_rows_kernels_thread_count_does_not_change_the_result(name):
    _, _, Q, YG = per_row_problems(300, 10, seed=45)  # 10 parallel tasks of 32 rows
    guess = np.random.default_rng(2).random(YG.shape) < 0.3
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, passive_one = solve_rows(name, Q, YG, guess)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two, passive_two = solve_rows(name, Q, YG, guess)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(passive_one, passive_two)


@pytest.mark.parametrize("name", ROWS)
def test_rows_kernels_degenerate_rows(name):
    rng = np.random.default_rng(46)
    k = 5
    A = rng.random((12, k))
    b = rng.standard_normal(12)
    Q = np.stack([A.T @ A, np.zeros((k, k)), A.T @ A, A.T @ A])
    # Aᵀb < 0; Q = 0 (then YG = 0 too); b = 0: x = 0 in all three
    YG = np.stack([-A.T @ rng.random(12), np.zeros(k), np.zeros(k), A.T @ b])
    F, passive = solve_rows(name, Q, YG, np.ones((4, k), dtype=bool))
    np.testing.assert_array_equal(F[:3], 0)
    assert not passive[:2].any()  # (with b = 0, BPP may keep x = 0 on a passive set)
    np.testing.assert_allclose(F[3], nnls_reference(A, b), rtol=1e-8, atol=1e-12)
    for empty in (np.zeros((0, k, k)), np.zeros((3, 0, 0))):  # no rows, no variables
        F, _ = solve_rows(name, empty, np.zeros(empty.shape[:2]))
        assert F.shape == empty.shape[:2]


def test_rows_kernels_check_shapes():
    Q, YG = np.zeros((4, 3, 3)), np.zeros((4, 3))
    for bad_Q, bad_F in [(np.zeros((3, 3, 3)), np.zeros((4, 3))), (Q, np.zeros((4, 2)))]:
        for name in ROWS:
            with pytest.raises(ValueError, match=r"Q must be \(r, k, k\)"):
                getattr(kernels, name)(bad_Q, YG, bad_F, np.zeros((4, 3), dtype=bool))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    k=st.integers(1, 7),
    r=st.integers(1, 5),
    scale=st.sampled_from([1e-3, 1.0, 1e4]),
    name=st.sampled_from(ROWS),
    seed=st.integers(0, 2**16),
)
def test_rows_kernels_any_problem(k, r, scale, name, seed):
    # each row: its own m (1 … 12) and sparsity, signed entries (often rank-deficient)
    rng = np.random.default_rng(seed)
    As = [rng.standard_normal((m, k)) * (rng.random((m, k)) < 0.7) for m in rng.integers(1, 13, r)]
    bs = [scale * rng.standard_normal(len(A)) for A in As]
    Q = np.stack([A.T @ A for A in As])
    YG = np.stack([A.T @ b for A, b in zip(As, bs)])
    F, _ = solve_rows(name, Q, YG)
    assert F.shape == (r, k) and np.all(np.isfinite(F)) and np.all(F >= 0)
    assert_rows_match_scipy(As, bs, F, kkt_tol=1e-8)


# --------------------------------------------------------------------------- active_set: grouping


def pattern_problem(m, k, r, n_patterns, seed):
    """A (m, k) and B (m, r) whose solutions have ``n_patterns`` supports, so that many
    rows share their final passive sets. Column j of B is built so that its solution is
    a perturbed pattern ``x`` with gradient ``g > 0`` off its support (strictly
    complementary: rounding cannot change the support): ``b = A (x − Q⁻¹ g)``."""
    rng = np.random.default_rng(seed)
    A = rng.random((m, k))
    support = rng.random((k, n_patterns)) < 0.5
    support[rng.integers(k, size=n_patterns), np.arange(n_patterns)] = True  # none empty
    which = rng.integers(n_patterns, size=r)
    X = support[:, which] * (0.5 + rng.random((k, r)))
    G = ~support[:, which] * (0.5 + rng.random((k, r)))
    return A, A @ (X - np.linalg.solve(A.T @ A, G))


def warm_starts(kind, A, B, seed=0):
    """Passive sets (r, k) of the given kind for the problem A, B."""
    k, r = A.shape[1], B.shape[1]
    rng = np.random.default_rng(seed)
    if kind == "all":  # e.g. ANLS's first half-step from an all-positive factor
        return np.ones((r, k), dtype=bool)
    if kind == "none":
        return np.zeros((r, k), dtype=bool)
    if kind == "few":  # five passive sets, each shared by ~r/5 rows
        return (rng.random((5, k)) < 0.6)[rng.integers(5, size=r)]
    if kind == "fast":  # the support of the FAST approximation, as nnls does it
        F = np.zeros((r, k))
        kernels.fast(A.T @ A, np.ascontiguousarray(B.T @ A), F)
        return F > 0
    return rng.random((r, k)) < 0.5  # "random": a different set for every row


def run_active_set(A, B, passive, dtype=np.float64):
    """``kernels.active_set`` on the problem A, B; returns F (r, k) and the final sets."""
    GtG = np.ascontiguousarray(A.T @ A, dtype=dtype)
    YG = np.ascontiguousarray(B.T @ A, dtype=dtype)
    F = np.zeros(YG.shape, dtype=dtype)
    passive = passive.copy()
    kernels.active_set(GtG, YG, F, passive)
    return F, passive


def is_grouped(passive):
    """Whether active_set groups rows by passive set in its first round."""
    return kernels._sets_shared(passive, np.arange(passive.shape[0]))


@pytest.mark.parametrize(
    "data, kind, grouped",
    [
        ("patterns", "all", True),
        ("patterns", "none", True),
        ("patterns", "fast", True),
        ("patterns", "few", True),
        ("random", "all", True),  # shared start, distinct sets after the first round
        ("random", "few", True),
        ("random", "fast", False),
        ("random", "random", False),
    ],
)
def test_active_set_matches_scipy_row_by_row(data, kind, grouped):
    if data == "patterns":
        A, B = pattern_problem(40, 12, 300, 6, seed=50)
    else:
        A, B = problem(60, 20, 300, seed=51, density=0.4)
    passive0 = warm_starts(kind, A, B)
    n_sets = len(np.unique(passive0, axis=0))
    assert is_grouped(passive0) == grouped
    assert n_sets <= 300 // 10 if grouped else n_sets == 300  # many rows per set, or none
    F, passive = run_active_set(A, B, passive0)
    assert np.all(F >= 0)
    assert_matches_scipy(A, B, F.T, "active_set")  # row by row: objective within 1e-10
    assert np.all(kkt_violation(A, F.T, B) <= KKT_TOL["active_set"])
    np.testing.assert_array_equal(passive, F > 0)  # full column rank: P is the support
    np.testing.assert_allclose(F.T, nnls_reference(A, B), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind", ["all", "few", "random"])
def test_active_set_thread_count_does_not_change_the_result(kind):
    A, B = pattern_problem(40, 12, 600, 6, seed=52)  # ~20 parallel tasks
    passive0 = warm_starts(kind, A, B, seed=3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, passive_one = run_active_set(A, B, passive0)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two, passive_two = run_active_set(A, B, passive0)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(passive_one, passive_two)


def test_active_set_grouped_warm_start_from_final_sets_returns_at_once():
    A, B = pattern_problem(40, 12, 300, 6, seed=53)
    cold, final = run_active_set(A, B, np.ones((300, 12), dtype=bool))
    assert is_grouped(final)  # the final sets are shared: the grouped path again
    warm, again = run_active_set(A, B, final)
    np.testing.assert_array_equal(again, final)
    np.testing.assert_allclose(warm, cold, rtol=1e-12, atol=1e-14 * np.abs(cold).max())
    # At once: one round (one factorisation per set) finds every row optimal.
    GtG, YG = A.T @ A, np.ascontiguousarray(B.T @ A)
    Q, tau, usable, rows, d, Y, X = kernels._prepare(GtG, YG, np.zeros_like(YG), False)
    passive = final.copy()
    hashes, done = kernels._as_state(300)
    kernels._as_start(passive, usable, hashes, rows)
    order, starts, _ = kernels._group_rows(passive, rows, hashes, True)
    assert starts.size - 1 < 300 // 4  # groups, not single rows
    kernels._as_groups(
        Q, Y, X, passive, hashes, order, starts, 0, starts.size - 1, usable, tau, done
    )
    assert done.all()
    np.testing.assert_array_equal(passive, final)
    np.testing.assert_allclose(X / d, warm, rtol=1e-12, atol=1e-14 * np.abs(cold).max())


@pytest.mark.parametrize("kind", ["all", "none", "few", "random"])
def test_active_set_rank_deficient(kind):
    # duplicate, proportional and dependent columns and a zero column: Q singular
    A, B = pattern_problem(40, 8, 200, 5, seed=54)
    rng = np.random.default_rng(55)
    A = np.hstack([A, A[:, :2], 3 * A[:, 4:5], A[:, :4] @ rng.random((4, 2)), np.zeros((40, 1))])
    assert np.linalg.matrix_rank(A) == 8 and A.shape[1] == 14
    passive0 = warm_starts(kind, A, B, seed=4)
    assert is_grouped(passive0) == (kind != "random")
    F, passive = run_active_set(A, B, passive0)
    assert np.all(np.isfinite(F)) and np.all(F >= 0)
    assert np.all(F[:, -1] == 0) and not passive[:, -1].any()  # the zero column
    assert np.all(passive[F > 0])
    assert_matches_scipy(A, B, F.T, "active_set")
    assert np.all(kkt_violation(A, F.T, B) <= 1e-8)
    F32, _ = run_active_set(A, B, passive0, dtype=np.float32)
    assert F32.dtype == np.float32 and np.all(F32 >= 0) and np.all(np.isfinite(F32))
    f32, f64 = objective(A, F32.T, B), objective(A, F.T, B)
    assert np.all(f32 - f64 <= 1e-4 * f64 + 1e-6 * np.sum(B**2, axis=0))
