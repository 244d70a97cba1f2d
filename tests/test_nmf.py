"""fastnmf.nmf end to end: optimality, recovery, stopping rules, dtypes, layouts, results."""

import threading

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import TOL, low_rank_matrix
from naive import objective, projected_gradient_norm, rank5_example

import fastnmf
from fastnmf import nmf
from fastnmf._data import load

# (solver, loss) pairs whose objective must never increase
MONOTONE = [
    ("hals", "frobenius"),
    ("anls_bpp", "frobenius"),
    ("anls_as", "frobenius"),
    ("mu", "frobenius"),
    ("mu", "kl"),
    ("mu", "itakura-saito"),
    ("mu", 0.5),
    ("mu", 3.0),
]
SOLVER_LOSSES = MONOTONE + [("als", "frobenius"), ("gdcls", "frobenius")]


def positive_data(seed=0, m=40, n=30):
    return np.random.default_rng(seed).random((m, n)) + 0.05


def test_public_names():
    assert fastnmf.SOLVERS == ("hals", "anls_bpp", "anls_as", "mu", "als", "gdcls")
    assert fastnmf.LOSSES == ("frobenius", "kl", "itakura-saito")


@pytest.mark.parametrize("solver,loss", SOLVER_LOSSES)
def test_objective_is_monotone_and_matches_factors(solver, loss):
    X = positive_data()
    res = nmf(X, 4, solver=solver, loss=loss, tol=0, max_iter=60, l1_W=0.01, l2_H=0.02)
    f = res.history["objective"]
    if (solver, loss) in MONOTONE:
        assert np.all(np.diff(f) <= 1e-12 * f[:-1])
    beta = {"frobenius": 2.0, "kl": 1.0, "itakura-saito": 0.0}.get(loss, loss)
    expected = objective(X, res.W, res.H, beta, l1_W=0.01, l2_H=0.02)
    assert res.objective == pytest.approx(expected, rel=1e-9)
    rel = np.linalg.norm(X - res.W @ res.H) / np.linalg.norm(X)
    assert res.relative_error == pytest.approx(rel, rel=1e-9)
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    assert res.solver == solver and res.loss == loss and res.rank == 4


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "anls_as", "mu"])
def test_kkt_at_convergence(solver):
    X, _, _ = low_rank_matrix(60, 40, 5, seed=1, noise=0.1)
    res = nmf(X, 5, solver=solver, tol=0, max_iter=3000 if solver == "mu" else 500)
    direct = projected_gradient_norm(X, res.W, res.H)
    assert res.kkt_residual < (1e-2 if solver == "mu" else 1e-5)
    # the reported residual is the direct projected gradient relative to the start's
    W0, H0 = nmf(X, 5, solver=solver, max_iter=0).W, nmf(X, 5, solver=solver, max_iter=0).H
    assert res.kkt_residual == pytest.approx(direct / projected_gradient_norm(X, W0, H0), rel=1e-6)


def test_kkt_residual_reuses_the_run_s_products(monkeypatch):
    """The KKT residual at the end needs X·Hᵀ and Xᵀ·W at the final and the initial
    factors; all but the final X·Hᵀ are products the run formed anyway."""
    from fastnmf._data import DenseData

    calls = []
    product = DenseData.matmul
    monkeypatch.setattr(DenseData, "matmul", lambda self, G: calls.append(G.shape) or product(self, G))
    X, _, _ = low_rank_matrix(60, 40, 5, seed=1, noise=0.1)
    W0, H0 = nmf(X, 5, max_iter=0).W, nmf(X, 5, max_iter=0).H
    calls.clear()
    res = nmf(X, 5, solver="als", init=(W0, H0), tol=0, max_iter=3, l1_W=0.1, l2_H=0.2)
    assert len(calls) == 1 + 2 * 3 + 1  # evaluation at iteration 0, 3 iterations, final X·Hᵀ
    direct = projected_gradient_norm(X, res.W, res.H, l1_W=0.1, l2_H=0.2)
    start = projected_gradient_norm(X, W0, H0, l1_W=0.1, l2_H=0.2)
    assert res.kkt_residual == pytest.approx(direct / start, rel=1e-9)


