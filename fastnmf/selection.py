"""Choosing the rank and judging solutions: consensus clustering and cross-validation.

``consensus`` runs NMF many times from random starts on one loaded X and measures how
stably the runs cluster the columns (or rows): the consensus matrix of Brunet et al.
(2004), its cophenetic correlation and the dispersion of Kim & Park (2007).
``select_rank`` surveys a range of ranks, by held-out error (``method="cv"``: a random
fraction of the entries is masked out of each fit and predicted) or by consensus
stability (``method="consensus"``).

References
----------
J.-P. Brunet, P. Tamayo, T. R. Golub and J. P. Mesirov, "Metagenes and molecular pattern
discovery using matrix factorization", PNAS 101(12), 2004.
H. Kim and H. Park, "Sparse non-negative matrix factorizations via alternating
non-negativity-constrained least squares for microarray data analysis",
Bioinformatics 23(12), 2007.
T. Hastie, R. Tibshirani and J. Friedman, The Elements of Statistical Learning, 2nd ed.,
§7.10 (the one-standard-error rule).
"""

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from . import _validation as v
from ._data import load
from ._init import SVD_INITS, share_sketch
from ._result import NMFResult
from ._solvers.warm import share_warm_sketch
from ._threading import thread_limits
from .nmf import _check_options, _fit_each, _fit_loaded, _warm_starts

__all__ = ["consensus", "select_rank", "ConsensusResult", "RankSelection", "TABLE_DTYPE"]

TABLE_DTYPE = np.dtype(
    [
        ("rank", np.int64),
        ("relative_error", np.float64),
        ("cv_error", np.float64),
        ("cv_error_std", np.float64),
        ("cophenetic", np.float64),
        ("dispersion", np.float64),
        ("seconds", np.float64),
    ]
)

AXES = ("columns", "rows")
METHODS = ("cv", "consensus")

# Default ceiling on the memory of the consensus matrix and its linkage (bytes).
MAX_MEMORY = 2 * 2**30
# Default number of columns (rows) the statistics are computed on with keep_matrix=False.
SAMPLE_SIZE = 2000
# Held-out entries scored per block (entries x rank), so no large temporary is formed.
_SCORE_BLOCK = 1 << 20

# Keyword arguments of ``nmf`` that the runs of ``consensus`` accept. ``init``, ``n_init``
# and ``prune`` are left out: consensus needs independent random starts, one per run.
_CONSENSUS_NMF_KWARGS = frozenset(
    {"loss", "tol", "target_error", "max_iter", "max_time", "l1_W", "l1_H", "l2_W", "l2_H",
     "missing", "progress", "callback", "n_threads"}
)
_CV_NMF_KWARGS = _CONSENSUS_NMF_KWARGS | {"init", "n_init", "prune"}


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConsensusResult:
    """What :func:`consensus` returns.

    Attributes
    ----------
    matrix : ndarray (n, n) of float64, or None
        Consensus (co-clustering) matrix: entry (i, j) is the fraction of runs that put
        items i and j in the same cluster (1 on the diagonal). None with
        ``keep_matrix=False``.
    cophenetic : float
        Cophenetic correlation coefficient (Brunet et al. 2004): the Pearson
        correlation between the distances ``1 − matrix`` and the cophenetic distances of
        their average-linkage tree. 1 for a perfectly stable clustering (also when every
        distance is equal, where the correlation itself is undefined: the tree then
        represents the distances exactly).
    dispersion : float
        Dispersion coefficient (Kim & Park 2007), ``mean(4 (matrix − ½)²)`` over all
        entries: 1 when every entry is 0 or 1, lower as the runs disagree.
    labels : ndarray (n,) of int64
        Consensus clusters: average-linkage clustering of ``1 − matrix`` cut at ``rank``
        clusters, numbered 0, 1, ... in order of first appearance.
    best : NMFResult
        The run with the lowest objective.
    n_runs : int
    rank : int
    axis : {"columns", "rows"}
        What was clustered: the columns of X (by the largest entry of each column of H)
        or its rows (by the largest entry of each row of W).
    run_labels : ndarray (n_runs, n) of int
        The label of every item in every run, from which the matrix is built
        (O(n·n_runs) memory).
    objectives : ndarray (n_runs,)
        Final objective of every run (``best`` is the run at its minimum).
    sample : ndarray of int, or None
        With ``keep_matrix=False`` and more than ``sample_size`` items: the sorted
        indices of the items ``cophenetic``, ``dispersion`` and the linkage were computed
        on. None when they were computed on every item.
    seconds : float
        Wall time of the whole call.
    """

    matrix: object
    cophenetic: float
    dispersion: float
    labels: np.ndarray
    best: NMFResult
    n_runs: int
    rank: int
    axis: str
    run_labels: np.ndarray
    objectives: np.ndarray
    sample: object
    seconds: float

    def connectivity(self, items=None):
        """The consensus matrix of some items, rebuilt from ``run_labels``.

        Parameters
        ----------
        items : array-like of int, optional
            Indices of the columns (rows) to include; all of them by default.

        Returns
        -------
        ndarray (len(items), len(items)) of float64
        """
        labels = self.run_labels if items is None else self.run_labels[:, np.asarray(items)]
        return _consensus_matrix(labels)


