"""Kernels and the data layer against the plain references of tests/naive.py."""

import numba
import numpy as np
import pytest
from conftest import TOL
from naive import beta_mu_step, frobenius_mu_rows, hals_sweep, hals_sweeps_rows

from fastnmf._data import DenseData
from fastnmf._kernels.hals import hals_update
from fastnmf._kernels.mu import mu_repeats
from fastnmf._solvers.base import FrobeniusAlternating, Penalties
from fastnmf._solvers.mu import exponent
from fastnmf._validation import check_values


def dense_data(X):
    return DenseData(X, *check_values("X", X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hals_sweep_matches_column_form(rng, dtype):
    m, n, k = 30, 20, 6
    X = rng.random((m, n)).astype(dtype)
    F = rng.random((m, k)).astype(dtype)
    G = rng.random((n, k)).astype(dtype)
    G[:, 2] = 0  # a dead component: F[:, 2] must become 0
    YG, GtG = X @ G, G.T @ G
    expected = hals_sweep(F, YG.astype(np.float64), GtG.astype(np.float64))
    got = F.copy()
    hals_update(got, YG, GtG[None], 1, 0.0)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=TOL[np.dtype(dtype)]["kernel"] * 10, atol=1e-6)
    assert np.all(got[:, 2] == 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("sweeps, delta", [(1, 0.0), (6, 0.0), (40, 1e-2)])
def test_hals_sweeps_match_row_by_row(rng, dtype, per_row, sweeps, delta):
    """Repeated sweeps with the row-wise stopping rule against NumPy, over several row
    blocks (the last one partial), with a dead component, a shared or per-row Gram."""
    m, n, k = 150, 40, 6
    X = rng.random((m, n))
    F = rng.random((m, k))
    G = rng.random((n, k))
    G[:, 4] = 0  # a dead component: F[:, 4] must become 0
    if per_row:
        mask = rng.random((m, n)) > 0.3
        Q = np.einsum("ij,jk,jl->ikl", mask.astype(float), G, G)
        YG = (X * mask) @ G
    else:
        Q, YG = (G.T @ G)[None], X @ G
    YG[5] = -1  # a row driven to 0
    expected, made_each = hals_sweeps_rows(F, YG, Q, sweeps, delta)
    got = F.astype(dtype)
    made = hals_update(got, YG.astype(dtype), Q.astype(dtype), sweeps, delta)
    assert got.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    assert np.all(got[:, 4] == 0) and np.all(got[5] == 0)
    assert made == made_each.max()
    if delta:
        assert made_each.min() < sweeps  # the rule stopped some rows early


def test_hals_repeated_sweeps_decrease_objective(rng):
    X = rng.random((40, 30))
    F = rng.random((40, 5))
    G = rng.random((30, 5))
    YG, GtG = X @ G, G.T @ G

    def f(F):
        return 0.5 * np.sum((X - F @ G.T) ** 2)

    one = F.copy()
    hals_update(one, YG, GtG[None], 1, 0.0)
    many = F.copy()
    hals_update(many, YG, GtG[None], 5000, 0.0)
    assert f(many) <= f(one) <= f(F)
    # enough sweeps solve each row's NNLS: KKT of min ½‖x G^T − y‖², x ≥ 0
    grad = many @ GtG - YG
    assert np.all(grad >= -1e-8 * np.abs(YG).max())
    assert np.all(np.abs(grad[many > 1e-12]) <= 1e-6 * np.abs(YG).max())


def test_hals_identical_for_any_thread_count(rng):
    F0 = rng.random((501, 7))
    G = rng.random((300, 7))
    YG, GtG = rng.random((501, 300)) @ G, G.T @ G
    results = []
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        F = F0.copy()
        hals_update(F, YG, GtG[None], 10, 1e-6)
        results.append(F)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("repeats, delta", [(1, 0.0), (7, 0.0), (50, 1e-2)])
def test_mu_repeats_match_row_by_row_updates(rng, dtype, per_row, repeats, delta):
    """Repeated Lee–Seung updates with the row-wise stopping rule, against NumPy, with
    penalties, a shared or per-row Gram, and a row whose products are zero."""
    m, n, k = 150, 40, 5
    X = rng.random((m, n))
    F = rng.random((m, k)) + 0.1
    G = rng.random((n, k))
    if per_row:  # masked data: row i's Gram over the columns it observes
        mask = rng.random((m, n)) > 0.3
        Q = np.einsum("ij,jk,jl->ikl", mask.astype(float), G, G)
        YG = (X * mask) @ G
    else:
        Q, YG = (G.T @ G)[None], X @ G
    YG[3] = 0  # every entry of row 3 goes to 0, then up to the floor
    l1, l2 = 0.05, 0.1
    expected = frobenius_mu_rows(F, YG, Q, l1, l2, repeats, delta)
    got = F.astype(dtype)
    floor_ratio = 1e-12
    done = mu_repeats(got, YG.astype(dtype), Q.astype(dtype), l1, l2, repeats, delta, floor_ratio)
    assert got.dtype == dtype
    floor = floor_ratio * expected.max()
    rtol = 1e-12 if dtype == np.float64 else 1e-4 * repeats
    np.testing.assert_allclose(got, np.maximum(expected, floor), rtol=rtol, atol=floor)
    assert got[3].max() == pytest.approx(floor, rel=1e-5)
    assert 1 <= done <= repeats and (delta > 0 or done == repeats)


def test_mu_repeats_decrease_each_row_objective(rng):
    X, F, G = rng.random((60, 30)), rng.random((60, 4)), rng.random((30, 4))
    YG, Q = X @ G, (G.T @ G)[None]

    def per_row(F):
        return np.sum((X - F @ G.T) ** 2, axis=1)

    previous = per_row(F)
    for _ in range(5):
        mu_repeats(F, YG, Q, 0.0, 0.0, 3, 0.0, 0.0)
        now = per_row(F)
        assert np.all(now <= previous * (1 + 1e-12))
        previous = now


def oriented(X, W, H, transposed):
    """``(data, F, G, Y)`` of the half-problem ``Y ≈ F Gᵀ``: for W (Y = X) or, when
    ``transposed``, for Hᵀ (Y = Xᵀ, through the transposed view of the data)."""
    data = dense_data(X)
    if transposed:
        return data.T, H.T.copy(), W, X.T
    return data, W, H.T.copy(), X


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("transposed", [False, True])
def test_beta_products_match_dense_formula(rng, beta, order, transposed, monkeypatch):
    monkeypatch.setattr("fastnmf._data.BLOCK_ELEMENTS", 64)  # many blocks, ragged last
    X = np.asarray(rng.random((23, 17)) + 0.1, order=order)
    W, H = rng.random((23, 4)) + 0.1, rng.random((4, 17)) + 0.1
    data, F, G, Y = oriented(X, W, H, transposed)
    num, den, div, sq = data.beta_products(F, G, beta)
    WH = F @ G.T
    np.testing.assert_allclose(num, (Y * WH ** (beta - 2)) @ G, rtol=1e-12)
    np.testing.assert_allclose(np.broadcast_to(den, F.shape), WH ** (beta - 1) @ G, rtol=1e-12)
    np.testing.assert_allclose(sq, np.sum((Y - WH) ** 2), rtol=1e-12)
    from naive import objective

    np.testing.assert_allclose(div, objective(Y, F, G.T, beta), rtol=1e-10)
    # and the step those products give is Févotte–Idier's
    step = F * (num / den) ** exponent(beta)
    np.testing.assert_allclose(step, beta_mu_step(Y, F, G.T, beta), rtol=1e-10)


def test_vectorisable_log_within_one_ulp_of_numpy(rng):
    """The branch-free log of the KL pass against np.log, over the whole normal range."""
    from numba import njit

    from fastnmf._kernels.blocks import log

    @njit
    def logs(x, out):  # a loop, as in the kernels (vectorised)
        for i in range(x.size):
            out[i] = log(x[i])

    tiny, big = np.finfo(np.float64).tiny, np.finfo(np.float64).max
    x = np.concatenate([
        np.exp(rng.uniform(-708, 709, 100_000)),
        1 + rng.normal(0, 1e-6, 10_000),  # near 1, where log is near 0
        rng.uniform(0.5, 2.0, 10_000),
        [tiny, 1.0, 2.0, 0.5, np.sqrt(2), np.sqrt(0.5), np.nextafter(1, 0), np.nextafter(1, 2), big],
    ])
    got = np.empty_like(x)
    logs(x, got)
    want = np.log(x)
    assert np.all(np.abs(got - want) <= np.spacing(np.abs(want))), "more than 1 ulp from np.log"
    assert got[x == 1.0][0] == 0.0
    special = np.array([np.inf, np.nan])
    logs(special, got[:2])
    assert got[0] == np.inf and np.isnan(got[1])


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("transposed", [False, True])
def test_kl_products_with_zeros_match_numpy(rng, order, transposed, monkeypatch):
    """KL weights and divergence where X has zeros (0 log 0 = 0), against NumPy directly."""
    monkeypatch.setattr("fastnmf._data.BLOCK_ELEMENTS", 100)
    X = rng.random((61, 37)) * 50
    X[rng.random(X.shape) < 0.3] = 0
    X = np.asarray(X, order=order)
    W, H = rng.random((61, 5)) + 0.01, rng.random((5, 37)) + 0.01
    data, F, G, Y = oriented(X, W, H, transposed)
    num, den, div, sq = data.beta_products(F, G, 1.0)
    WH = F @ G.T
    pos = Y > 0
    want = np.sum(WH) - np.sum(Y) + np.sum(Y[pos] * np.log(Y[pos] / WH[pos]))
    assert div == pytest.approx(want, rel=1e-13)
    assert sq == pytest.approx(np.sum((Y - WH) ** 2), rel=1e-13)
    np.testing.assert_allclose(num, (Y / WH) @ G, rtol=1e-13)
    np.testing.assert_allclose(den, G.sum(axis=0, keepdims=True), rtol=1e-15)
    _, _, again, _ = data.beta_products(F, G, 1.0)  # the scratch is reused
    assert again == div


@pytest.mark.parametrize("beta", [1.0, 0.5])
@pytest.mark.parametrize("order", ["C", "F"])
def test_beta_products_identical_for_any_thread_count(rng, beta, order, monkeypatch):
    """Blocks run on several threads; the sums over blocks must not depend on how many."""
    monkeypatch.setattr("fastnmf._data.BLOCK_ELEMENTS", 40)  # more blocks than accumulators
    X = np.asarray(rng.random((53, 29)) + 0.1, order=order)
    W, Ht = rng.random((53, 4)) + 0.1, rng.random((29, 4)) + 0.1
    results = []
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        data = dense_data(X)
        results.append((data.beta_products(W, Ht, beta), data.T.beta_products(Ht, W, beta)))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for one, two in zip(*results):
        for a, b in zip(one, two):
            assert np.array_equal(a, b)


def test_block_tasks_keep_order_and_raise():
    from fastnmf._data import _run_tasks

    assert _run_tasks(7, lambda i, slot: i * i) == [i * i for i in range(7)]

    def fail(i, slot):
        if i == 3:
            raise ZeroDivisionError("block 3")
        return i

    with pytest.raises(ZeroDivisionError, match="block 3"):
        _run_tasks(6, fail)


def _kl_pass_in_child(X, W, Ht, expected):
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    assert dense_data(X).beta_products(W, Ht, 1.0)[2] == expected


def test_block_threads_work_after_fork(rng, monkeypatch):
    """The helper threads do not survive a fork: a forked child must start its own."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork")
    monkeypatch.setattr("fastnmf._data.BLOCK_ELEMENTS", 64)
    X, W, Ht = rng.random((40, 30)) + 0.1, rng.random((40, 3)), rng.random((30, 3))
    expected = dense_data(X).beta_products(W, Ht, 1.0)[2]  # the parent's pool exists now
    child = multiprocessing.get_context("fork").Process(target=_kl_pass_in_child, args=(X, W, Ht, expected))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("a forked child hung on the block threads")
    assert child.exitcode == 0


def test_residual_exact_and_objective_from_products(rng, monkeypatch):
    monkeypatch.setattr("fastnmf._data.BLOCK_ELEMENTS", 50)
    X = rng.random((31, 19))
    W, Ht = rng.random((31, 3)), rng.random((19, 3))
    data = dense_data(X)
    exact = np.sum((X - W @ Ht.T) ** 2)
    assert data.residual_sqnorm(W, Ht) == pytest.approx(exact, rel=1e-12)
    assert data.T.residual_sqnorm(Ht, W) == pytest.approx(exact, rel=1e-12)
    pen = Penalties(l1_W=0.3, l1_H=0.1, l2_W=0.2, l2_H=0.5)
    solver = FrobeniusAlternating(data, W, Ht, pen)
    objective, squared = solver.evaluate()
    assert squared == pytest.approx(exact, rel=1e-10)
    from naive import objective as naive_objective

    expected = naive_objective(X, W, Ht.T, 2.0, 0.3, 0.1, 0.2, 0.5)
    assert objective == pytest.approx(expected, rel=1e-10)


def test_objective_near_cancellation_floor_is_exact():
    """At relative error 1e-9 the product formula has no correct digits left."""
    r = np.random.default_rng(3)
    W, Ht = r.random((200, 4)), r.random((150, 4))
    X = W @ Ht.T
    E = r.standard_normal(X.shape)
    X = X + 1e-9 * np.linalg.norm(X) * E / np.linalg.norm(E)
    solver = FrobeniusAlternating(dense_data(X), W, Ht, Penalties())
    _, squared = solver.evaluate()
    rel = np.sqrt(squared / np.sum(X**2))
    assert rel == pytest.approx(1e-9, rel=1e-3)


@pytest.mark.parametrize("method", ["bpp", "active_set"])
def test_anls_half_step_is_exact_nnls(rng, method):
    from scipy.optimize import nnls as scipy_nnls

    from fastnmf._solvers.anls import ANLS

    X = rng.random((25, 18))
    W, Ht = rng.random((25, 4)), rng.random((18, 4))
    solver = ANLS(dense_data(X), W.copy(), Ht.copy(), Penalties(), method)
    F = W.copy()
    solver.half_step(F, X @ Ht, (Ht.T @ Ht)[None], 0.0, 0.0, "W", slice(None))
    for i in range(X.shape[0]):
        expected = scipy_nnls(Ht, X[i])[0]
        np.testing.assert_allclose(F[i], expected, rtol=1e-8, atol=1e-10)


def test_gdcls_steps_follow_their_formulas(rng):
    from fastnmf._solvers.anls import GDCLS

    X = rng.random((12, 9))
    W, Ht = rng.random((12, 3)), rng.random((9, 3))
    lam = 0.01
    solver = GDCLS(dense_data(X), W.copy(), Ht.copy(), Penalties(l2_H=lam))
    F = Ht.copy()
    solver.half_step(F, X.T @ W, (W.T @ W)[None], 0.0, lam, "H", slice(None))
    expected = np.maximum(0, np.linalg.solve(W.T @ W + lam * np.eye(3), W.T @ X)).T
    np.testing.assert_allclose(F, expected, rtol=1e-10)
    F = W.copy()
    solver.half_step(F, X @ Ht, (Ht.T @ Ht)[None], 0.0, 0.0, "W", slice(None))
    np.testing.assert_allclose(F, W * (X @ Ht) / (W @ Ht.T @ Ht), rtol=1e-12)