def test_exact_recovery_of_planted_factors():
    X, W, H = low_rank_matrix(80, 60, 4, seed=2)
    res = nmf(X, 4, target_error=1e-7, tol=0, max_iter=5000)
    assert res.relative_error <= 1e-7 and res.stop_reason == "target_error"
    # each planted component is found up to scale and order
    Hn = res.H / np.linalg.norm(res.H, axis=1, keepdims=True)
    Ht = H / np.linalg.norm(H, axis=1, keepdims=True)
    assert np.all((Ht @ Hn.T).max(axis=1) > 0.999)


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "anls_as"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank5_integer_example_reaches_1e_6(seed, solver):
    X = rank5_example(seed)
    res = nmf(X, 5, solver=solver, target_error=1e-7, tol=0, max_iter=20000)
    assert res.relative_error < 1e-6
    assert np.linalg.norm(X - res.W @ res.H) / np.linalg.norm(X) < 1e-6


def test_mu_kl_recovers_poisson_structure():
    X, W, H = low_rank_matrix(50, 40, 3, seed=4)
    res = nmf(X, 3, solver="mu", loss="kl", tol=0, max_iter=3000)
    assert res.relative_error < 1e-3


def test_mu_zero_entries_are_not_locked():
    """A zero in the init where the optimum is positive must grow."""
    X, W, H = low_rank_matrix(30, 20, 2, seed=5)
    W0, H0 = W + 0.1, H + 0.1
    W0[0, 0] = 0.0  # the optimum has W[0, 0] > 0 (X[0] needs component 0)
    assert W[0, 0] > 0
    res = nmf(X, 2, solver="mu", init=(W0, H0), tol=0, max_iter=3000)
    assert res.W[0, 0] > 0.01 * W[0, 0]
    assert res.relative_error < 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver,loss", [("hals", "frobenius"), ("mu", "kl")])
def test_dtype_is_kept(dtype, solver, loss):
    X = positive_data().astype(dtype)
    res = nmf(X, 3, solver=solver, loss=loss, max_iter=30)
    assert res.W.dtype == dtype and res.H.dtype == dtype
    assert np.isfinite(res.objective)


def test_integer_and_bool_become_float64():
    X = np.random.default_rng(0).integers(0, 5, (20, 10))
    assert nmf(X, 2, max_iter=5).W.dtype == np.float64
    assert nmf(X > 2, 2, max_iter=5).H.dtype == np.float64


def test_float32_agrees_with_float64():
    X, _, _ = low_rank_matrix(50, 40, 3, seed=6, noise=0.05)
    r64 = nmf(X, 3, max_iter=50, tol=0)
    r32 = nmf(X.astype(np.float32), 3, max_iter=50, tol=0)
    assert r32.relative_error == pytest.approx(r64.relative_error, rel=TOL[np.dtype(np.float32)]["run"] * 10)


@pytest.mark.parametrize("solver,loss", [("hals", "frobenius"), ("mu", "kl")])
def test_memory_layouts_give_the_same_result(tmp_path, solver, loss):
    X = positive_data(3, 37, 29)
    ref = nmf(X, 3, solver=solver, loss=loss, max_iter=20, tol=0)
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    big = np.zeros((74, 58))
    big[::2, ::2] = X
    for layout in (np.asfortranarray(X), mm, big[::2, ::2], X.T.copy().T):
        res = nmf(layout, 3, solver=solver, loss=loss, max_iter=20, tol=0)
        np.testing.assert_allclose(res.W @ res.H, ref.W @ ref.H, rtol=1e-10, atol=1e-12)


def unaligned(X):
    """X's values in a buffer that starts one byte off alignment (as Dask may
    deserialise a chunk), in X's memory order."""
    order = "F" if X.flags.f_contiguous and not X.flags.c_contiguous else "C"
    raw = np.frombuffer(bytearray(X.nbytes + 1), dtype=np.uint8)[1:]
    out = np.ndarray(X.shape, dtype=X.dtype, buffer=raw, order=order)
    out[...] = X
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("layout", ["C", "F"])
def test_unaligned_input_is_aligned_once(layout):
    X = np.asarray(positive_data(3, 37, 29), order=layout)
    data = load(unaligned(X))
    assert data.Y.flags.aligned
    np.testing.assert_array_equal(data.Y, X)
    ref = nmf(X, 3, max_iter=20, tol=0)
    res = nmf(unaligned(X), 3, max_iter=20, tol=0)
    np.testing.assert_allclose(res.W @ res.H, ref.W @ ref.H, rtol=1e-10, atol=1e-12)