@dataclass(frozen=True, eq=False)
class RankSelection:
    """What :func:`select_rank` returns.

    Attributes
    ----------
    table : ndarray
        Structured array, one row per rank in increasing order, with fields ``rank``,
        ``relative_error``, ``cv_error``, ``cv_error_std``, ``cophenetic``,
        ``dispersion`` and ``seconds`` (:data:`TABLE_DTYPE`); NaN where the method does
        not compute a field.
    best_rank : int
        The rank the method's rule picks (see :func:`select_rank`).
    method : {"cv", "consensus"}
    rule : str
        One line saying how ``best_rank`` was chosen.
    n_runs : int
        Splits (cv) or runs per rank (consensus).
    warm_start : bool
    cv_errors : ndarray (n_ranks, n_runs) or None
        Held-out error of every rank on every split (cv); None for consensus.
    consensus : tuple of ConsensusResult, or None
        One per rank (their ``matrix`` is None: see ``select_rank``); None for cv.
    """

    table: np.ndarray
    best_rank: int
    method: str
    rule: str
    n_runs: int
    warm_start: bool
    cv_errors: object = None
    consensus: object = None

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (one row per rank).

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "RankSelection.to_pandas() needs pandas, which is not installed: "
                "pip install pandas (or use the NumPy structured array .table)."
            ) from exc
        return pd.DataFrame({name: self.table[name] for name in TABLE_DTYPE.names})

    def plot(self, **kwargs):
        """Plot the survey with :func:`fastnmf.plotting.rank_survey` (needs matplotlib).

        Parameters
        ----------
        **kwargs
            Passed on (``ax=``, ``path=``, ...).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting import rank_survey

        return rank_survey(self, **kwargs)

    def format_table(self):
        """The table as aligned text, one line per rank, NaN shown as ``-``.

        Returns
        -------
        str
        """
        header = ("rank", "rel_error", "cv_error", "cv_std", "cophenetic", "dispersion", "seconds")
        lines = ["  ".join(f"{h:>10}" for h in header)]
        for row in self.table:
            cells = [f"{int(row['rank']):>10d}"]
            for name in TABLE_DTYPE.names[1:]:
                value = float(row[name])
                cells.append(f"{'-':>10}" if math.isnan(value) else f"{value:>10.4g}")
            lines.append("  ".join(cells))
        return "\n".join(lines)

    def __str__(self):
        return f"{self.format_table()}\nbest rank: {self.best_rank} ({self.rule})"


# --- consensus ------------------------------------------------------------------------------


def consensus(
    X,
    rank,
    *,
    n_runs=30,
    axis="columns",
    solver="hals",
    random_state=None,
    keep_matrix=True,
    mask=None,
    sample_size=SAMPLE_SIZE,
    max_memory=MAX_MEMORY,
    **nmf_kwargs,
):
    """Consensus clustering over NMF runs from random starts (Brunet et al. 2004).

    Each run factors X from its own random init; it assigns every column of X to the
    component with the largest entry in that column of H (``axis="rows"``: every row to
    the largest entry of its row of W). The consensus matrix counts how often two items
    share a cluster; its cophenetic correlation and dispersion measure how stable the
    clustering at this rank is (1 = perfectly stable).

    X is validated and converted once for all runs. With a Frobenius loss, runs advance
    together in groups of up to ``128 // rank``, one thread each, and one pass over X
    serves the products of the whole group (at small rank a product is bound by
    reading X); each run still stops by its own rules and gives what it gives alone, up
    to rounding. (A ``callback``, ``progress`` or ``max_time`` makes the runs go one by
    one.) A group's factors are dropped as soon as its labels are taken (only the best
    run's are kept): memory is O(n·n_runs) for the labels, plus the n×n matrix only when
    it is asked for, plus one group's factors.

    Parameters
    ----------
    X : array-like or scipy.sparse (m, n)
        Non-negative data, as for :func:`fastnmf.nmf`.
    rank : int
        Number of components, which is also the number of clusters.
    n_runs : int
        Number of runs. Each starts from a random init drawn from ``random_state``
        (consensus needs diverse runs: an SVD-based init would repeat one run).
    axis : {"columns", "rows"}
        Cluster the n columns of X (by H) or its m rows (by W). Below, n is the number of
        items clustered.
    solver : str
        One of ``fastnmf.SOLVERS``.
    random_state : None, int or numpy.random.Generator
        Seed of the random inits (and of the sample, see ``keep_matrix``).
    keep_matrix : bool
        Keep the n×n consensus matrix in the result. With False, ``matrix`` is None and
        memory stays O(n·n_runs): ``cophenetic``, ``dispersion`` and the linkage are
        computed on a uniform random sample of ``sample_size`` items (on every item, with
        exactly the results of ``keep_matrix=True``, when n ≤ ``sample_size``); the items
        outside the sample are labelled by the sampled cluster they co-cluster with most
        often on average.
    mask : bool array-like or scipy.sparse (m, n), optional
        True where X is observed, as for :func:`fastnmf.nmf`.
    sample_size : int
        Items the statistics are computed on with ``keep_matrix=False``.
    max_memory : int or float
        Ceiling in bytes (default 2 GiB) on the estimated memory of the consensus matrix
        and its linkage, about ``20·n² + 8·n·n_runs·rank`` bytes (the float64 n×n matrix,
        three condensed distance vectors for the linkage and the cophenetic
        correlation, and the one-hot labels the matrix is built from): n ≈ 10 000 items
        at the default. A larger estimate raises ValueError
        before any run.
    **nmf_kwargs
        Further options of every run: ``loss``, ``tol``, ``target_error``,
        ``max_iter``, ``max_time`` (per run), ``l1_W``, ``l1_H``, ``l2_W``, ``l2_H``,
        ``missing``, ``progress``, ``callback``, ``n_threads``.

    Returns
    -------
    ConsensusResult

    Raises
    ------
    ValueError, TypeError
        For invalid data or arguments; ValueError when the consensus matrix would
        exceed ``max_memory`` (the message names ``keep_matrix=False``).

    Notes
    -----
    Cophenetic correlation: Brunet et al. (2004); dispersion: Kim & Park (2007). An item
    whose column of H (row of W) is entirely zero in a run is labelled 0 there (argmax).

    Examples
    --------
    >>> import numpy as np, fastnmf
    >>> rng = np.random.default_rng(0)
    >>> H = np.kron(np.eye(3), np.ones((1, 10)))          # 3 groups of 10 columns
    >>> X = rng.random((40, 3)) @ H + 0.01 * rng.random((40, 30))
    >>> c = fastnmf.consensus(X, 3, n_runs=10, random_state=0)
    >>> c.cophenetic > 0.95, len(set(c.labels))
    (True, 3)
    """
    start = time.perf_counter()
    v.check_choice("axis", axis, AXES)
    n_runs = v.check_int("n_runs", n_runs, 1)
    keep_matrix = v.check_bool("keep_matrix", keep_matrix)
    sample_size = v.check_int("sample_size", sample_size, 2)
    max_memory = v.check_nonnegative_float("max_memory", max_memory, strictly_positive=True)
    _check_kwargs("consensus", nmf_kwargs, _CONSENSUS_NMF_KWARGS)
    missing = nmf_kwargs.pop("missing", None)
    options = _check_options(solver=solver, init="random", **nmf_kwargs)
    rng = v.check_random_state(random_state)
    with thread_limits(options.n_threads):
        data = load(X, mask, missing, options.beta)
        rank = v.check_rank(rank, data.shape, svd_init=False)
        return _consensus_on(
            data, rank, options, rng, n_runs, axis, keep_matrix, sample_size, max_memory, start
        )


def _consensus_on(
    data, rank, options, rng, n_runs, axis, keep_matrix, sample_size, max_memory, start
):
    """``consensus`` on loaded data (shared by the ranks of ``select_rank``)."""
    n = data.shape[1] if axis == "columns" else data.shape[0]
    items = n if keep_matrix else min(n, sample_size)
    _check_memory(items, n, n_runs, rank, axis, keep_matrix, sample_size, max_memory)

    run_labels = np.empty((n_runs, n), dtype=np.int32)
    objectives = np.empty(n_runs)
    best = None
    for run, res in enumerate(_fit_each(data, rank, options, rng, n_runs)):
        # Each run labels an item by its largest loading (Brunet et al. 2004).
        if axis == "columns":
            run_labels[run] = np.argmax(res.H, axis=0)
        else:
            run_labels[run] = np.argmax(res.W, axis=1)
        objectives[run] = res.objective
        if best is None or res.objective < best.objective:
            best = res
        del res  # a run's factors are not kept beyond its labels

    sample = None
    if items < n:
        sample = np.sort(rng.choice(n, size=items, replace=False))
        matrix = _consensus_matrix(run_labels[:, sample])
    else:
        matrix = _consensus_matrix(run_labels)
    cophenetic, labels = _cophenetic_and_clusters(matrix, rank)
    dispersion = _dispersion(matrix)
    if sample is not None:
        labels = _extend_labels(run_labels, sample, labels)
    return ConsensusResult(
        matrix=matrix if keep_matrix else None,
        cophenetic=cophenetic,
        dispersion=dispersion,
        labels=labels,
        best=best,
        n_runs=n_runs,
        rank=rank,
        axis=axis,
        run_labels=run_labels,
        objectives=objectives,
        sample=sample,
        seconds=time.perf_counter() - start,
    )


def consensus_bytes(n, n_runs, rank):
    """Estimated peak bytes of a consensus matrix over ``n`` items and its linkage.

    The float64 n×n matrix (8n²), three condensed distance vectors (distances, the copy
    the average linkage works on, cophenetic distances: 4n² each) and the one-hot labels
    the matrix is built from (8·n·n_runs·rank).

    Parameters
    ----------
    n, n_runs, rank : int

    Returns
    -------
    int
    """
    return 20 * n * n + 8 * n * n_runs * rank


def _check_memory(items, n, n_runs, rank, axis, keep_matrix, sample_size, max_memory):
    need = consensus_bytes(items, n_runs, rank)
    if need <= max_memory:
        return
    size = f"about {need / 2**30:.2f} GiB, more than max_memory={max_memory / 2**30:.2f} GiB"
    if keep_matrix:
        raise ValueError(
            f"the consensus matrix of {n} {axis} ({n}x{n}) and its linkage need {size}; pass "
            f"keep_matrix=False to compute cophenetic and dispersion on a random sample of "
            f"sample_size={sample_size} {axis} in O(n*n_runs) memory, or raise max_memory."
        )
    raise ValueError(
        f"sample_size={sample_size} needs {size} for the sampled consensus matrix; lower "
        "sample_size or raise max_memory."
    )


def _consensus_matrix(run_labels):
    """Co-clustering frequencies from the label vectors (n_runs, n).

    The counts ``Σ_r [l_r(i) = l_r(j)]`` are the Gram matrix of the runs' one-hot label
    matrices side by side (one symmetric BLAS product, exact integers in float64),
    divided by the number of runs at the end.
    """
    n_runs, n = run_labels.shape
    width = int(run_labels.max(initial=0)) + 1
    onehot = np.zeros((n, n_runs * width))
    offsets = np.arange(n_runs) * width
    onehot[np.arange(n)[:, None], run_labels.T + offsets] = 1.0
    matrix = onehot @ onehot.T
    del onehot
    matrix /= n_runs
    return matrix


def _cophenetic_and_clusters(matrix, rank):
    """Cophenetic correlation (Brunet et al. 2004) of ``1 − matrix`` under average
    linkage, and the tree cut at ``rank`` clusters."""
    from scipy.cluster.hierarchy import cophenet, fcluster, linkage
    from scipy.spatial.distance import squareform

    n = matrix.shape[0]
    if n == 1:
        return 1.0, np.zeros(1, dtype=np.int64)
    d = squareform(matrix, force="tovector", checks=False)  # a condensed copy
    np.subtract(1.0, d, out=d)
    np.maximum(d, 0.0, out=d)  # round-off
    Z = linkage(d, method="average")
    labels = _first_appearance(fcluster(Z, t=rank, criterion="maxclust"))
    c = cophenet(Z)
    del Z
    # Pearson correlation, centred in place (no further condensed temporaries).
    d -= d.mean()
    c -= c.mean()
    dd, cc = float(np.dot(d, d)), float(np.dot(c, c))
    if dd <= 1e-24 * d.size or cc <= 1e-24 * c.size:
        # Every distance equal: the average-linkage tree reproduces them exactly.
        return 1.0, labels
    return float(np.clip(np.dot(d, c) / math.sqrt(dd * cc), -1.0, 1.0)), labels


def _dispersion(matrix):
    """Kim & Park (2007): ``ρ = (1/n²) Σ_ij 4 (C_ij − ½)²`` = 4(ΣC² − ΣC)/n² + 1."""
    n2 = matrix.size
    flat = matrix.reshape(-1)
    return float(np.clip(4.0 * (np.dot(flat, flat) - flat.sum()) / n2 + 1.0, 0.0, 1.0))


def _first_appearance(labels):
    """Relabel to 0, 1, ... in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


