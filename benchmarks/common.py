"""Shared data and helpers of the asv suites and of ``compare.py``.

Nothing here is a benchmark (asv imports every module of this package and collects the
``time_``/``track_``/``mem_``/``peakmem_`` names, so helpers must not use those prefixes).
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# The dense workloads: "m x n, k" -> (m, n, k). The keys are parameter values of the
# asv suites, so they are part of the benchmark names' history: do not rename them.
SHAPES = {
    "2000x1000_k20": (2000, 1000, 20),
    "10000x2000_k30": (10000, 2000, 30),
}
DTYPES = ("float32", "float64")

# The sparse workloads: name -> (documents m, terms n, topics k, density).
SPARSE_SHAPES = {
    "2000x1000_d0.02_k10": (2000, 1000, 10, 0.02),
    "20000x10000_d0.005_k30": (20000, 10000, 30, 0.005),
}

# fastnmf variants: name -> keyword arguments of fastnmf.nmf.
FASTNMF_VARIANTS = {
    "hals": dict(solver="hals", loss="frobenius"),
    "mu_frobenius": dict(solver="mu", loss="frobenius"),
    "mu_kl": dict(solver="mu", loss="kl"),
    "anls_bpp": dict(solver="anls_bpp", loss="frobenius"),
    "anls_as": dict(solver="anls_as", loss="frobenius"),
    "als": dict(solver="als", loss="frobenius"),
    "gdcls": dict(solver="gdcls", loss="frobenius"),
}

# scikit-learn variants: name -> keyword arguments of sklearn.decomposition.NMF.
SKLEARN_VARIANTS = {
    "cd": dict(solver="cd", beta_loss="frobenius"),
    "mu_frobenius": dict(solver="mu", beta_loss="frobenius"),
    "mu_kl": dict(solver="mu", beta_loss="kullback-leibler"),
}

# The one-liner whose wall time in a fresh process is the user-visible compile cost.
FIRST_CALL_SNIPPET = "import fastnmf, numpy as np; fastnmf.nmf(np.random.rand(100,100), 5)"


def dense_data(shape_key, dtype, random_state=0):
    """Non-negative low-rank + 10% noise X of the given workload, in ``dtype``."""
    import fastnmf

    m, n, k = SHAPES[shape_key] if isinstance(shape_key, str) else shape_key
    X, _, _ = fastnmf.datasets.low_rank(m, n, k, noise=0.1, dtype=np.dtype(dtype), random_state=random_state)
    return X, k


def topic_counts(shape_key, dtype=np.float64, random_state=0):
    """A documents × terms CSR matrix of Poisson-like word counts from ``k`` topics.

    Each document draws a topic mixture (Dirichlet 0.1) and ``Poisson(length)`` words,
    each word from its topic's distribution over terms (Dirichlet 0.05); the mean
    length is set so that about ``density`` of the matrix is non-zero.
    """
    import scipy.sparse as sp

    m, n, k, density = SPARSE_SHAPES[shape_key] if isinstance(shape_key, str) else shape_key
    rng = np.random.default_rng(random_state)
    topics = np.cumsum(rng.dirichlet(np.full(n, 0.05), size=k), axis=1)
    mixtures = np.cumsum(rng.dirichlet(np.full(k, 0.1), size=m), axis=1)
    lengths = rng.poisson(1.02 * density * n, size=m)  # ~12% of the words repeat one
    docs = np.repeat(np.arange(m), lengths)
    topic = np.minimum((mixtures[docs] < rng.random(docs.size)[:, None]).sum(axis=1), k - 1)
    term = np.empty(docs.size, dtype=np.int64)
    u = rng.random(docs.size)
    for t in range(k):
        at = topic == t
        term[at] = np.minimum(np.searchsorted(topics[t], u[at]), n - 1)
    X = sp.csr_array((np.ones(docs.size, dtype=dtype), (docs, term)), shape=(m, n))
    X.sum_duplicates()
    return X, k


def initial_factors(X, k):
    """fastnmf's nndsvda ``(W0, H0)`` of X: the common starting point of every comparison."""
    import fastnmf

    res = fastnmf.nmf(X, k, max_iter=0, random_state=0)
    return res.W, res.H


def rank5_example(seed=0):
    """The 50×100 exactly rank-5 integer matrix ``xL @ xKer @ xR`` (copy of tests/naive.py)."""
    rng = np.random.default_rng(seed)
    xL = rng.integers(0, 11, (50, 5))
    xKer = rng.integers(0, 11, (5, 5))
    xR = rng.integers(0, 11, (5, 100))
    return (xL @ xKer @ xR).astype(np.float64)


def warm_jit(dtype, **kwargs):
    """Compile (or load from cache) the kernels a run with ``kwargs`` uses, for ``dtype``."""
    import fastnmf

    rng = np.random.default_rng(0)
    X = rng.random((60, 40)).astype(dtype) + 0.1
    fastnmf.nmf(X, 3, max_iter=1, **kwargs)


def frobenius_objective(X, W, H):
    """``0.5 ‖X − WH‖²_F`` computed exactly, in float64."""
    R = np.asarray(X, dtype=np.float64) - np.asarray(W, dtype=np.float64) @ np.asarray(H, dtype=np.float64)
    return 0.5 * float(np.einsum("ij,ij->", R, R))


def first_call_seconds(cold, repeats=1):
    """Wall seconds of ``python -c FIRST_CALL_SNIPPET`` in a fresh process.

    ``cold=True`` points NUMBA_CACHE_DIR at a fresh empty directory (everything compiles);
    ``cold=False`` uses the normal cache and runs the snippet once beforehand to fill it.
    Returns the best of ``repeats`` runs (a fresh cache directory for every cold run).
    """
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    best = float("inf")
    if not cold:
        subprocess.run([sys.executable, "-c", FIRST_CALL_SNIPPET], env=env, check=True)
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="fastnmf-numba-cache-") as cache_dir:
            if cold:
                env["NUMBA_CACHE_DIR"] = cache_dir
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", FIRST_CALL_SNIPPET], env=env, check=True)
            best = min(best, time.perf_counter() - start)
    return best
