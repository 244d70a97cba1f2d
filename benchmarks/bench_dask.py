"""asv suite for distributed fastnmf: one outer iteration on a ``distributed.LocalCluster``
beside the same iteration in memory, and the bytes it moves.

X is 10000 × 2000 (k = 30) in 8 row chunks, persisted on the workers in ``setup``;
workers are single-threaded processes. Skipped when dask or distributed is missing.
``benchmarks/dask_compare.py`` prints the same figures as a table.

Benchmark names are history (DESIGN.md §5): do not rename classes, methods or parameter
values; add new ones instead.
"""

import numpy as np

import fastnmf

SHAPE = (10000, 2000, 30)
CHUNKS = 8
ITERATIONS = 10


def _problem():
    m, n, k = SHAPE
    rng = np.random.default_rng(0)
    X = rng.random((m, k)) @ rng.random((k, n)) + 0.1 * rng.random((m, n))
    return X, rng.random((m, k)) + 0.1, rng.random((k, n)) + 0.1


class DaskIteration:
    """``ITERATIONS`` outer iterations (plus the fixed cost of a call) per solver."""

    params = (["memory", "1", "2"], ["hals", "anls_bpp", "mu", "mu_kl"])
    param_names = ["workers", "solver"]
    number = 1
    repeat = 3
    timeout = 600

    def setup(self, workers, solver):
        self.X, self.W0, self.H0 = _problem()
        self.cluster = self.client = None
        if workers != "memory":
            try:
                import dask.array as da
                from distributed import Client, LocalCluster
            except ImportError:
                raise NotImplementedError("dask and distributed are not installed") from None
            self.cluster = LocalCluster(
                n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None
            )
            self.client = Client(self.cluster)
            m, n = self.X.shape
            self.X = da.from_array(self.X, chunks=(m // CHUNKS, n)).persist()
        self.solver, self.loss = ("mu", "kl") if solver == "mu_kl" else (solver, "frobenius")
        self._fit(2)  # compile, and load the cluster's workers

    def teardown(self, workers, solver):
        if self.client is not None:
            self.client.close()
            self.cluster.close()

    def _fit(self, iterations):
        return fastnmf.nmf(
            self.X, SHAPE[2], solver=self.solver, loss=self.loss, init=(self.W0, self.H0),
            max_iter=iterations, tol=0,
        )

    def time_iterations(self, workers, solver):
        self._fit(ITERATIONS)

    def track_bytes_per_iteration(self, workers, solver):
        """Loopback bytes of ``2·ITERATIONS`` minus ``ITERATIONS`` iterations, per iteration."""
        try:
            import psutil  # installed with distributed
        except ImportError:
            raise NotImplementedError("psutil is not installed") from None

        def moved(iterations):
            before = psutil.net_io_counters(pernic=True)["lo"].bytes_sent
            self._fit(iterations)
            return psutil.net_io_counters(pernic=True)["lo"].bytes_sent - before

        return max(0.0, (moved(2 * ITERATIONS) - moved(ITERATIONS)) / ITERATIONS)

    track_bytes_per_iteration.unit = "bytes"
