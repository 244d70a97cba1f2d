"""Distributed NMF on Dask: same results as in memory, X never gathered, bounded memory."""

import numpy as np
import pytest
import scipy.sparse as sp

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastnmf  # noqa: E402
import fastnmf.dask as fdask  # noqa: E402
from conftest import TOL, low_rank_matrix  # noqa: E402

RUN_TOL = TOL[np.dtype(np.float64)]["run"]


def _cluster(**kwargs):
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, **kwargs
    )


@pytest.fixture(scope="module")
def client():
    with _cluster(memory_limit="2GB") as cluster, distributed.Client(cluster) as client:
        yield client


def _data(kind, m=240, n=60, k=4, seed=0):
    X, _, _ = low_rank_matrix(m, n, k, seed=seed, noise=0.1)
    chunks = {"rows": (50, n), "grid": (70, 25), "sparse": (60, n)}[kind]
    Xd = da.from_array(X, chunks=chunks)
    if kind == "sparse":
        X[X < 0.5] = 0
        Xd = da.from_array(X, chunks=chunks).map_blocks(sp.csr_matrix, meta=sp.csr_matrix((0, 0)))
    return X, Xd


def _init(m, n, k, seed=1):
    r = np.random.default_rng(seed)
    return r.random((m, k)) + 0.1, r.random((k, n)) + 0.1


CASES = [("hals", "frobenius"), ("anls_bpp", "frobenius"), ("mu", "frobenius"), ("mu", "kl")]


@pytest.mark.parametrize("kind", ["rows", "grid", "sparse"])
@pytest.mark.parametrize("solver,loss", CASES)
def test_same_iterates_as_in_memory(client, solver, loss, kind):
    X, Xd = _data(kind)
    W0, H0 = _init(*X.shape, 4)
    options = dict(solver=solver, loss=loss, init=(W0, H0), max_iter=12, tol=0)
    expected = fastnmf.nmf(X, 4, **options)
    got = fastnmf.nmf(Xd, 4, **options)
    assert isinstance(got.W, da.Array) and isinstance(got.H, np.ndarray)
    assert got.W.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(got.W.compute(), expected.W, rtol=RUN_TOL, atol=1e-10)
    np.testing.assert_allclose(got.H, expected.H, rtol=RUN_TOL, atol=1e-10)
    np.testing.assert_allclose(got.history["objective"], expected.history["objective"], rtol=RUN_TOL)
    assert got.n_iter == expected.n_iter == 12 and got.stop_reason == "max_iter"
    assert got.kkt_residual == pytest.approx(expected.kkt_residual, rel=RUN_TOL)


def test_a_dropped_component_comes_back(client):
    """As in memory (test_nmf.py): the W half-step on the workers keeps the column of a
    component that H has dropped, so the run restores it."""
    X, Xd = _data("rows")
    W0, H0 = _init(*X.shape, 4)
    H0[0] = 0
    options = dict(solver="hals", init=(W0, H0), max_iter=8, tol=0)
    expected, got = fastnmf.nmf(X, 4, **options), fastnmf.nmf(Xd, 4, **options)
    assert expected.H[0].sum() > 0
    np.testing.assert_allclose(got.H, expected.H, rtol=RUN_TOL, atol=1e-10)


@pytest.mark.parametrize("solver", ["anls_as", "als", "gdcls"])
def test_other_frobenius_solvers(client, solver):
    X, Xd = _data("rows")
    options = dict(solver=solver, init=_init(*X.shape, 4), max_iter=8, tol=0)
    expected, got = fastnmf.nmf(X, 4, **options), fastnmf.nmf(Xd, 4, **options)
    np.testing.assert_allclose(got.H, expected.H, rtol=RUN_TOL, atol=1e-10)


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda"])
def test_svd_init_matches_in_memory(client, init):
    """The randomized SVD on the row blocks finds the same NNDSVD factors as the exact
    SVD does in memory (the pair of signs of each singular pair does not matter)."""
    X, Xd = _data("grid")
    expected = fastnmf.nmf(X, 4, init=init, max_iter=0)
    got = fastnmf.nmf(Xd, 4, init=init, max_iter=0)
    scale = expected.W.max()
    np.testing.assert_allclose(got.W.compute(), expected.W, atol=1e-6 * scale)
    np.testing.assert_allclose(got.H, expected.H, atol=1e-6 * expected.H.max())


def test_default_fit_converges_like_in_memory(client):
    X, Xd = _data("rows")
    expected, got = fastnmf.nmf(X, 4, random_state=0), fastnmf.nmf(Xd, 4, random_state=0)
    assert got.converged and got.relative_error == pytest.approx(expected.relative_error, rel=1e-4)


def test_random_init_is_reproducible_and_nonnegative(client):
    _, Xd = _data("rows")
    a = fastnmf.nmf(Xd, 4, init="random", random_state=3, max_iter=0)
    b = fastnmf.nmf(Xd, 4, init="random", random_state=3, max_iter=0)
    np.testing.assert_array_equal(a.W.compute(), b.W.compute())
    np.testing.assert_array_equal(a.H, b.H)
    assert a.W.min().compute() >= 0 and a.H.min() >= 0


def test_restarts_pruning_and_callback(client):
    X, Xd = _data("rows")
    seen = []
    result = fastnmf.nmf(Xd, 4, n_init=3, prune=True, max_iter=25, random_state=0, callback=seen.append)
    assert result.n_runs == 3 and 0 <= result.best_run < 3
    assert isinstance(seen[-1].W, da.Array) and seen[-1].W.shape == (X.shape[0], 4)
    assert np.isfinite(result.objective)


