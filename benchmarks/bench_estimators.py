"""asv suites for the scikit-learn estimators: ``fastnmf.estimators.NMF`` and
``MiniBatchNMF`` beside scikit-learn's on the same data — fit, transform of new rows,
and mini-batch learning from a stream — with the reconstruction error each reaches.

Both libraries run at the estimators' defaults (tol=1e-4, max_iter=200, init=None),
which is what a user of either gets; their stopping rules differ, so every timing has a
``track_reconstruction_err`` beside it: a speedup bought by stopping earlier shows there.

The large stream (200000 × 1000) is only collected when the environment variable
``FASTNMF_BENCH_LARGE`` is set, so ``asv check`` and quick runs stay fast.

Benchmark names are history (DESIGN.md §5): do not rename classes, methods or parameter
values; add new ones instead.
"""

import os
import warnings

import numpy as np

import fastnmf

from .bench_nmf import _Heavy

LIBRARIES = ("fastnmf", "sklearn")
ESTIMATOR_SOLVERS = ("cd", "mu")
# Dense workloads of the batch estimator: name -> (m, n, k).
ESTIMATOR_SHAPES = {"2000x1000_k20": (2000, 1000, 20)}
# New rows transformed on the components fitted on ESTIMATOR_SHAPES.
TRANSFORM_ROWS = 10_000
# Streams of the mini-batch estimator: name -> (m, n, k).
STREAMS = {"20000x1000_k20": (20000, 1000, 20)}
if os.environ.get("FASTNMF_BENCH_LARGE"):
    STREAMS["200000x1000_k20"] = (200000, 1000, 20)
STREAM_BATCH_SIZE = 1024


def _estimator(library, minibatch=False):
    """The NMF (or MiniBatchNMF) class of ``library``."""
    if library == "fastnmf":
        from fastnmf.estimators import NMF, MiniBatchNMF
    else:
        from sklearn.decomposition import NMF, MiniBatchNMF
    return MiniBatchNMF if minibatch else NMF


def _low_rank(m, n, k, random_state=0):
    """Low-rank + 10% noise X, float64 (as ``common.dense_data``)."""
    X, _, _ = fastnmf.datasets.low_rank(m, n, k, noise=0.1, random_state=random_state)
    return X


def _quiet(call, *args, **kwargs):
    """Run ``call`` with ConvergenceWarnings silenced (hitting max_iter is not an error here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def _warm(library, minibatch=False, **kwargs):
    """First-call costs (JIT compile or cache load, imports) out of the timings."""
    Estimator = _estimator(library, minibatch)
    X = np.random.default_rng(0).random((300, 40)) + 0.1
    model = _quiet(Estimator(3, random_state=0, max_iter=2, **kwargs).fit, X)
    model.transform(X)
    if minibatch:
        model.partial_fit(X)


class EstimatorFit(_Heavy):
    """``NMF(n_components=k, solver=solver).fit(X)`` at the defaults, fastnmf vs
    scikit-learn, on dense low-rank + noise data."""

    params = [list(ESTIMATOR_SHAPES), list(ESTIMATOR_SOLVERS), list(LIBRARIES)]
    param_names = ["shape", "solver", "library"]

    def setup(self, shape, solver, library):
        m, n, self.k = ESTIMATOR_SHAPES[shape]
        self.X = _low_rank(m, n, self.k)
        self.NMF = _estimator(library)
        _warm(library, solver=solver)

    def _fit(self, solver):
        return _quiet(self.NMF(self.k, solver=solver, random_state=0).fit, self.X)

    def time_fit(self, shape, solver, library):
        self._fit(solver)

    def track_reconstruction_err(self, shape, solver, library):
        return float(self._fit(solver).reconstruction_err_)

    track_reconstruction_err.unit = "‖X − WH‖_F"

    def track_n_iter(self, shape, solver, library):
        return int(self._fit(solver).n_iter_)

    track_n_iter.unit = "iterations"


class EstimatorTransform(_Heavy):
    """``transform`` of 10 000 new rows on components fitted to the 2000-row X:
    fastnmf solves each row exactly (NNLS), scikit-learn iterates its solver with the
    components fixed. The error of the projection is tracked beside it."""

    params = [list(ESTIMATOR_SHAPES), list(ESTIMATOR_SOLVERS), list(LIBRARIES)]
    param_names = ["shape", "solver", "library"]

    def setup(self, shape, solver, library):
        m, n, k = ESTIMATOR_SHAPES[shape]
        X = _low_rank(m + TRANSFORM_ROWS, n, k)
        self.X_new = X[m:]
        _warm(library, solver=solver)
        self.model = _quiet(_estimator(library)(k, solver=solver, random_state=0).fit, X[:m])

    def time_transform_10000_rows(self, shape, solver, library):
        _quiet(self.model.transform, self.X_new)

    def track_transform_error(self, shape, solver, library):
        W = _quiet(self.model.transform, self.X_new)
        return float(np.linalg.norm(self.X_new - W @ self.model.components_))

    track_transform_error.unit = "‖X_new − WH‖_F"


class MiniBatchStream(_Heavy):
    """``MiniBatchNMF`` (batch_size=1024, defaults otherwise), fastnmf vs scikit-learn:
    ``fit`` on the whole stream (its own passes and early stopping), and one pass of
    ``partial_fit`` over consecutive 1024-row chunks; the reconstruction error of each
    model on the whole stream is tracked."""

    params = [list(STREAMS), list(LIBRARIES)]
    param_names = ["stream", "library"]
    timeout = 3600

    def setup(self, stream, library):
        m, n, self.k = STREAMS[stream]
        self.X = _low_rank(m, n, self.k)
        self.MiniBatchNMF = _estimator(library, minibatch=True)
        _warm(library, minibatch=True)

    def _model(self):
        return self.MiniBatchNMF(self.k, batch_size=STREAM_BATCH_SIZE, random_state=0)

    def _partial_fit_pass(self):
        model = self._model()
        for start in range(0, self.X.shape[0], STREAM_BATCH_SIZE):
            model.partial_fit(self.X[start : start + STREAM_BATCH_SIZE])
        return model

    def _error(self, model):
        W = model.transform(self.X)
        return float(np.linalg.norm(self.X - W @ model.components_))

    def time_fit(self, stream, library):
        _quiet(self._model().fit, self.X)

    def time_partial_fit_stream(self, stream, library):
        self._partial_fit_pass()

    def track_fit_reconstruction_err(self, stream, library):
        return float(_quiet(self._model().fit, self.X).reconstruction_err_)

    track_fit_reconstruction_err.unit = "‖X − WH‖_F"

    def track_partial_fit_stream_error(self, stream, library):
        return self._error(self._partial_fit_pass())

    track_partial_fit_stream_error.unit = "‖X − WH‖_F"
