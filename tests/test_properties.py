"""Hypothesis properties of nmf: shapes, zeros, dtypes, scale invariance."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastnmf import nmf

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))
solver_losses = st.sampled_from([("hals", "frobenius"), ("mu", "frobenius"), ("mu", "kl")])


def data(shape, dtype=np.float64):
    # non-negative values with many exact zeros and a wide range of magnitudes
    values = st.one_of(st.just(0.0), st.floats(1e-3, 1e3))
    return arrays(dtype, shape, elements=values)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, rank=st.integers(1, 4), sl=solver_losses, dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16), data_=st.data())
def test_any_valid_input_gives_finite_nonnegative_factors(shape, rank, sl, dtype, seed, data_):
    X = data_.draw(data(shape, dtype))
    rank = min(rank, *shape)
    solver, loss = sl
    res = nmf(X, rank, solver=solver, loss=loss, max_iter=15, random_state=seed)
    assert res.W.shape == (shape[0], rank) and res.H.shape == (rank, shape[1])
    assert res.W.dtype == dtype and res.H.dtype == dtype
    for value in (res.W, res.H, res.objective, res.relative_error, res.kkt_residual):
        assert np.all(np.isfinite(value))
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    assert res.relative_error <= 1.0 + 1e-6 or solver == "mu"
    # monotone up to round-off: relative to f, and absolute at the round-off floor of the
    # loss's sum, whose terms scale like x² (Frobenius) or like x (KL: x log(x/y) − x + y;
    # e.g. X with one entry 1/32 at rank 1 ends at f ≈ 5e-17 and moves by 3e-18)
    f = res.history["objective"]
    X64 = X.astype(np.float64)
    scale = np.sum(X64**2) if loss == "frobenius" else np.sum(X64)
    floor = 10 * np.finfo(dtype).eps * scale
    assert np.all(np.diff(f) <= 1e-6 * np.abs(f[:-1]) + floor)


def test_kl_objective_at_the_round_off_floor():
    """Hypothesis found it: an exact rank-1 fit whose KL divergence falls to ~5e-17, where
    round-off moves it by a few 1e-18, which is below eps·ΣX (not below eps·‖X‖²)."""
    X = np.zeros((2, 7))
    X[0, 0] = 1 / 32
    f = nmf(X, 1, solver="mu", loss="kl", max_iter=15, random_state=0).history["objective"]
    assert f[-1] < 1e-15 * f[0]
    assert np.all(np.diff(f) <= 10 * np.finfo(np.float64).eps * X.sum())


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(3, 10), st.integers(3, 10)), scale=st.floats(1e-4, 1e4),
       init=st.sampled_from(["nndsvd", "nndsvda", "nndsvdar", "random"]), seed=st.integers(0, 100))
def test_scale_invariance(shape, scale, init, seed):
    """nmf(c·X): same relative error, factors scaled by √c (API.md §9).

    The rank stays below min(m, n): an exact fit would drive the objective to round-off,
    where comparisons between iterates (extrapolation restarts) are decided by noise.
    """
    X = np.random.default_rng(seed).random(shape)
    rank = 2
    a = nmf(X, rank, init=init, random_state=seed, max_iter=10, tol=0)
    b = nmf(scale * X, rank, init=init, random_state=seed, max_iter=10, tol=0)
    np.testing.assert_allclose(b.relative_error, a.relative_error, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(b.W @ b.H, scale * (a.W @ a.H), rtol=1e-6, atol=1e-9 * scale)
    # The factors themselves, before the objective flattens out: on the plateau the
    # extrapolation's accept/restart decisions compare objectives equal up to round-off
    # and may go either way, moving along the W·D, D⁻¹·H valley.
    a = nmf(X, rank, init=init, random_state=seed, max_iter=2, tol=0)
    b = nmf(scale * X, rank, init=init, random_state=seed, max_iter=2, tol=0)
    np.testing.assert_allclose(b.W, np.sqrt(scale) * a.W, rtol=1e-5, atol=1e-9 * np.sqrt(scale) * a.W.max())
    np.testing.assert_allclose(b.H, np.sqrt(scale) * a.H, rtol=1e-5, atol=1e-9 * np.sqrt(scale) * a.H.max())
