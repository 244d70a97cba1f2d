"""Kernels and the data layer against the plain references of tests/naive.py."""

import numba
import numpy as np
import pytest
from conftest import TOL
from naive import beta_mu_step, hals_sweep

from fastnmf._data import DenseData
from fastnmf._kernels.hals import hals_update
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


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("transposed", [False, True])
def test_beta_products_match_dense_formula(rng, beta, order, transposed, monkeypatch):
    monkeypatch.setattr("fastnmf._data.BLOCK_ELEMENTS", 64)  # many blocks, ragged last
    X = np.asarray(rng.random((23, 17)) + 0.1, order=order)
    W, H = rng.random((23, 4)) + 0.1, rng.random((4, 17)) + 0.1
    data = dense_data(X)
    if transposed:
        data, F, G, Y = data.T, H.T.copy(), W, X.T
    else:
        F, G, Y = W, H.T.copy(), X
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