def _extend_labels(run_labels, sample, sample_labels):
    """Labels of all items from the clusters of a sample: each item joins the sampled
    cluster whose members it shares a run cluster with most often on average. The tables
    ``T_r[c, a]`` (members of cluster c with label a in run r) make this O(n·n_runs·k)."""
    n_runs, n = run_labels.shape
    n_clusters = int(sample_labels.max()) + 1
    width = int(run_labels.max(initial=0)) + 1
    sizes = np.bincount(sample_labels, minlength=n_clusters).astype(np.float64)
    scores = np.zeros((n, n_clusters))
    for r in range(n_runs):
        table = np.zeros((n_clusters, width))
        np.add.at(table, (sample_labels, run_labels[r, sample]), 1.0)
        scores += table[:, run_labels[r]].T
    labels = np.argmax(scores / sizes, axis=1)
    labels[sample] = sample_labels
    return labels.astype(np.int64)


# --- select_rank ----------------------------------------------------------------------------


def select_rank(
    X,
    ranks,
    *,
    method="cv",
    n_runs=3,
    holdout=0.05,
    random_state=None,
    warm_start=False,
    solver="hals",
    mask=None,
    axis="columns",
    **nmf_kwargs,
):
    """Survey a range of ranks and pick one, by held-out error or by consensus.

    Parameters
    ----------
    X : array-like or scipy.sparse (m, n)
        Non-negative data, as for :func:`fastnmf.nmf`.
    ranks : iterable of int or range
        Ranks to try, each an integer in [1, min(m, n)]; surveyed in increasing order,
        duplicates dropped.
    method : {"cv", "consensus"}
        ``"cv"``: per split, hide a random fraction ``holdout`` of the entries, fit on
        the rest (through ``mask``) and score the relative error on the hidden ones,
        ``‖held-out X − WH‖ / ‖held-out X‖``. The same ``n_runs`` splits serve every rank.
        ``"consensus"``: :func:`consensus` with ``n_runs`` runs at every rank.
    n_runs : int
        Splits (cv) or runs per rank (consensus; 20–50 are usual there).
    holdout : float in (0, 1)
        Fraction of the entries hidden per split (cv). Each candidate entry is hidden
        independently with this probability (at least one is hidden, one kept).
        Candidates are all m·n positions, for a sparse X too (its zeros are data); with
        ``mask``, the observed entries; with ``missing="zeros"``, the stored entries.
    random_state : None, int or numpy.random.Generator
        Seed of the splits and of the fits' random numbers.
    warm_start : bool
        cv only: along each split, rank k' starts from the factors fitted at the previous
        rank k plus ``k' − k`` new components drawn small and random (on the scale of the
        residual), so the first iterations fit the new component to what rank k left
        unexplained. The first rank starts from ``init`` (default "nndsvda"). Saves time
        when the ranks are close; the table stays within run-to-run tolerance of the
        cold-started one. Consensus needs independent random starts, so
        ``method="consensus"`` rejects it.
    solver : str
        One of ``fastnmf.SOLVERS``.
    mask : bool array-like or scipy.sparse (m, n), optional
        True where X is observed; only observed entries are fitted or held out.
    axis : {"columns", "rows"}
        What consensus clusters (method="consensus").
    **nmf_kwargs
        Further options of every fit (``loss``, ``tol``, ``max_iter``, penalties,
        ``missing``, ``n_threads``, ...; for cv also ``init``, ``n_init``, ``prune``).

    Returns
    -------
    RankSelection
        ``table`` (one row per rank; see :data:`TABLE_DTYPE`), ``best_rank``,
        ``to_pandas()``, ``plot()``. For cv, ``relative_error`` is the mean over splits
        of the fit's error on its training entries, ``cv_error`` the mean held-out error
        and ``cv_error_std`` its standard deviation over splits (ddof=1; NaN for one
        split). For consensus, ``relative_error`` is that of the best run and
        ``cophenetic``, ``dispersion`` those of :func:`consensus` with
        ``keep_matrix=False`` (exact up to 2000 columns, sampled beyond). ``seconds``
        is the wall time spent on each rank.

    Notes
    -----
    How ``best_rank`` is chosen:

    - cv, the one-standard-error rule (Hastie et al., §7.10): the smallest rank whose
      mean held-out error is at most the minimum mean plus the standard error
      (``cv_error_std / √n_runs``) at that minimum. Held-out error typically falls
      steeply up to the right rank and then creeps up or stays flat as the extra
      components fit noise; the rule prefers the simpler model among those the splits
      cannot tell apart. With one split it is the argmin.
    - consensus, the rule of Brunet et al. (2004) as the R NMF package states it: the
      smallest rank at which the cophenetic correlation starts to fall (is higher than
      at the next surveyed rank); when it never falls, the largest rank. Rank 1 is trivially
      stable (cophenetic 1) and is left out of the rule unless it is the only rank.

    Above the data's rank, an unregularised fit can give a component large entries on
    the row and column of a held-out entry, which nothing observed constrains: the
    held-out error of that split then jumps (to 1 or more). That is the overfitting cv
    exists to expose and it only raises the errors of those ranks; a small ridge
    penalty (``l2_W=l2_H=0.01`` in the units of X) suppresses it if a smooth curve is
    wanted.

    Memory (cv): one split at a time, each an m×n boolean mask plus the loaded training
    data (for a dense X with most entries observed, a copy of X with the held-out
    entries zeroed).

    Examples
    --------
    Four planted components plus zero-mean noise (``low_rank``'s own noise is
    half-normal: its mean is one more, constant, component):

    >>> import numpy as np, fastnmf
    >>> rng = np.random.default_rng(0)
    >>> X, _, _ = fastnmf.datasets.low_rank(60, 50, 4, random_state=0)
    >>> X = np.clip(X + 0.05 * X.std() * rng.standard_normal(X.shape), 0, None)
    >>> s = fastnmf.select_rank(X, range(2, 8), random_state=0)
    >>> s.best_rank
    4
    >>> print(s)  # doctest: +SKIP
          rank   rel_error    cv_error      cv_std  cophenetic  dispersion     seconds
             2  ...
    """
    v.check_choice("method", method, METHODS)
    n_runs = v.check_int("n_runs", n_runs, 1)
    warm_start = v.check_bool("warm_start", warm_start)
    if method == "consensus" and warm_start:
        raise ValueError(
            "warm_start=True applies to method='cv' only: consensus needs independent random "
            "starts, and chaining runs across ranks would overstate their stability."
        )
    if method == "cv":
        holdout = _check_holdout(holdout)
    allowed = _CV_NMF_KWARGS if method == "cv" else _CONSENSUS_NMF_KWARGS
    _check_kwargs(f"select_rank(method={method!r})", nmf_kwargs, allowed)
    if not isinstance(nmf_kwargs.get("init", ""), str):
        raise ValueError(
            "init must be the name of an init method for select_rank (it serves every rank), "
            "not factors; choose one of 'nndsvd', 'nndsvda', 'nndsvdar', 'random'."
        )
    missing = nmf_kwargs.pop("missing", None)
    rng = v.check_random_state(random_state)
    if method == "cv":
        options = _check_options(solver=solver, **nmf_kwargs)
        return _cv_survey(X, ranks, options, rng, n_runs, holdout, warm_start, mask, missing)
    v.check_choice("axis", axis, AXES)
    options = _check_options(solver=solver, init="random", **nmf_kwargs)
    return _consensus_survey(X, ranks, options, rng, n_runs, mask, missing, axis)


