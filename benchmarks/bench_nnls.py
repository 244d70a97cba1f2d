"""asv suite: batched NNLS against a loop of scipy.optimize.nnls (API.md §2).

A 500×50 non-negative A and 5000 right-hand sides built so that about half of the
constraints are active; ``track_max_objective_gap`` checks that speed is not bought
with accuracy (relative objective difference to scipy, worst column).
"""

import numpy as np
from scipy.optimize import nnls as scipy_nnls

import fastnmf


def _problem(m=500, k=50, r=5000, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.random((m, k))
    X = rng.random((k, r)) * (rng.random((k, r)) < 0.5)
    B = A @ X + 0.1 * rng.standard_normal((m, r))
    return A, B


class BatchedNNLS:
    params = [["bpp", "active_set", "cd"]]
    param_names = ["method"]
    number = 1
    repeat = (3, 5, 60.0)
    timeout = 600

    def setup(self, method):
        self.A, self.B = _problem()
        fastnmf.nnls(self.A, self.B[:, :10], method=method)  # compile / load the cache

    def time_nnls_5000_rhs(self, method):
        fastnmf.nnls(self.A, self.B, method=method)

    def track_max_objective_gap(self, method):
        X = fastnmf.nnls(self.A, self.B[:, :200], method=method)
        gaps = []
        for j in range(200):
            ref = np.linalg.norm(self.A @ scipy_nnls(self.A, self.B[:, j])[0] - self.B[:, j]) ** 2
            got = np.linalg.norm(self.A @ X[:, j] - self.B[:, j]) ** 2
            gaps.append((got - ref) / ref)
        return float(max(gaps))

    track_max_objective_gap.unit = "relative"


class ScipyNNLSLoop:
    """The baseline: a Python loop of scipy.optimize.nnls over the same 5000 columns."""

    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self):
        self.A, self.B = _problem()

    def time_scipy_loop_5000_rhs(self):
        for j in range(self.B.shape[1]):
            scipy_nnls(self.A, self.B[:, j])
