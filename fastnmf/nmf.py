"""``fastnmf.nmf``: validate → initialise → driver."""

import numbers
from dataclasses import dataclass

import numpy as np

from . import _validation as v
from ._data import load
from ._config import THREADSAFE_LAYER
from ._driver import Stopping, fit, fit_together
from ._init import INITS, SVD_INITS, initialize
from ._solvers import REGISTRY, SKETCH_WARM_START, SOLVERS
from ._solvers.base import Penalties
from ._solvers.warm import SketchWarmStart, sketch_of
from ._threading import blas_limits, thread_limits

LOSSES = ("frobenius", "kl", "itakura-saito")
# Runs that advance together (``_fit_each``) put their factors side by side in one
# product with X, up to this many columns in all: a product of X with ~64 columns or
# more is bound by its flops, not by reading X, so more runs would only hold more memory.
SHARED_COLUMNS = 128
_BETA = {"frobenius": 2.0, "kl": 1.0, "itakura-saito": 0.0}


def nmf(
    X,
    rank,
    *,
    solver="hals",
    loss="frobenius",
    init="nndsvda",
    tol=1e-4,
    target_error=None,
    max_iter=200,
    max_time=None,
    l1_W=0.0,
    l1_H=0.0,
    l2_W=0.0,
    l2_H=0.0,
    mask=None,
    missing=None,
    n_init=1,
    prune=False,
    random_state=None,
    progress=False,
    callback=None,
    n_threads=None,
):
    """Non-negative matrix factorization ``X ≈ W @ H`` with ``W, H ≥ 0``.

    Minimises ``½‖X − WH‖²_F`` (or the β-divergence ``D_β(X ‖ WH)`` for other losses)
    plus ``l1_W‖W‖₁ + l1_H‖H‖₁ + ½l2_W‖W‖²_F + ½l2_H‖H‖²_F``.

    Parameters
    ----------
    X : array-like, scipy.sparse or dask.array (m, n)
        Non-negative data: a dense array of any memory order (C, Fortran, memory map;
        other strided views are copied once) or any scipy.sparse matrix or array
        (converted once to CSR in both orientations; products and the KL loss then cost
        O(nnz·k)). float32 computes in float32; float64, integer and bool in float64.
        A dask array (dense or sparse chunks) runs on the current ``distributed.Client``
        with X's row blocks kept on the workers (see ``fastnmf.dask``); the result's W
        is then a dask array chunked like X's rows. ``mask`` is not supported there.
        Never modified.
    rank : int
        Number of components k.
    solver : str
        One of ``fastnmf.SOLVERS``:

        - ``"hals"``: accelerated HALS (coordinate descent with repeated inner sweeps
          and extrapolation);
        - ``"anls_bpp"``, ``"anls_as"``: alternating exact NNLS by block principal
          pivoting or active set, warm-started and extrapolated;
        - ``"mu"``: multiplicative updates, the only solver for losses other than
          Frobenius;
        - ``"als"``: least squares with negatives truncated to 0. Fast per iteration
          but not a descent method: the objective may oscillate or stall (on the 50×100
          rank-5 example it rises in a third of its iterations and stalls at a relative
          error of 9e-4, where ``anls_bpp`` reaches 1e-14);
        - ``"gdcls"``: Shahnaz et al. (2006), H by least squares regularised by
          ``l2_H`` and clipped at 0, W by a multiplicative update.

        All but ``"mu"`` minimise the Frobenius loss only.
    loss : {"frobenius", "kl", "itakura-saito"} or float
        The loss; a float is the β of the β-divergence (2: Frobenius, 1: generalised
        Kullback–Leibler, 0: Itakura–Saito). Losses other than Frobenius need
        ``solver="mu"``; β ≤ 0 needs X > 0.
    init : {"nndsvd", "nndsvda", "nndsvdar", "random"} or (W0, H0)
        Initial factors: NNDSVD from a truncated SVD (with zeros filled by
        ``√(mean(X)/rank)`` for "nndsvda", by small random values for "nndsvdar"),
        random on the scale of X, or given arrays of shapes (m, k) and (k, n) (copied).
        From a named init on a large dense in-memory X, ``"hals"`` and ``"anls_*"``
        make their first iteration on a low-rank sketch of X (the randomized SVD's
        range): many cheap iterations there, then the run goes on on X (the history
        records the warm start as iteration 1; it is dropped if it would raise the
        objective). Given factors are taken as they are.
    tol : float
        Stop when the relative decrease of the objective over one iteration falls
        below ``tol`` (0 disables it).
    target_error : float, optional
        Stop as soon as the relative error ``‖X − WH‖/‖X‖`` is at most this.
    max_iter : int
        Maximum number of outer iterations (0 returns the initial factors).
    max_time : float, optional
        Wall-time budget in seconds for the whole call, restarts included.
    l1_W, l1_H, l2_W, l2_H : float
        L1 (sparsity) and L2 (ridge) penalties on W and H.
    mask : bool array-like or scipy.sparse (m, n), optional
        True where X is observed. Unobserved entries do not enter the loss and are never
        read (NaN is fine there), so ``W @ H`` predicts them. Every solver supports it;
        the Frobenius solvers then use one Gram matrix per row (O(k²) per observed or,
        when most entries are observed, per missing entry).
    missing : {None, "zeros"}
        "zeros" (sparse X only): the implicit zeros of X are unobserved and its stored
        entries, explicit zeros included, observed — as for ratings data.
    n_init : int
        Number of runs: the first from ``init``, the others from random inits; the
        run with the lowest objective is returned. X is validated and converted once
        for all runs.
    prune : bool
        With ``n_init > 1``: advance the runs together in rounds of 10 iterations and
        drop the worse half of those still going after each round (successive
        halving), so restarts cost little more than the one run that survives. A run
        that is bad early seldom ends best; without pruning every run goes to its
        stopping rule.
    random_state : None, int or numpy.random.Generator
        Seed of the randomized SVD and of random inits.
    progress : bool
        Show a tqdm progress bar on stderr.
    callback : callable, optional
        ``callback(info)`` after each iteration with ``info.iteration``, ``.seconds``,
        ``.objective``, ``.relative_error``, ``.W``, ``.H`` (read-only views); returning
        True stops the run.
    n_threads : int, optional
        Threads for Numba kernels and BLAS during this call (None: all cores).

    Returns
    -------
    NMFResult

    Raises
    ------
    ValueError, TypeError
        For invalid data or arguments, with a message naming the argument and the fix.

    Examples
    --------
    >>> import fastnmf
    >>> X, W, H = fastnmf.datasets.low_rank(100, 80, 5, random_state=0)
    >>> res = fastnmf.nmf(X, 5, target_error=1e-6, max_iter=2000)
    >>> res.relative_error < 1e-6
    True
    """
    options = _check_options(
        solver=solver, loss=loss, init=init, tol=tol, target_error=target_error,
        max_iter=max_iter, max_time=max_time, l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H,
        n_init=n_init, prune=prune, progress=progress, callback=callback, n_threads=n_threads,
    )
    rng = v.check_random_state(random_state)
    with thread_limits(options.n_threads):
        data = _load(X, mask, missing, options.beta)
        return _fit_loaded(data, rank, options, rng)