def _check_kwargs(where, kwargs, allowed):
    unknown = sorted(set(kwargs) - allowed)
    if not unknown:
        return
    hint = ""
    if "consensus" in where and set(unknown) & {"init", "n_init", "prune"}:
        hint = " (every consensus run starts from its own random init: init, n_init and prune do not apply)"
    raise TypeError(
        f"{where} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}{hint}; "
        f"accepted nmf options: {', '.join(sorted(allowed))}."
    )


def _check_holdout(holdout):
    if isinstance(holdout, (bool, np.bool_)) or not isinstance(holdout, numbers.Real):
        raise TypeError(f"holdout must be a real number in (0, 1), got {holdout!r}.")
    holdout = float(holdout)
    if not 0.0 < holdout < 1.0:
        raise ValueError(
            f"holdout must be in (0, 1) (the fraction of entries hidden per split), got {holdout}."
        )
    return holdout


def check_ranks(ranks, shape):
    """Validated ranks: a sorted array of distinct integers in [1, min(shape)].

    Parameters
    ----------
    ranks : iterable of int or range
    shape : tuple (m, n)

    Returns
    -------
    ndarray of int64
    """
    if isinstance(ranks, (str, bytes)) or not hasattr(ranks, "__iter__"):
        raise TypeError(
            f"ranks must be an iterable of integers such as range(2, 11) or [2, 4, 8], got "
            f"{ranks!r} ({type(ranks).__name__}); for a single rank pass [{ranks!r}]."
        )
    values = list(np.asarray(ranks).ravel()) if isinstance(ranks, np.ndarray) else list(ranks)
    if not values:
        raise ValueError("ranks is empty; pass at least one rank, e.g. range(2, 11).")
    checked = []
    for r in values:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Integral):
            raise TypeError(f"ranks must hold integers, got {r!r} ({type(r).__name__}).")
        if r < 1:
            raise ValueError(f"ranks must be >= 1, got {int(r)}.")
        checked.append(int(r))
    top = min(shape)
    if max(checked) > top:
        raise ValueError(
            f"ranks must be <= min(m, n)={top} for X with shape {tuple(shape)}, got "
            f"{max(checked)}; lower the largest rank."
        )
    return np.unique(checked).astype(np.int64)