def test_float32_stays_float32(client):
    X, _ = _data("rows")
    Xd = da.from_array(X.astype(np.float32), chunks=(60, 60))
    result = fastnmf.nmf(Xd, 4, max_iter=5)
    assert result.W.dtype == np.float32 and result.H.dtype == np.float32


def test_in_process_without_a_client(monkeypatch):
    """With no distributed Client the same tasks run in this process."""
    monkeypatch.setattr(fdask, "_executor", fdask._InProcess)
    X, Xd = _data("grid")
    options = dict(solver="hals", init=_init(*X.shape, 4), max_iter=10, tol=0)
    expected, got = fastnmf.nmf(X, 4, **options), fastnmf.nmf(Xd, 4, **options)
    np.testing.assert_allclose(got.H, expected.H, rtol=RUN_TOL)
    np.testing.assert_allclose(got.W.compute(), expected.W, rtol=RUN_TOL, atol=1e-12)


def _unaligned(a):
    """A copy of ``a`` one byte into a buffer, as Dask may deserialise it."""
    buffer = np.empty(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buffer[1:].data, dtype=a.dtype).reshape(a.shape)
    out[...] = a
    return out


def test_tasks_see_aligned_arrays():
    """Row-block tasks get aligned copies of unaligned arguments (the products and the
    kernels are slow on unaligned arrays); the values are unchanged."""
    Ht, W = np.arange(12.0).reshape(6, 2), np.ones((3, 2))
    seen = []

    def fn(blocks, cols, W_i, Ht, pair):
        seen.append((W_i, Ht, *pair))
        return None, None

    fdask._run_row([], [(_unaligned(W), None)], fn, [], (_unaligned(Ht), (_unaligned(Ht), 3)))
    (W_i, got, nested, three), = seen
    assert not _unaligned(Ht).flags.aligned
    assert W_i.flags.aligned and got.flags.aligned and nested.flags.aligned and three == 3
    np.testing.assert_array_equal(got, Ht)
    np.testing.assert_array_equal(W_i, W)


def test_bad_input_names_the_chunk(client):
    X, _ = _data("rows")
    X[130, 7] = -1.0
    with pytest.raises(ValueError, match=r"negative entries .* chunk of X at rows 100:150"):
        fastnmf.nmf(da.from_array(X, chunks=(50, 60)), 3)
    X[130, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastnmf.nmf(da.from_array(X, chunks=(50, 60)), 3)


def test_unsupported_arguments(client):
    _, Xd = _data("rows")
    with pytest.raises(ValueError, match="mask= and missing= are not supported for dask"):
        fastnmf.nmf(Xd, 3, mask=np.ones(Xd.shape, bool))
    with pytest.raises(ValueError, match="2-D"):
        fastnmf.nmf(da.ones(10, chunks=5), 1)
    with pytest.raises(ValueError, match="supports only loss='frobenius'"):
        fastnmf.nmf(Xd, 3, solver="hals", loss="kl")


def test_project(client):
    X, Xd = _data("grid")
    H = fastnmf.nmf(X, 4, max_iter=20).H
    W = fastnmf.project(Xd, H)
    assert isinstance(W, da.Array) and W.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(W.compute(), fastnmf.project(X, H), rtol=1e-10, atol=1e-12)


class _TaskInputs(distributed.diagnostics.plugin.SchedulerPlugin):
    """Records the largest total size of the inputs any task received."""

    name = "fastnmf-task-inputs"

    def __init__(self):
        self.largest = 0

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "processing":
            task = self.scheduler.tasks[key]
            self.largest = max(self.largest, sum(max(d.nbytes, 0) for d in task.dependencies))


def test_no_task_holds_all_of_x():
    """X is made on the workers; no task, not even at load, receives more than a
    quarter of it (the blocks are eighths), and the client never holds it."""
    with _cluster(memory_limit="2GB") as cluster, distributed.Client(cluster) as client:
        client.register_plugin(_TaskInputs())
        X = da.random.default_rng(0).random((8000, 500), chunks=(1000, 250))
        result = fastnmf.nmf(X, 5, max_iter=4, tol=0)
        largest = cluster.scheduler.plugins[_TaskInputs.name].largest
    assert result.n_iter == 4
    assert 0 < largest <= X.nbytes / 4


def test_larger_than_a_worker_memory_limit():
    """X bigger than one worker's memory limit factors without a worker dying: the
    row blocks are shared out evenly at load and never move."""
    limit = 1.6e9  # a worker process itself takes about 0.2 GB of it
    # Workers are killed at 98 % of the limit; spilling to disk is off so the test
    # measures where the data lives, not how the disk keeps up.
    memory = {"target": False, "spill": False, "pause": 0.9, "terminate": 0.98}
    with dask.config.set({f"distributed.worker.memory.{key}": value for key, value in memory.items()}), \
            _cluster(memory_limit=limit) as cluster, distributed.Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        X = da.random.default_rng(0).random((70_000, 6000), chunks=(2500, 6000), dtype=np.float32)
        assert X.nbytes > limit
        result = fastnmf.nmf(X, 4, init="random", max_iter=3, tol=0, random_state=0)
        assert set(client.scheduler_info()["workers"]) == workers
    assert result.n_iter == 3 and np.isfinite(result.objective)
