"""asv suites for sparse and masked X: per-iteration cost, scikit-learn beside it on the
same sparse word counts, masked vs unmasked, and peak memory.

Benchmark names are history (DESIGN.md §5): do not rename classes, methods or parameter
values; add new ones instead.
"""

import warnings

import numpy as np

import fastnmf

from .bench_nmf import _Heavy
from .common import SPARSE_SHAPES, dense_data, initial_factors, topic_counts, warm_jit

# fastnmf variants on sparse counts: name -> keyword arguments of fastnmf.nmf
SPARSE_VARIANTS = {
    "hals": dict(solver="hals", loss="frobenius"),
    "mu_kl": dict(solver="mu", loss="kl"),
    "anls_bpp": dict(solver="anls_bpp", loss="frobenius"),
}
# scikit-learn counterparts: name -> keyword arguments of sklearn.decomposition.NMF
SKLEARN_SPARSE_VARIANTS = {
    "cd": dict(solver="cd", beta_loss="frobenius"),
    "mu_kl": dict(solver="mu", beta_loss="kullback-leibler"),
}
MASKED_SOLVERS = ("hals", "anls_bpp", "mu")


def _warm_sparse(**kwargs):
    """Compile (or load from cache) the sparse kernels a run with ``kwargs`` uses."""
    X, _ = topic_counts((200, 100, 3, 0.05))
    fastnmf.nmf(X, 3, max_iter=1, **kwargs)


class SparseIteration(_Heavy):
    """fastnmf on sparse word counts: a whole call with 10 iterations, and the mean
    outer iteration read from the history (init and result assembly excluded)."""

    params = [list(SPARSE_SHAPES), list(SPARSE_VARIANTS)]
    param_names = ["shape", "variant"]
    n_iter = 10

    def setup(self, shape, variant):
        self.X, self.k = topic_counts(shape)
        self.kwargs = SPARSE_VARIANTS[variant]
        _warm_sparse(**self.kwargs)
        self.init = initial_factors(self.X, self.k)

    def time_fit_10_iterations(self, shape, variant):
        fastnmf.nmf(self.X, self.k, init=self.init, tol=0, max_iter=self.n_iter, **self.kwargs)

    def track_seconds_per_iteration(self, shape, variant):
        res = fastnmf.nmf(self.X, self.k, init=self.init, tol=0, max_iter=self.n_iter, **self.kwargs)
        seconds = res.history["seconds"]
        return float(seconds[-1] - seconds[0]) / res.n_iter

    track_seconds_per_iteration.unit = "seconds"


class SklearnSparse(_Heavy):
    """scikit-learn's NMF on the same sparse counts and init: 10 iterations, tol=0."""

    params = [list(SPARSE_SHAPES), list(SKLEARN_SPARSE_VARIANTS)]
    param_names = ["shape", "variant"]

    def setup(self, shape, variant):
        self.X, self.k = topic_counts(shape)
        self.init = initial_factors(self.X, self.k)

    def time_fit_10_iterations(self, shape, variant):
        from sklearn.decomposition import NMF

        model = NMF(self.k, init="custom", tol=0, max_iter=10, **SKLEARN_SPARSE_VARIANTS[variant])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit_transform(self.X, W=self.init[0].copy(), H=self.init[1].copy())


class MaskedIteration(_Heavy):
    """Mean outer iteration with 5 % of the entries missing, beside the unmasked run
    (``masked="no"``): the price of per-row Gram matrices."""

    params = [["2000x1000_k20"], list(MASKED_SOLVERS), ["yes", "no"]]
    param_names = ["shape", "solver", "masked"]
    n_iter = 10

    def setup(self, shape, solver, masked):
        self.X, self.k = dense_data(shape, "float64")
        self.mask = np.random.default_rng(0).random(self.X.shape) > 0.05 if masked == "yes" else None
        warm_jit("float64", solver=solver, mask=np.eye(60, 40) == 0)
        self.init = initial_factors(self.X, self.k)

    def track_seconds_per_iteration(self, shape, solver, masked):
        res = fastnmf.nmf(self.X, self.k, solver=solver, mask=self.mask, init=self.init, tol=0, max_iter=self.n_iter)
        seconds = res.history["seconds"]
        return float(seconds[-1] - seconds[0]) / res.n_iter

    track_seconds_per_iteration.unit = "seconds"


class PeakMemory(_Heavy):
    """Peak resident memory of a 10-iteration fit (the data and its setup included: the
    difference between variants is what the solver adds)."""

    params = [["sparse_2000x1000_d0.02_k10", "dense_2000x1000_k20"], ["hals", "mu_kl", "anls_bpp"]]
    param_names = ["data", "variant"]

    def setup(self, data, variant):
        kind, shape = data.split("_", 1)
        self.X, self.k = topic_counts(shape) if kind == "sparse" else dense_data(shape, "float64")
        self.kwargs = SPARSE_VARIANTS[variant]
        warm_jit("float64", **self.kwargs)

    def peakmem_fit_10_iterations(self, data, variant):
        fastnmf.nmf(self.X, self.k, tol=0, max_iter=10, random_state=0, **self.kwargs)