def _empty_table(ranks):
    table = np.zeros(len(ranks), dtype=TABLE_DTYPE)
    table["rank"] = ranks
    for name in TABLE_DTYPE.names[1:]:
        table[name] = np.nan
    return table


def _consensus_survey(X, ranks, options, rng, n_runs, mask, missing, axis):
    with thread_limits(options.n_threads):
        data = load(X, mask, missing, options.beta)
        ranks = check_ranks(ranks, data.shape)
        if _warm_starts(options):
            share_warm_sketch(data, ranks)  # one sketch for every rank's warm starts
        table = _empty_table(ranks)
        results = []
        for i, k in enumerate(ranks):
            start = time.perf_counter()
            c = _consensus_on(
                data, int(k), options, rng, n_runs, axis, False, SAMPLE_SIZE, MAX_MEMORY, start
            )
            results.append(c)
            table["relative_error"][i] = c.best.relative_error
            table["cophenetic"][i] = c.cophenetic
            table["dispersion"][i] = c.dispersion
            table["seconds"][i] = time.perf_counter() - start
    best, rule = _best_by_cophenetic(table)
    return RankSelection(
        table=table, best_rank=best, method="consensus", rule=rule, n_runs=n_runs,
        warm_start=False, consensus=tuple(results),
    )


def _best_by_cophenetic(table):
    """Brunet et al. (2004): the smallest rank at which the cophenetic correlation starts
    decreasing (is above the next rank's); without a decrease, the last (highest) rank.
    Rank 1 is left out unless it is alone."""
    ranks, coph = table["rank"], table["cophenetic"]
    keep = ranks > 1 if (ranks > 1).any() else np.ones(len(ranks), bool)
    ranks, coph = ranks[keep], coph[keep]
    falls = np.flatnonzero(coph[1:] < coph[:-1])
    if falls.size:
        rule = "smallest rank at which the cophenetic correlation starts to fall (Brunet et al. 2004)"
        return int(ranks[falls[0]]), rule
    return int(ranks[-1]), "the cophenetic correlation never falls over these ranks: the largest rank"


