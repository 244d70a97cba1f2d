"""Runs that advance together and share their products with X (``_data.SharedProducts``,
``_driver.fit_together``, ``nmf._fit_each``)."""

import importlib
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import fastnmf
from fastnmf._config import THREADSAFE_LAYER
from fastnmf._data import SharedProducts, load
from fastnmf.nmf import _check_options, _fit_each, _fit_loaded

nmf_module = importlib.import_module("fastnmf.nmf")  # the attribute fastnmf.nmf is the function

pytestmark = pytest.mark.skipif(not THREADSAFE_LAYER, reason="runs share only with a thread-safe Numba layer")


def data(seed=0, m=60, n=40, sparse=False):
    rng = np.random.default_rng(seed)
    X = rng.random((m, 5)) @ rng.random((5, n)) + 0.05 * rng.random((m, n))
    return sp.csr_array(X) if sparse else X


def in_threads(n, work):
    """``[work(i) for i in range(n)]``, each call in a thread of its own."""
    results, errors = [None] * n, [None] * n

    def target(i):
        try:
            results[i] = work(i)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors[i] = error

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a run is still waiting"
    return results, errors


@pytest.mark.parametrize("sparse", [False, True])
def test_gathered_products_equal_separate_products(sparse):
    X = data(sparse=sparse)
    d = load(X)
    shared = SharedProducts(d, 4, 2)
    rng = np.random.default_rng(1)
    Gs = [rng.random((40, 3)) for _ in range(4)]  # for X @ G
    Fs = [rng.random((60, 2 + r)) for r in range(4)]  # for Xᵀ @ F, widths differ

    def work(run):
        shared.enter()
        view = shared.view(run)
        out = []
        for step in range(3 + run):  # runs leave after different numbers of products
            out.append(view.matmul(Gs[run]) if step % 2 == 0 else view.T.matmul(Fs[run]))
        shared.leave(run)
        out.append(view.matmul(Gs[run]))  # after leaving: its own product
        return out

    results, errors = in_threads(4, work)
    assert errors == [None] * 4
    for run, out in enumerate(results):
        assert len(out) == 4 + run
        for step, product in enumerate(out):
            expected = X @ Gs[run] if step % 2 == 0 or step == len(out) - 1 else X.T @ Fs[run]
            assert product.flags.c_contiguous
            np.testing.assert_allclose(product, expected, rtol=1e-12)


def test_a_failing_product_raises_in_every_waiting_run():
    d = load(data())
    shared = SharedProducts(d, 3, 2)

    def work(run):
        shared.enter()
        try:
            width = 40 if run != 1 else 7  # run 1 asks for a product that cannot be formed
            return shared.view(run).matmul(np.ones((width, 2)))
        finally:
            shared.leave(run)

    _, errors = in_threads(3, work)
    assert all(isinstance(e, ValueError) for e in errors)


def test_a_run_that_ends_early_releases_the_others():
    d = load(data())
    shared = SharedProducts(d, 3, 1)  # one place: runs compute one at a time

    def work(run):
        shared.enter()
        try:
            if run == 0:
                raise RuntimeError("run 0 fails before its first product")
            return [shared.view(run).matmul(np.ones((40, 2))) for _ in range(3)]
        finally:
            shared.leave(run)

    results, errors = in_threads(3, work)
    assert isinstance(errors[0], RuntimeError) and errors[1:] == [None, None]
    np.testing.assert_allclose(results[2][-1], data() @ np.ones((40, 2)))


@pytest.mark.parametrize("solver", ["hals", "anls_bpp", "mu", "gdcls"])
@pytest.mark.parametrize("kind", ["dense", "sparse", "dense, warm-started on a sketch"])
def test_runs_together_equal_runs_one_by_one(solver, kind, monkeypatch):
    d = load(data(sparse=kind == "sparse", **(dict(m=400, n=300) if "sketch" in kind else {})))
    options = _check_options(solver=solver, init="random", max_iter=60)
    groups = []
    fit_together = nmf_module.fit_together
    monkeypatch.setattr(nmf_module, "fit_together", lambda d, inits, *a, **kw: groups.append(len(inits))
                        or fit_together(d, inits, *a, **kw))
    together = list(_fit_each(d, 4, options, np.random.default_rng(3), 5))
    assert groups == [5]  # the five runs went together
    alone = [_fit_loaded(d, 4, options, rng) for rng in [np.random.default_rng(3)] for _ in range(5)]
    assert len(together) == len(alone) == 5
    for a, b in zip(together, alone):
        assert a.n_iter == b.n_iter and a.stop_reason == b.stop_reason
        np.testing.assert_allclose(a.objective, b.objective, rtol=1e-9)
        np.testing.assert_allclose(a.W, b.W, rtol=1e-6, atol=1e-9 * np.abs(b.W).max())
        np.testing.assert_allclose(a.H, b.H, rtol=1e-6, atol=1e-9 * np.abs(b.H).max())
        assert a.kkt_residual == pytest.approx(b.kkt_residual, rel=1e-5)
        assert a.n_runs == 1 and a.best_run == 0
        assert a.history.shape == b.history.shape


def test_runs_go_one_by_one_when_a_run_is_watched():
    d = load(data())
    calls = []
    options = _check_options(init="random", max_iter=5, callback=lambda info: calls.append(info.iteration))
    results = list(_fit_each(d, 3, options, np.random.default_rng(0), 3))
    assert calls == [1, 2, 3, 4, 5] * 3  # each run's callback in turn: not interleaved
    assert len(results) == 3


def test_consensus_with_and_without_shared_products(monkeypatch):
    X = data(m=50, n=30)
    shared = fastnmf.consensus(X, 3, n_runs=6, random_state=0)
    monkeypatch.setattr(nmf_module, "SHARED_COLUMNS", 1)  # one run at a time
    alone = fastnmf.consensus(X, 3, n_runs=6, random_state=0)
    np.testing.assert_array_equal(shared.run_labels, alone.run_labels)
    np.testing.assert_allclose(shared.objectives, alone.objectives, rtol=1e-9)
    assert shared.cophenetic == pytest.approx(alone.cophenetic, abs=1e-12)


def test_shared_runs_honour_n_threads():
    # With one thread, at most one run computes at a time between products.
    d = load(data())
    busy, peak, lock = [0], [0], threading.Lock()
    shared = SharedProducts(d, 4, 1)

    def work(run):
        shared.enter()
        try:
            for _ in range(5):
                with lock:
                    busy[0] += 1
                    peak[0] = max(peak[0], busy[0])
                np.linalg.norm(np.random.default_rng(run).random((200, 200)))  # compute
                with lock:
                    busy[0] -= 1
                shared.view(run).matmul(np.ones((40, 2)))
        finally:
            shared.leave(run)

    _, errors = in_threads(4, work)
    assert errors == [None] * 4
    assert peak[0] == 1
