"""asv suites: fastnmf per-iteration cost, the two-GEMM floor, objective reached,
time to target, and scikit-learn side by side on the same workloads.

Benchmark names are history (DESIGN.md §5): do not rename classes, methods or parameter
values; add new ones instead.
"""

import warnings

import numpy as np

import fastnmf

from .common import (
    DTYPES,
    FASTNMF_VARIANTS,
    SHAPES,
    SKLEARN_VARIANTS,
    dense_data,
    initial_factors,
    rank5_example,
    warm_jit,
)


class _Heavy:
    """Timing settings for benchmarks whose single call takes 0.1–10 s."""

    number = 1
    repeat = (1, 3, 60.0)
    rounds = 1
    warmup_time = 0
    timeout = 900


class DenseIteration(_Heavy):
    """Cost of fastnmf iterations on dense low-rank + noise data.

    ``time_fit_10_iterations`` is a whole call (nndsvda init + 10 iterations, tol=0), the
    counterpart of ``SklearnNMF.time_fit_10_iterations``. ``track_seconds_per_iteration``
    is the mean wall time of one outer iteration (objective evaluation included, init and
    result assembly excluded), read from the run's history; divide it by
    ``TwoGemmFloor.time_two_gemm`` for the ratio to the BLAS floor.
    """

    params = [list(SHAPES), list(DTYPES), list(FASTNMF_VARIANTS)]
    param_names = ["shape", "dtype", "variant"]
    n_iter = 10

    def setup(self, shape, dtype, variant):
        self.X, self.k = dense_data(shape, dtype)
        self.kwargs = FASTNMF_VARIANTS[variant]
        warm_jit(dtype, **self.kwargs)
        self.init = initial_factors(self.X, self.k)

    def time_fit_10_iterations(self, shape, dtype, variant):
        fastnmf.nmf(self.X, self.k, init="nndsvda", tol=0, max_iter=self.n_iter, random_state=0, **self.kwargs)

    def track_seconds_per_iteration(self, shape, dtype, variant):
        res = fastnmf.nmf(self.X, self.k, init=self.init, tol=0, max_iter=self.n_iter, **self.kwargs)
        seconds = res.history["seconds"]
        return float(seconds[-1] - seconds[0]) / res.n_iter

    track_seconds_per_iteration.unit = "seconds"


class ObjectiveAfter100Iterations(_Heavy):
    """Objective reached after exactly 100 iterations from the common nndsvda init
    (½‖X − WH‖² for Frobenius, the generalised KL divergence for ``mu_kl``): a speedup
    bought by worse optimisation shows up here."""

    params = [list(SHAPES), list(DTYPES), list(FASTNMF_VARIANTS)]
    param_names = ["shape", "dtype", "variant"]

    def setup(self, shape, dtype, variant):
        self.X, self.k = dense_data(shape, dtype)
        self.kwargs = FASTNMF_VARIANTS[variant]
        warm_jit(dtype, **self.kwargs)
        self.init = initial_factors(self.X, self.k)

    def track_objective(self, shape, dtype, variant):
        res = fastnmf.nmf(self.X, self.k, init=self.init, tol=0, max_iter=100, **self.kwargs)
        return float(res.objective)

    track_objective.unit = "objective"


class TwoGemmFloor:
    """The BLAS floor of one alternating iteration: ``X @ Hᵀ`` and ``Xᵀ @ W``
    (4·m·n·k flops, two passes over X), the same products the driver forms."""

    params = [list(SHAPES), list(DTYPES)]
    param_names = ["shape", "dtype"]
    warmup_time = 0.2

    def setup(self, shape, dtype):
        m, n, k = SHAPES[shape]
        rng = np.random.default_rng(0)
        self.X = rng.random((m, n)).astype(dtype)
        self.W = rng.random((m, k)).astype(dtype)
        self.Ht = rng.random((n, k)).astype(dtype)

    def time_two_gemm(self, shape, dtype):
        self.X @ self.Ht
        self.X.T @ self.W


class Rank5TimeToTarget:
    """HALS on the 50×100 exactly rank-5 integer matrix to relative error 1e-7, after
    compilation; the error actually reached and the iterations it took are tracked."""

    target = 1e-7
    max_iter = 100_000

    def setup(self):
        self.X = rank5_example()
        warm_jit(np.float64, solver="hals")

    def _run(self):
        return fastnmf.nmf(self.X, 5, solver="hals", target_error=self.target, tol=0, max_iter=self.max_iter)

    def time_hals_to_target(self):
        self._run()

    def track_hals_relative_error_reached(self):
        return float(self._run().relative_error)

    track_hals_relative_error_reached.unit = "relative error"

    def track_hals_iterations_to_target(self):
        return int(self._run().n_iter)

    track_hals_iterations_to_target.unit = "iterations"


class Rank5ExactSolversToTarget:
    """The exact alternating solvers on the same rank-5 example and target."""

    params = [["anls_bpp", "anls_as"]]
    param_names = ["solver"]
    target = 1e-7

    def setup(self, solver):
        self.X = rank5_example()
        warm_jit(np.float64, solver=solver)

    def _run(self, solver):
        return fastnmf.nmf(self.X, 5, solver=solver, target_error=self.target, tol=0, max_iter=10_000)

    def time_to_target(self, solver):
        self._run(solver)

    def track_iterations_to_target(self, solver):
        return int(self._run(solver).n_iter)

    track_iterations_to_target.unit = "iterations"


class SklearnNMF(_Heavy):
    """scikit-learn's NMF on the same workloads: fit time of nndsvda init + 10
    iterations with tol=0, the counterpart of ``DenseIteration.time_fit_10_iterations``."""

    params = [list(SHAPES), list(DTYPES), list(SKLEARN_VARIANTS)]
    param_names = ["shape", "dtype", "variant"]
    n_iter = 10

    def setup(self, shape, dtype, variant):
        from sklearn.decomposition import NMF

        self.X, self.k = dense_data(shape, dtype)
        self.kwargs = SKLEARN_VARIANTS[variant]
        self.NMF = NMF
        self._fit(self.X[:60, :40], 3, 1)  # first-call overheads out of the timing

    def _fit(self, X, k, max_iter):
        model = self.NMF(n_components=k, init="nndsvda", tol=0, max_iter=max_iter, random_state=0, **self.kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point
            model.fit_transform(X)
        return model

    def time_fit_10_iterations(self, shape, dtype, variant):
        self._fit(self.X, self.k, self.n_iter)


class Restarts(_Heavy):
    """``n_init=8`` restarts of HALS (tol=1e-4, max_iter=200) with and without pruning
    (successive halving in rounds of 10 iterations): the time, the best objective reached
    and the total number of iterations run, whose ratio is the cost pruning saves."""

    params = [["2000x1000_k20"], ["no", "yes"]]
    param_names = ["shape", "prune"]
    n_init = 8

    def setup(self, shape, prune):
        self.X, self.k = dense_data(shape, "float64")
        warm_jit("float64", solver="hals")

    def _fit(self, prune, callback=None):
        return fastnmf.nmf(self.X, self.k, n_init=self.n_init, prune=prune == "yes", random_state=0,
                           callback=callback)

    def time_restarts(self, shape, prune):
        self._fit(prune)

    def track_objective(self, shape, prune):
        return float(self._fit(prune).objective)

    track_objective.unit = "½‖X − WH‖²"

    def track_total_iterations(self, shape, prune):
        count = []
        self._fit(prune, callback=lambda info: count.append(1) and False)
        return len(count)

    track_total_iterations.unit = "iterations"