def _best_by_cv(table, n_runs):
    """The one-standard-error rule on the mean held-out error."""
    cv, std = table["cv_error"], table["cv_error_std"]
    i = int(np.nanargmin(cv))
    se = 0.0 if n_runs < 2 or not np.isfinite(std[i]) else float(std[i]) / math.sqrt(n_runs)
    within = np.flatnonzero(cv <= cv[i] + se)
    k = int(table["rank"][within[0]])
    if n_runs < 2:
        return k, "lowest held-out error (one split)"
    return k, "smallest rank within one standard error of the lowest held-out error"


# --- cross-validation -----------------------------------------------------------------------


def _cv_survey(X, ranks, options, rng, n_runs, holdout, warm_start, mask, missing):
    v.check_missing(missing, X, mask)
    with thread_limits(options.n_threads):
        # X is converted (and, without a mask, validated) once for all splits.
        Xc = v.as_csr(X) if v.is_sparse(X) else v.as_dense_2d(X)
        shape = Xc.shape
        if mask is not None:
            mask = v.check_mask(mask, shape)  # None when every entry is observed
        if mask is None:
            if v.is_sparse(Xc):
                v.check_sparse_values("X", Xc)
            else:
                v.check_values("X", Xc)
        ranks = check_ranks(ranks, shape)
        splitter = _Splitter(Xc, mask, missing, holdout, options.beta)
        # Splits and fits draw from separate streams: the same random_state gives the
        # same splits whatever the fits consume (warm or cold, any solver).
        split_rng, fit_rng = (np.random.default_rng(s) for s in rng.integers(2**63 - 1, size=2))
        n_ranks = len(ranks)
        train_error = np.zeros((n_ranks, n_runs))
        cv_errors = np.zeros((n_ranks, n_runs))
        seconds = np.zeros(n_ranks)
        for split in range(n_runs):
            data, held = splitter.split(split_rng)
            rows, cols, values = held
            held_norm = _held_norm(values, splitter, len(rows))
            if not warm_start and options.init in SVD_INITS:
                share_sketch(data, ranks, fit_rng)  # one range sketch for every rank's init
            previous = None
            for i, k in enumerate(ranks):
                start = time.perf_counter()
                init = None
                if warm_start and previous is not None:
                    init = _extend_factors(previous, int(k), data, fit_rng)
                res = _fit_loaded(data, int(k), options, fit_rng, init=init)
                squared = _held_sqerr(res.W, res.H, rows, cols, values)
                cv_errors[i, split] = math.sqrt(squared) / held_norm
                train_error[i, split] = res.relative_error
                seconds[i] += time.perf_counter() - start
                previous = res if warm_start else None
            del data
    table = _empty_table(ranks)
    table["relative_error"] = train_error.mean(axis=1)
    table["cv_error"] = cv_errors.mean(axis=1)
    table["cv_error_std"] = cv_errors.std(axis=1, ddof=1) if n_runs > 1 else np.nan
    table["seconds"] = seconds
    best, rule = _best_by_cv(table, n_runs)
    return RankSelection(
        table=table, best_rank=best, method="cv", rule=rule, n_runs=n_runs,
        warm_start=warm_start, cv_errors=cv_errors,
    )