def test_unaligned_sparse_arrays_are_aligned_once():
    X = sp.random_array((40, 30), density=0.3, random_state=np.random.default_rng(4), format="csr")
    bad = sp.csr_array((unaligned(X.data[None])[0], unaligned(X.indices[None])[0],
                        unaligned(X.indptr.astype(np.int64)[None])[0]), shape=X.shape)
    data = load(bad)
    for arrays in (data._rows, data._cols):
        assert all(a.flags.aligned for a in (arrays.data, arrays.indices, arrays.indptr))
    ref = nmf(X, 3, solver="mu", loss="kl", max_iter=20, tol=0)
    res = nmf(bad, 3, solver="mu", loss="kl", max_iter=20, tol=0)
    np.testing.assert_allclose(res.W @ res.H, ref.W @ ref.H, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver,loss", SOLVER_LOSSES)
def test_inputs_are_not_modified(solver, loss):
    X = positive_data(7)
    W0, H0 = np.random.default_rng(1).random((40, 3)), np.random.default_rng(2).random((3, 30))
    copies = X.copy(), W0.copy(), H0.copy()
    nmf(X, 3, solver=solver, loss=loss, max_iter=10)
    nmf(X, 3, solver=solver, loss=loss, init=(W0, H0), max_iter=10)
    for before, after in zip(copies, (X, W0, H0)):
        assert np.array_equal(before, after)


@pytest.mark.parametrize("solver,loss", SOLVER_LOSSES[:5] + SOLVER_LOSSES[-2:])
@pytest.mark.parametrize(
    "X,rank",
    [
        (np.zeros((6, 5)), 2),
        (np.array([[3.0]]), 1),
        (np.array([[0.0]]), 1),
        (np.vstack([np.zeros((2, 6)), np.random.default_rng(0).random((5, 6))]), 2),
        (np.hstack([np.zeros((6, 3)), np.random.default_rng(1).random((6, 4))]), 3),
        (np.random.default_rng(2).random((9, 7)), 1),
    ],
    ids=["all-zero", "1x1", "1x1-zero", "zero-rows", "zero-cols", "rank-1"],
)
@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "nndsvdar", "random"])
def test_degenerate_inputs_give_finite_results(solver, loss, X, rank, init):
    res = nmf(X, rank, solver=solver, loss=loss, init=init, max_iter=30, random_state=0)
    for value in (res.W, res.H, res.objective, res.relative_error, res.kkt_residual, res.history["objective"]):
        assert np.all(np.isfinite(value))
    if not X.any():
        assert res.relative_error == 0.0


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "anls_as", "als"])
def test_a_dropped_component_comes_back(solver):
    """A component absent from one factor (here H's first row) does not enter the other
    factor's half-problem: it keeps its values there, so the next half-step restores it
    instead of leaving both at zero, a stationary point for the rest of the run."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 3)) @ rng.random((3, 40))
    W0, H0 = rng.random((60, 3)), rng.random((3, 40))
    H0[0] = 0
    res = nmf(X, 3, solver=solver, init=(W0, H0), tol=0, max_iter=300)
    assert res.relative_error < 1e-5  # X is exactly of rank 3; rank 2 leaves 8 %
    assert np.all(res.W.sum(axis=0) > 0) and np.all(res.H.sum(axis=1) > 0)


# --- stopping rules and history -------------------------------------------------------


def test_max_iter_and_history_layout():
    res = nmf(positive_data(), 3, tol=0, max_iter=7)
    assert res.stop_reason == "max_iter" and not res.converged and res.n_iter == 7
    assert list(res.history["iteration"]) == list(range(8))
    assert res.history.dtype.names == ("iteration", "seconds", "objective", "relative_error")
    assert np.all(np.diff(res.history["seconds"]) >= 0)
    assert res.history["objective"][-1] == res.objective


def test_max_iter_zero_returns_the_init():
    X = positive_data()
    W0, H0 = np.full((40, 2), 0.5), np.full((2, 30), 0.5)
    res = nmf(X, 2, init=(W0, H0), max_iter=0)
    assert res.n_iter == 0 and res.stop_reason == "max_iter"
    assert np.array_equal(res.W, W0) and np.array_equal(res.H, H0)


def test_tol_stops_and_converges():
    res = nmf(positive_data(), 3, tol=1e-3, max_iter=10_000)
    assert res.stop_reason == "tol" and res.converged and res.n_iter < 10_000
    f = res.history["objective"]
    assert (f[-2] - f[-1]) / f[-2] < 1e-3
    assert np.all((f[:-2] - f[1:-1]) / f[:-2] >= 1e-3)


def test_target_error_checked_at_iteration_zero():
    X, W, H = low_rank_matrix(20, 15, 2, seed=8)
    res = nmf(X, 2, init=(W, H), target_error=1e-6)
    assert res.n_iter == 0 and res.stop_reason == "target_error" and res.converged


def test_all_zero_X_stops_on_tol():
    res = nmf(np.zeros((5, 4)), 2, max_iter=50)
    assert res.stop_reason == "tol" and res.n_iter == 1 and res.objective == 0.0


def test_max_time_stops():
    X = positive_data(0, 300, 200)
    res = nmf(X, 10, tol=0, max_iter=10**7, max_time=0.2)
    assert res.stop_reason == "max_time" and not res.converged


def test_callback_sees_each_iteration_and_can_stop():
    seen = []

    def callback(info):
        seen.append((info.iteration, info.objective, info.relative_error, info.W.shape, info.H.shape))
        with pytest.raises(ValueError):
            info.W[0, 0] = 1.0  # read-only views
        return info.iteration == 5

    res = nmf(positive_data(), 3, tol=0, max_iter=50, callback=callback)
    assert res.stop_reason == "callback" and res.n_iter == 5 and not res.converged
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert seen[-1][1] == res.objective and seen[-1][3:] == ((40, 3), (3, 30))


def test_stop_order_callback_before_target_error():
    X, W, H = low_rank_matrix(20, 15, 2, seed=8)
    res = nmf(X, 2, target_error=0.5, callback=lambda info: True)
    assert res.stop_reason == "callback"


def test_progress_bar_writes_to_stderr(capsys):
    nmf(positive_data(), 2, max_iter=5, progress=True)
    assert "nmf run 1" in capsys.readouterr().err


# --- restarts, randomness -------------------------------------------------------------


def test_restarts_never_worse_than_first_run():
    X = positive_data(9, 50, 40)
    first = nmf(X, 6, random_state=0, max_iter=40)
    best = nmf(X, 6, random_state=0, max_iter=40, n_init=5)
    assert best.objective <= first.objective
    assert best.n_runs == 5 and 0 <= best.best_run < 5


def _driver_runs(X, inits, prune, max_iter=200):
    """``fit`` of the driver on explicit inits (copied), HALS, tol=1e-6."""
    from fastnmf._data import load
    from fastnmf._driver import Stopping, fit
    from fastnmf._solvers.hals import HALS
    from fastnmf._solvers.base import Penalties

    calls = []
    res = fit(
        load(X),
        [(W.copy(), Ht.copy()) for W, Ht in inits],
        lambda d, W, Ht: HALS(d, W, Ht, Penalties()),
        Stopping(tol=1e-6, max_iter=max_iter),
        callback=lambda info: calls.append(info.iteration) and False,
        prune=prune,
        meta=dict(solver="hals", loss="frobenius", rank=inits[0][0].shape[1]),
    )
    return res, len(calls)


def test_prune_keeps_a_good_run_for_a_fraction_of_the_iterations():
    X = positive_data(11, 60, 50)
    rng = np.random.default_rng(0)
    inits = [(rng.random((60, 6)), rng.random((50, 6))) for _ in range(8)]
    singles = [_driver_runs(X, [init], prune=False)[0].objective for init in inits]
    full, full_iterations = _driver_runs(X, inits, prune=False)
    pruned, pruned_iterations = _driver_runs(X, inits, prune=True)
    assert full.objective == min(singles) and full.best_run == int(np.argmin(singles))
    # the survivor's result is exactly the run from its init alone
    assert pruned.objective == singles[pruned.best_run]
    assert pruned.objective <= np.median(singles)
    assert pruned.n_runs == 8
    assert pruned_iterations < 0.6 * full_iterations


def test_prune_flag_through_nmf():
    X = positive_data(12, 40, 30)
    res = nmf(X, 4, n_init=4, prune=True, random_state=0, max_iter=50)
    assert res.n_runs == 4 and np.isfinite(res.objective)
    with pytest.raises(TypeError, match="prune must be True or False"):
        nmf(X, 4, prune="yes")


def test_random_state_reproducible_and_accepts_generator():
    X = positive_data()
    a = nmf(X, 3, init="random", random_state=42, max_iter=10)
    b = nmf(X, 3, init="random", random_state=np.random.default_rng(42), max_iter=10)
    assert np.array_equal(a.W, b.W)


# --- threads ----------------------------------------------------------------------------


def test_results_identical_for_any_thread_count():
    X = positive_data(10, 300, 120)
    one = nmf(X, 8, n_threads=1, max_iter=30, tol=0)
    two = nmf(X, 8, n_threads=2, max_iter=30, tol=0)
    np.testing.assert_allclose(one.W, two.W, rtol=1e-12, atol=0)
    np.testing.assert_allclose(one.H, two.H, rtol=1e-12, atol=0)


def test_concurrent_calls_from_python_threads():
    datasets = [positive_data(s, 120, 80) for s in range(4)]
    expected = [nmf(X, 5, max_iter=40, tol=0, solver=s) for X, s in zip(datasets, ["hals", "mu"] * 2)]
    results = [None] * 4

    def work(i):
        results[i] = nmf(datasets[i], 5, max_iter=40, tol=0, solver=["hals", "mu"][i % 2], n_threads=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got.W @ got.H, want.W @ want.H, rtol=1e-10)


def test_n_threads_restored_even_on_error():
    before = numba.get_num_threads()
    with pytest.raises(ValueError):
        nmf(-np.ones((3, 3)), 1, n_threads=1)
    assert numba.get_num_threads() == before
    nmf(positive_data(), 2, n_threads=1, max_iter=2)
    assert numba.get_num_threads() == before


# --- the result object --------------------------------------------------------------------


def test_normalized_reconstructs_and_sorts():
    res = nmf(positive_data(), 4, max_iter=30)
    for norm, order in (("l1", 1), ("l2", 2)):
        W, d, H = res.normalized(norm)
        np.testing.assert_allclose(W @ np.diag(d) @ H, res.W @ res.H, rtol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(W, ord=order, axis=0), 1)
        np.testing.assert_allclose(np.linalg.norm(H, ord=order, axis=1), 1)
        assert np.all(np.diff(d) <= 0)
    with pytest.raises(ValueError, match="norm"):
        res.normalized("max")


def test_top_features_and_samples():
    res = nmf(positive_data(), 3, max_iter=10)
    names = [f"f{j}" for j in range(30)]
    top = res.top_features(4, names=names)
    assert len(top) == 3 and all(len(t) == 4 for t in top)
    for comp, pairs in enumerate(top):
        weights = [w for _, w in pairs]
        assert weights == sorted(weights, reverse=True)
        assert weights[0] == res.H[comp].max()
        assert pairs[0][0] == names[int(np.argmax(res.H[comp]))]
    samples = res.top_samples(2)
    assert samples[1][0] == (int(np.argmax(res.W[:, 1])), float(res.W[:, 1].max()))
    with pytest.raises(ValueError, match="names"):
        res.top_features(3, names=["a"])


def test_import_shortens_openblas_spin_only_when_first_and_unset():
    import subprocess
    import sys

    def env_after(code, extra_env=None):
        import os

        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
        env.update(extra_env or {})
        out = subprocess.run([sys.executable, "-c", code + "; import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"],
                             capture_output=True, text=True, env=env, check=True)
        return out.stdout.strip()

    assert env_after("import fastnmf") == "4"
    assert env_after("import numpy, fastnmf") == "None"
    assert env_after("import fastnmf", {"OPENBLAS_THREAD_TIMEOUT": "10"}) == "10"