def _load(X, mask, missing, beta):
    """The data layer for X: in memory, or on the Dask workers for a dask array."""
    if v.is_dask_array(X):
        from . import dask

        return dask.load(X, mask, missing)
    return load(X, mask, missing, beta)


@dataclass(frozen=True)
class _Options:
    """The validated keyword arguments of ``nmf`` other than X, rank, mask, missing and
    random_state: checked once, then used for any number of fits on loaded data."""

    solver: str
    loss: object
    beta: float
    init: object
    stopping: Stopping
    penalties: Penalties
    n_init: int
    prune: bool
    progress: bool
    callback: object
    n_threads: object


def _check_options(
    *, solver="hals", loss="frobenius", init="nndsvda", tol=1e-4, target_error=None,
    max_iter=200, max_time=None, l1_W=0.0, l1_H=0.0, l2_W=0.0, l2_H=0.0, n_init=1,
    prune=False, progress=False, callback=None, n_threads=None,
):
    """Validate ``nmf``'s options (same defaults and messages) into an ``_Options``."""
    v.check_choice("solver", solver, SOLVERS)
    beta = _check_loss(loss, solver)
    if isinstance(init, str):
        v.check_choice("init", init, INITS)
    stopping = Stopping(
        tol=v.check_nonnegative_float("tol", tol),
        target_error=v.check_nonnegative_float("target_error", target_error, allow_none=True),
        max_iter=v.check_int("max_iter", max_iter, 0),
        max_time=v.check_nonnegative_float("max_time", max_time, allow_none=True, strictly_positive=True),
    )
    penalties = Penalties(
        **{name: v.check_nonnegative_float(name, value) for name, value in
           (("l1_W", l1_W), ("l1_H", l1_H), ("l2_W", l2_W), ("l2_H", l2_H))}
    )
    return _Options(
        solver=solver,
        loss=loss,
        beta=beta,
        init=init,
        stopping=stopping,
        penalties=penalties,
        n_init=v.check_int("n_init", n_init, 1),
        prune=v.check_bool("prune", prune),
        progress=progress,
        callback=v.check_callback(callback),
        n_threads=v.check_int("n_threads", n_threads, 1, allow_none=True),
    )


