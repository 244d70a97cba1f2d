"""The warm start on a sketch of a large dense X (``fastnmf._solvers.warm``)."""

import numpy as np
import pytest
import scipy.sparse as sp
from naive import projected_gradient_norm

import fastnmf
from fastnmf._data import LowRankData, load
from fastnmf._init import range_sketch
from fastnmf._solvers import REGISTRY
from fastnmf._solvers.base import Penalties
from fastnmf._solvers.warm import SketchWarmStart, sketch_of


def _noisy_low_rank(m, n, r, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((m, r)) @ rng.random((r, n)) + 0.1 * rng.random((m, n))
    return X.astype(dtype)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_low_rank_data_is_its_dense_matrix(rng, transposed, dtype):
    X = _noisy_low_rank(120, 90, 4, dtype=dtype)
    data = load(X)
    Q, XtQ = range_sketch(data, 10, rng)
    sketch = LowRankData(Q, XtQ, data.sqnorm)
    dense = (Q.astype(np.float64) @ XtQ.T.astype(np.float64))
    if transposed:
        sketch, dense = sketch.T, dense.T
    G = rng.random((dense.shape[1], 3)).astype(dtype)
    F = rng.random((dense.shape[0], 3)).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert sketch.shape == dense.shape and sketch.dtype == dtype
    np.testing.assert_allclose(sketch.matmul(G), dense @ G, rtol=tol)
    np.testing.assert_allclose(sketch.sqnorm, np.sum(dense**2), rtol=tol)
    np.testing.assert_allclose(sketch.residual_sqnorm(F, G), np.sum((dense - F @ G.T) ** 2), rtol=tol)
    # X̂ = QQᵀX is an orthogonal projection: ‖X‖² = ‖X̂‖² + ‖X − X̂‖²
    np.testing.assert_allclose(sketch.gap_sqnorm, np.sum((X - dense.T if transposed else X - dense) ** 2),
                               rtol=tol * 100, atol=tol * sketch.sqnorm)


def test_sketch_only_where_it_pays(rng):
    X = _noisy_low_rank(400, 300, 5)
    assert sketch_of(load(X), 5) is not None
    assert sketch_of(load(X[:40, :30]), 5) is None  # products of X are cheap already
    assert sketch_of(load(sp.csr_array(X)), 5) is None
    assert sketch_of(load(X, mask=X > 0.2), 5) is None


def test_svd_init_and_warm_start_share_one_sketch(rng):
    data = load(_noisy_low_rank(400, 300, 5))
    first = range_sketch(data, 15, rng)
    assert range_sketch(data, 15, rng) is first
    wider = range_sketch(data, 16, rng)
    assert wider is not first and wider[0].shape[1] == 16
    assert range_sketch(data, 12, rng) is wider  # a wider sketch serves narrower requests


def test_a_wider_shared_sketch_is_used_only_where_it_pays(rng):
    data = load(_noisy_low_rank(400, 300, 5))
    range_sketch(data, 25, rng)  # (400 + 300)·25 > 1/8 of 400·300: too wide to pay
    assert sketch_of(data, 5) is None
    assert sketch_of(load(_noisy_low_rank(400, 300, 5)), 5) is not None  # width 15 pays


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "anls_as"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("penalties", [{}, dict(l1_W=0.5, l2_H=2.0)])
def test_warm_started_runs_converge_monotonically(solver, dtype, penalties):
    """The warm start is the first iteration; the run then converges on X itself (its
    KKT residual and objective as from a plain start), and the objective never rises."""
    X = _noisy_low_rank(400, 300, 5, dtype=dtype)
    warm = fastnmf.nmf(X, 5, solver=solver, random_state=0, tol=1e-7, max_iter=2000, **penalties)
    plain = fastnmf.nmf(X, 5, solver=solver, init=_nndsvda(X, 5), tol=1e-7, max_iter=2000, **penalties)
    assert warm.W.dtype == dtype
    objectives = warm.history["objective"]
    assert np.all(np.diff(objectives) <= 1e-6 * objectives[0])
    assert warm.kkt_residual < (1e-3 if dtype == np.float64 else 1e-2)  # stationary on X
    assert warm.objective <= plain.objective * 1.01  # possibly another local minimum


@pytest.mark.parametrize("solver", ["hals", "anls_bpp"])
def test_kkt_residual_of_a_warm_started_run(solver):
    """The residual is relative to the gradient at the initial factors, not at the
    factors the warm start reached."""
    X = _noisy_low_rank(400, 300, 5)
    res = fastnmf.nmf(X, 5, solver=solver, random_state=0, max_iter=4, tol=0)
    W0, H0 = _nndsvda(X, 5)
    expected = projected_gradient_norm(X, res.W, res.H) / projected_gradient_norm(X, W0, H0)
    assert res.kkt_residual == pytest.approx(expected, rel=1e-8)


def _nndsvda(X, rank):
    """The NNDSVDa factors nmf starts from (max_iter=0 returns them)."""
    start = fastnmf.nmf(X, rank, random_state=0, max_iter=0)
    return start.W, start.H


def test_warm_start_takes_a_good_share_of_the_way(rng):
    """On X of low rank plus noise, the warm start does most of the work of the
    iterations of a plain start to the same objective."""
    X = _noisy_low_rank(600, 400, 8)
    warm = fastnmf.nmf(X, 8, random_state=0, max_iter=1, tol=0)
    plain = fastnmf.nmf(X, 8, init=_nndsvda(X, 8), max_iter=3, tol=0)
    assert warm.history["objective"][0] == plain.history["objective"][0]
    # a plain start needs more than three iterations on X to get there
    assert warm.objective < plain.objective


def test_a_misleading_sketch_is_discarded(rng):
    """A sketch of the wrong matrix: the warm start would raise the objective on X, so
    the first iteration is an ordinary one."""
    X = _noisy_low_rank(400, 300, 5)
    data = load(X)
    start = fastnmf.nmf(X, 5, random_state=0, max_iter=0)
    wrong = load(rng.random((400, 300)) ** 8)
    Q, XtQ = range_sketch(wrong, 15, rng)

    def make_solver(data, W, Ht):
        return REGISTRY["hals"][0](data, W, Ht, Penalties(), 2.0)

    W, Ht = start.W.copy(), np.ascontiguousarray(start.H.T)
    solver = SketchWarmStart(make_solver, data, LowRankData(Q, XtQ, data.sqnorm), W.copy(), Ht.copy())
    plain = make_solver(data, W.copy(), Ht.copy())
    initial = solver.evaluate()[0]
    solver.advance()
    plain.advance()
    assert solver.evaluate()[0] == pytest.approx(plain.evaluate()[0], rel=1e-12)
    assert solver.evaluate()[0] < initial