class _Splitter:
    """Draws the held-out entries of one split and loads the training data.

    Candidates: every position (no mask), the observed positions (``mask``), or the
    stored entries (``missing="zeros"``). ``split(rng)`` returns the loaded training data
    and ``(rows, cols, values)`` of the held-out entries.
    """

    def __init__(self, X, mask, missing, holdout, beta):
        self.X, self.mask, self.missing, self.p, self.beta = X, mask, missing, holdout, beta
        self.sparse = v.is_sparse(X)
        m, n = X.shape
        if missing == "zeros":
            self.n_candidates = X.nnz
        elif mask is None:
            self.n_candidates = m * n
        else:
            self.n_candidates = mask.nnz if v.is_sparse(mask) else int(np.count_nonzero(mask))
        if self.n_candidates < 2:
            raise ValueError(
                f"cross-validation needs at least 2 observed entries to hold one out, X has "
                f"{self.n_candidates}."
            )

    def split(self, rng):
        if self.missing == "zeros":
            return self._split_stored(rng)
        if self.mask is not None and v.is_sparse(self.mask):
            return self._split_sparse_mask(rng)
        return self._split_dense(rng)

    def _draw(self, rng, size):
        """Bernoulli(p) over ``size`` candidates, with at least one hidden and one kept."""
        held = rng.random(size) < self.p
        count = int(np.count_nonzero(held))
        if count == 0:
            held[rng.integers(size)] = True
        elif count == size:
            held[rng.integers(size)] = False
        return held

    def _split_dense(self, rng):
        """Held-out positions as a dense bool array, drawn a block of rows at a time."""
        m, n = self.X.shape
        held = np.empty((m, n), dtype=np.bool_)
        step = max(1, (1 << 20) // n)
        for r0 in range(0, m, step):
            r1 = min(m, r0 + step)
            np.less(rng.random((r1 - r0, n)), self.p, out=held[r0:r1])
        if self.mask is not None:
            held &= self.mask
        count = int(np.count_nonzero(held))
        if count == 0 or count == self.n_candidates:  # tiny X: fix up as _draw does
            pool = self.mask if self.mask is not None else np.ones((m, n), bool)
            candidates = np.flatnonzero(pool)
            flat = held.reshape(-1)
            flat[candidates[rng.integers(candidates.size)]] = count == 0
        rows, cols = np.nonzero(held)
        np.logical_not(held, out=held)
        train = held if self.mask is None else (held & self.mask)
        values = self._values(rows, cols)
        return load(self.X, train, None, self.beta), (rows, cols, values)

    def _split_sparse_mask(self, rng):
        import scipy.sparse

        M = self.mask
        m, n = M.shape
        held = self._draw(rng, M.nnz)
        mrows = np.repeat(np.arange(m), np.diff(M.indptr))
        rows, cols = mrows[held], M.indices[held]
        keep = ~held
        train = scipy.sparse.csr_array(
            (np.ones(int(keep.sum()), dtype=np.bool_), (mrows[keep], M.indices[keep])), shape=(m, n)
        )
        values = self._values(rows, cols)
        return load(self.X, train, None, self.beta), (rows, cols, values)

    def _split_stored(self, rng):
        """missing="zeros": hold out stored entries; train on the others (still sparse)."""
        import scipy.sparse

        X = self.X
        m, n = X.shape
        held = self._draw(rng, X.nnz)
        xrows = np.repeat(np.arange(m), np.diff(X.indptr))
        keep = ~held
        indptr = np.concatenate(([0], np.cumsum(np.bincount(xrows[keep], minlength=m))))
        train = scipy.sparse.csr_array((X.data[keep], X.indices[keep], indptr), shape=(m, n))
        held_values = X.data[held]
        return load(train, None, "zeros", self.beta), (xrows[held], X.indices[held], held_values)

    def _values(self, rows, cols):
        """X at the held-out positions (checked when X was not validated as a whole)."""
        X = self.X
        if not self.sparse:
            values = X[rows, cols]
        else:
            # Canonical CSR: the stored keys row*n + col are sorted.
            n = X.shape[1]
            values = np.zeros(len(rows), dtype=X.dtype)
            if X.nnz:
                row_of = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
                keys = row_of * n + X.indices
                want = rows.astype(np.int64) * n + cols
                pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
                hit = keys[pos] == want
                values[hit] = X.data[pos[hit]]
        if self.mask is not None:  # entries outside a mask were never validated
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"X contains {int(bad.sum())} negative, NaN or infinite observed entries "
                    f"(first at {(int(rows[i]), int(cols[i]))}); NMF needs non-negative data "
                    "where the mask is True."
                )
        return values