def _fit_loaded(data, rank, options, rng, init=None):
    """``nmf`` on data already validated and wrapped by ``load`` (the seam that lets
    repeated fits share one loaded X). Call inside ``thread_limits(options.n_threads)``.
    ``init`` overrides ``options.init`` (e.g. warm-start factors)."""
    init = options.init if init is None else init
    custom_init = not isinstance(init, str)
    rank = v.check_rank(rank, data.shape, svd_init=not custom_init and init in SVD_INITS)
    if options.beta <= 0 and data.n_zeros:
        raise ValueError(
            f"X has {data.n_zeros} zero entries, but loss={options.loss!r} (beta <= 0) is "
            "undefined at zeros; add a small positive constant to X or use loss='kl'."
        )
    first = _custom_init(init, data, rank) if custom_init else None
    if getattr(data, "distributed", False):  # fastnmf.dask: W's rows stay on the workers
        make_solver = data.make_solver(options.solver, options.penalties, options.beta)
        start = data.initialize
        if custom_init:
            first = data.scatter_rows(first[0]), first[1]
    else:
        # a named init starts far from a solution: warm-start on a sketch where it pays
        make_solver = _solver_factory(options, warm_start=not custom_init)

        def start(rank, init, rng):
            return initialize(data, rank, init, rng)

    def inits():
        yield first if custom_init else start(rank, init, rng)
        for _ in range(options.n_init - 1):
            yield start(rank, "random", rng)

    with blas_limits(data.blas_threads):
        return fit(
            data,
            inits(),
            make_solver,
            options.stopping,
            callback=options.callback,
            progress=options.progress,
            prune=options.prune,
            meta=dict(solver=options.solver, loss=options.loss, rank=rank),
        )


def _fit_each(data, rank, options, rng, n_runs):
    """The results of ``_fit_loaded(data, rank, options, rng)`` called ``n_runs`` times,
    one at a time (a generator): the same runs, from inits drawn from ``rng`` in the
    same order, but advancing together in groups whose products with X are shared
    (``_driver.fit_together``) where that is possible: Frobenius solvers on in-memory
    data, one init per run, and nothing that watches a run as it goes (callback,
    progress, max_time). Only one group's factors are held at a time."""
    group = min(n_runs, SHARED_COLUMNS // rank)
    shareable = (
        THREADSAFE_LAYER and options.beta == 2.0 and options.n_init == 1 and isinstance(options.init, str)
        and options.callback is None and not options.progress and options.stopping.max_time is None
        and not getattr(data, "distributed", False)
    )
    if not shareable or group < 2:
        for _ in range(n_runs):
            yield _fit_loaded(data, rank, options, rng)
        return
    rank = v.check_rank(rank, data.shape, svd_init=options.init in SVD_INITS)
    make_solver = _solver_factory(options, warm_start=True)
    if _warm_starts(options):
        sketch_of(data, rank)  # once, before the runs' threads, which share it
    meta = dict(solver=options.solver, loss=options.loss, rank=rank)
    for first in range(0, n_runs, group):
        inits = [initialize(data, rank, options.init, rng) for _ in range(min(group, n_runs - first))]
        with blas_limits(data.blas_threads):
            results = fit_together(data, inits, make_solver, options.stopping, meta=meta)
        yield from results


def _solver_factory(options, warm_start=False):
    """``make_solver(data, W, Ht)`` for in-memory data: the solver ``options`` name,
    with their penalties and β. With ``warm_start``, solvers that can start on a
    sketch of a large dense X do (``_solvers.warm``)."""
    factory = REGISTRY[options.solver][0]

    def make_solver(data, W, Ht):
        return factory(data, W, Ht, options.penalties, options.beta)

    if not (warm_start and _warm_starts(options)):
        return make_solver

    def make_warm_solver(data, W, Ht):
        sketch = sketch_of(data, W.shape[1])
        if sketch is None:
            return make_solver(data, W, Ht)
        return SketchWarmStart(make_solver, data, sketch, W, Ht)

    return make_warm_solver


def _warm_starts(options):
    """Whether the solver of ``options`` starts on a sketch of a large dense X."""
    return options.solver in SKETCH_WARM_START and options.beta == 2.0


def _check_loss(loss, solver):
    """β of the loss, and a check that ``solver`` supports it."""
    if isinstance(loss, str):
        v.check_choice("loss", loss, LOSSES)
        beta = _BETA[loss]
    elif isinstance(loss, numbers.Real) and not isinstance(loss, (bool, np.bool_)) and np.isfinite(loss):
        beta = float(loss)
    else:
        raise ValueError(
            f"loss={loss!r} is not supported; choose one of {', '.join(map(repr, LOSSES))} "
            "or a finite float beta."
        )
    if beta != 2.0 and not REGISTRY[solver][1]:
        able = ", ".join(repr(name) for name, (_, any_beta) in REGISTRY.items() if any_beta)
        raise ValueError(
            f"solver={solver!r} supports only loss='frobenius'; for loss={loss!r} use solver={able}."
        )
    return beta


def _custom_init(init, data, rank):
    """Validate and copy user factors ``(W0, H0)``; returns ``(W, Ht)``."""
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise ValueError(
            f"init must be one of {', '.join(map(repr, INITS))} or a pair (W0, H0) of "
            f"arrays, got {type(init).__name__}."
        )
    m, n = data.shape
    W = v.check_factor("init W0", init[0], (m, rank), data.dtype)
    H = v.check_factor("init H0", init[1], (rank, n), data.dtype)
    return W, np.ascontiguousarray(H.T)
