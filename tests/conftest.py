"""Shared fixtures: seeded generators and the one tolerance table of the suite."""

import numpy as np
import pytest
from hypothesis import settings

# Every test is seeded (DESIGN.md §5), the property tests too: the same examples on every
# run, so that CI on a fresh clone cannot fail on a case no earlier run met.
settings.register_profile("seeded", derandomize=True)
settings.load_profile("seeded")

# Relative tolerances by dtype: kernel-vs-reference comparisons and looser ones for
# whole-run comparisons where round-off accumulates over iterations.
TOL = {
    np.dtype(np.float64): {"kernel": 1e-10, "run": 1e-7},
    np.dtype(np.float32): {"kernel": 1e-4, "run": 1e-3},
}


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def low_rank_matrix(m, n, k, seed=0, noise=0.0, dtype=np.float64):
    """Exactly (noise=0) or nearly rank-k non-negative data and its factors."""
    r = np.random.default_rng(seed)
    W = r.exponential(size=(m, k))
    H = r.exponential(size=(k, n))
    W[r.random(W.shape) < 0.3] = 0
    H[r.random(H.shape) < 0.3] = 0
    X = W @ H + noise * r.random((m, n))
    return X.astype(dtype), W, H