def _held_norm(values, splitter, n_held):
    """‖held-out X‖, or when every held-out entry is 0, the norm such entries would
    have on average (‖observed X‖·√(n_held / n_candidates)), so the error stays relative."""
    norm = math.sqrt(float(np.dot(values.astype(np.float64), values.astype(np.float64))))
    if norm > 0:
        return norm
    X = splitter.X
    total = X.data if splitter.sparse else X
    sq = float(np.vdot(total, total)) if splitter.mask is None else 0.0
    fallback = math.sqrt(sq * n_held / splitter.n_candidates) if sq > 0 else 0.0
    return fallback if fallback > 0 else 1.0


def _held_sqerr(W, H, rows, cols, values):
    """``Σ (X_ij − (WH)_ij)²`` over the held-out entries, in blocks (float64)."""
    k = W.shape[1]
    Ht = np.ascontiguousarray(H.T)
    step = max(1, _SCORE_BLOCK // max(k, 1))
    total = 0.0
    for s in range(0, len(rows), step):
        r, c = rows[s : s + step], cols[s : s + step]
        pred = np.einsum("ij,ij->i", W[r].astype(np.float64), Ht[c].astype(np.float64))
        diff = values[s : s + step].astype(np.float64) - pred
        total += float(np.dot(diff, diff))
    return total


def _extend_factors(previous, rank, data, rng):
    """Warm start at ``rank`` from ``previous`` (a fit at a lower rank): its factors plus
    new components small and random, on the scale of its residual (per observed entry),
    so that the first update of each new component fits what the old ones leave."""
    W, H = previous.W, previous.H
    extra = rank - W.shape[1]
    residual_rms = previous.relative_error * math.sqrt(data.sqnorm / max(data.n_observed, 1))
    base = math.sqrt(max(data.total, 0.0) / max(data.n_observed, 1) / rank)
    scale = math.sqrt(max(residual_rms, 1e-3 * base * base) / extra) if base > 0 else 0.0
    m, n = data.shape
    W_new = np.abs(rng.standard_normal((m, extra))) * scale
    H_new = np.abs(rng.standard_normal((extra, n))) * scale
    dtype = data.dtype
    return (
        np.hstack([W, W_new.astype(dtype)]),
        np.vstack([H, H_new.astype(dtype)]),
    )
