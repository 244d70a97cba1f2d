"""Distributed NMF on Dask (API.md §7): X's row blocks stay on the workers.

``fastnmf.nmf`` hands a ``dask.array.Array`` to ``load``. X is loaded once: each block
of rows becomes a list of in-memory data-layer objects (``_data.DenseData`` or
``SparseData``, one per column chunk: validated, summed, converted once) kept on the
worker that computed it, and it never moves again. The factor W is split like X's rows
and stays beside them; Hᵀ (n × k) and the k × k Grams are small and live on the client.
One iteration of a Frobenius solver is one task per row block ``i``, run where the
block is::

    F_i ← half-step(W_i; X_i Hᵀ, HHᵀ)
    partial sums F_iᵀF_i, ⟨F_i, X_iHᵀ⟩, X_iᵀF_i          (summed on each worker)

then the client adds the workers' partials and updates Hᵀ with the same half-step. The
half-steps are the in-memory solvers' ``row_steps`` and the products the in-memory data
layer's methods, so no algorithm exists twice. Data moved per iteration: Hᵀ to each
worker and one n×k partial back, 2·P·n·k numbers for P workers, whatever m and nnz.
Multiplicative updates for other β also take one task per row block and iteration
(``BetaMU``): the divergence at the current factors, the update of W_i and W_i's share
of Hᵀ's numerator and denominator.

Without a ``distributed.Client`` the same tasks run in this process (X's chunks are
computed by Dask's local scheduler when loaded).
"""

import math
import operator

import numpy as np

from . import _validation as v
from ._config import CANCELLATION_FLOOR
from ._data import DenseData, SparseData
from ._data import load as load_block
from ._init import (
    MAX_POWER_ITERATIONS,
    OVERSAMPLE,
    nndsvd_part,
    nndsvd_plan,
    orthonormalizer,
    part_norms,
    power_iterations_done,
    range_values_and_basis,
    sketch_width,
    svd_of_range,
)
from ._solvers.anls import ALS, GDCLS, nnls_steps
from ._solvers.base import Momentum, dot64, extrapolate, keeping_dropped, projected_gradient_sqnorm
from ._solvers.hals import HALS
from ._solvers.mu import FrobeniusMU, exponent, multiplicative_step
from ._threading import thread_limits

# solver -> its half-steps for both factors, ``(data, k) -> {"W": step, "H": step}``, and
# whether it extrapolates between iterations (``base.Extrapolated``).
_FROBENIUS = {
    "hals": (HALS.row_steps, True),
    "anls_bpp": (lambda data, k: nnls_steps(data, k, "bpp"), True),
    "anls_as": (lambda data, k: nnls_steps(data, k, "active_set"), True),
    "mu": (FrobeniusMU.row_steps, False),
    "als": (ALS.row_steps, False),
    "gdcls": (GDCLS.row_steps, False),
}
SOLVERS = tuple(_FROBENIUS)

# The constant arguments of a run (Hᵀ, say) are scattered to the workers once when they
# take more than this many bytes, rather than sent with each task. (Large keyword
# arguments of ``Client.map`` become one shared key named after the argument, which
# clashes across calls: they must stay below distributed's 100 kB threshold.)
_SCATTER_BYTES = 1 << 15


def load(X, mask=None, missing=None):
    """Validate a dask array once and keep its row blocks on the workers.

    Parameters
    ----------
    X : dask.array.Array (m, n)
        Dense chunks or ``scipy.sparse`` chunks, any chunking.
    mask, missing
        Not supported for dask input (a clear error).

    Returns
    -------
    DaskData
    """
    if mask is not None or missing is not None:
        raise ValueError(
            "mask= and missing= are not supported for dask arrays; compute the masked "
            "matrix into memory (numpy or scipy.sparse) or pass X without a mask."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array (samples x features), got {X.ndim}-D with shape {X.shape}.")
    if any(math.isnan(s) for s in X.shape):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    if 0 in X.shape:
        raise ValueError(f"X is empty (shape {X.shape}); it needs at least one entry.")
    if X.dtype == object:
        raise TypeError("X must hold numbers, got a dask array of Python objects.")
    import dask

    rows, cols = _bounds(X.chunks[0]), _bounds(X.chunks[1])
    chunks = X.to_delayed()
    loads = [
        dask.delayed(_load_row, pure=True)(list(chunks[i]), r0, cols)
        for i, (r0, _) in enumerate(rows)
    ]
    executor = _executor()
    blocks = executor.persist(loads, X)
    stats = executor.gather(executor.map(_row_stats, blocks))
    return DaskData(executor, blocks, rows, cols, v.compute_dtype(X.dtype), np.sum(stats, axis=0))


def _bounds(chunks):
    """``[(start, stop), ...]`` of a dask chunk tuple."""
    edges = np.concatenate([[0], np.cumsum(chunks)]).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _load_row(chunks, r0, cols):
    """One block of rows of X as in-memory data-layer objects, one per column chunk."""
    blocks = []
    for chunk, (c0, c1) in zip(chunks, cols):
        try:
            blocks.append(load_block(chunk))
        except ValueError as error:  # positions in the message are within the chunk
            r1 = r0 + chunk.shape[0]
            raise ValueError(f"{error} (in the chunk of X at rows {r0}:{r1}, columns {c0}:{c1})") from None
    return blocks


def _row_stats(blocks):
    """ΣX, ‖X‖², zero entries and the modelled product seconds per rank of a row block."""
    return np.array([
        [b.total, b.sqnorm, b.n_zeros, b.product_seconds(1), b.T.product_seconds(1)]
        for b in blocks
    ]).sum(axis=0)


class _Transposed:
    """What the half-step settings read of the transposed problem (``data.T``)."""

    def __init__(self, shape, seconds_per_rank):
        self.shape, self._seconds = shape, seconds_per_rank
        self.per_row_grams = False

    def product_seconds(self, k):
        return self._seconds * k


class DaskData:
    """X on the workers: its row blocks, their placement and the sums taken at load.

    Offers what the driver and the init need (``shape``, ``dtype``, ``sqnorm``,
    ``total``, ``n_zeros``, ``n_observed``, ``product_seconds``) and ``run``, which maps
    a function over the row blocks (one task per block) and sums what it reports.
    """

    distributed = True
    per_row_grams = False
    # The client's share of an iteration is small (n×k): with one BLAS thread, no idle
    # OpenBLAS workers spin on the cores the Dask workers need.
    blas_threads = 1

    def __init__(self, executor, blocks, rows, cols, dtype, stats):
        self.executor, self.blocks, self.rows, self.cols = executor, blocks, rows, cols
        self.dtype = np.dtype(dtype)
        self.shape = (rows[-1][1], cols[-1][1])
        total, sqnorm, n_zeros, w_seconds, h_seconds = stats
        self.total, self.sqnorm, self.n_zeros = float(total), float(sqnorm), int(n_zeros)
        self.n_observed = self.shape[0] * self.shape[1]
        self._seconds = w_seconds
        self.T = _Transposed(self.shape[::-1], h_seconds)
        self.col_slices = [slice(c0, c1) for c0, c1 in cols]
        # Row blocks grouped by the worker that holds them: reports are summed per group.
        self.workers = [executor.where(block) for block in blocks]
        groups = {}
        for i, worker in enumerate(self.workers):
            groups.setdefault(worker, []).append(i)
        self.shards = list(groups.items())

    def product_seconds(self, k):
        return self._seconds * k

    def run(self, fn, aligned=(), consts=(), reduce=operator.add, columns=None):
        """Apply ``fn(blocks, cols, *row_args, *consts)`` to each row block.

        ``aligned`` are ``RowBlocks`` (or None), whose block ``i`` is passed with row
        block ``i``; ``fn`` returns ``(out, report)``. Returns ``(RowBlocks of the outs,
        the reports combined by reduce)`` — reduced on each worker, then on the client.
        ``columns`` is the width of the outs, when they are to be read as one array.
        One task per row block, so a worker needs only the block at hand in memory (the
        others may be spilled). A block's ``(out, report)`` stays together on its worker
        while the out is in use: a report is at most n×k, small beside the block of X.
        """
        # Batched submissions (one per kind of task); each task runs where its row block
        # is, by data locality, as the block outweighs everything else it reads.
        executor = self.executor
        consts = executor.share(tuple(consts))
        args = [[None if a is None else a.futures[i] for a in aligned] for i in range(len(self.blocks))]
        tasks = executor.map(_run_row, self.blocks, args, fn=fn, cols=self.col_slices, consts=consts)
        groups = [[tasks[i] for i in rows] for _, rows in self.shards]
        sums = executor.map(_sum_reports, groups, reduce=reduce)
        combined = _sum_reports([(None, report) for report in executor.gather(sums)], reduce)
        return RowBlocks(self, tasks, columns), _aligned(combined)

    def scatter_rows(self, W):
        """A numpy W (m, k) split into row blocks beside X's."""
        held = [self.executor.hold(W[r0:r1], worker) for (r0, r1), worker in zip(self.rows, self.workers)]
        return RowBlocks(self, held, W.shape[1])

    # -- what nmf() needs beside the driver --------------------------------------------

    def make_solver(self, name, penalties, beta):
        """The distributed counterpart of ``_solvers.REGISTRY[name]``."""
        if beta != 2.0:
            if name != "mu":
                raise ValueError(f"solver={name!r} supports only loss='frobenius'.")
            return lambda data, W, Ht: BetaMU(data, W, Ht, penalties, beta)
        row_steps, extrapolated = _FROBENIUS[name]
        return lambda data, W, Ht: Alternating(data, W, Ht, penalties, row_steps(data, Ht.shape[1]), extrapolated)

    def initialize(self, rank, init, rng):
        """``_init.initialize`` for distributed X: ``(RowBlocks W, numpy Hᵀ)``."""
        m, n = self.shape
        scale = np.sqrt(max(self.total, 0.0) / self.n_observed / rank)
        if init == "random":
            Ht = np.abs(scale * rng.standard_normal((n, rank)))
            seeds = self._seeds(rng)
            W, _ = self.run(_random_rows, [seeds], (rank, scale, self.dtype), columns=rank)
            return W, np.ascontiguousarray(Ht, dtype=self.dtype)
        U, S, Vt = _randomized_svd(self, rank, rng)
        _, norms = self.run(_part_sqnorms, [U])
        signs, coef_u, coef_v = nndsvd_plan(S, np.sqrt(norms), part_norms(Vt.T))
        Ht = nndsvd_part(Vt.T, signs, coef_v)
        W, W_max = self.run(_nndsvd_rows, [U], (signs, coef_u), reduce=max)
        cutoff = 1e-6 * max(W_max, Ht.max(initial=0))
        Ht[Ht < cutoff] = 0
        seeds = self._seeds(rng) if init == "nndsvdar" else None
        W, _ = self.run(_fill_rows, [W, seeds], (cutoff, init, scale, self.dtype), columns=rank)
        if init == "nndsvda":
            Ht[Ht == 0] = scale
        elif init == "nndsvdar":
            Ht[Ht == 0] = scale * rng.random(np.count_nonzero(Ht == 0)) / 100
        return W, np.ascontiguousarray(Ht, dtype=self.dtype)

    def _seeds(self, rng):
        """One seed per row block, as a row-aligned argument."""
        seeds = rng.integers(2**63 - 1, size=len(self.rows))
        return RowBlocks(self, [self.executor.hold(seed, worker) for seed, worker in zip(seeds, self.workers)])


class RowBlocks:
    """A factor (or any per-row-block values) held by the workers, aligned with X's
    row blocks: one future per row block; a factor knows its number of ``columns``."""

    def __init__(self, data, futures, columns=None):
        self.data, self.futures, self.columns = data, futures, columns

    def copy(self):
        """The blocks are never written after they are made: sharing them is a copy."""
        return self

    def to_dask(self):
        """The blocks as one dask array chunked like X's rows."""
        import dask
        import dask.array as da

        data, executor = self.data, self.data.executor
        parts = [
            da.from_delayed(
                dask.delayed(operator.itemgetter(0))(executor.as_delayed(future)),
                shape=(r1 - r0, self.columns), dtype=data.dtype,
            )
            for future, (r0, r1) in zip(self.futures, data.rows)
        ]
        return da.concatenate(parts, axis=0)


def _run_row(blocks, args, fn, cols, consts):
    """The body of one row block's task in ``DaskData.run`` (``args`` are the ``(out,
    report)`` pairs of the aligned ``RowBlocks``, or None)."""
    with thread_limits(_worker_threads()):
        return fn(blocks, cols, *(None if a is None else _aligned(a[0]) for a in args), *_aligned(consts))


def _aligned(value):
    """``value`` with the arrays in it (or in its tuples) aligned. Dask deserialises an
    array in place in its message buffer, at any byte offset, and NumPy's products and
    the Numba kernels run about twice as slowly on an unaligned array (measured: the KL
    pass of a row block with an unaligned Hᵀ, 31 against 17 ms)."""
    if isinstance(value, np.ndarray):
        return np.require(value, requirements="A")
    if isinstance(value, tuple):
        return tuple(_aligned(part) for part in value)
    return value


def _same(value):
    return value


def _paired(value):
    return value, None


def _sum_reports(results, reduce):
    """The reports of several ``(out, report)`` results combined."""
    report = None
    for _, part in results:
        report = part if report is None else _combine(reduce, report, part)
    return report


def _combine(reduce, a, b):
    if isinstance(a, tuple):
        return tuple(_combine(reduce, x, y) for x, y in zip(a, b))
    return reduce(a, b)


def _worker_threads():
    """Threads for one task: 1 on a Dask worker, which runs as many row-block tasks at
    once as it has threads; None (all cores) in this process, which runs them in turn."""
    try:
        from distributed import get_worker

        get_worker()
        return 1
    except (ImportError, ValueError):
        return None


# -- executors: a distributed Client, or this process ----------------------------------


def _executor():
    try:
        from distributed import default_client

        return _Cluster(default_client())
    except (ImportError, ValueError):
        return _InProcess()


class _Cluster:
    """Tasks on a ``distributed.Client``; each row-block task runs where its block is
    (the block outweighs everything else it reads)."""

    def __init__(self, client):
        self.client = client

    def persist(self, delayed, X):
        """Compute the row blocks, as evenly over the workers as they go (an iteration
        lasts as long as the busiest worker), each where the first chunk of its row
        already is if X was persisted and that keeps the balance."""
        from distributed import futures_of, wait

        workers = sorted(self.client.scheduler_info()["workers"])
        held = futures_of(X)
        holders = self.client.who_has(held) if held else {}
        first_chunks = X.__dask_keys__()
        share = -(-len(delayed) // max(1, len(workers)))
        counts = dict.fromkeys(workers, 0)
        futures = []
        for i, d in enumerate(delayed):
            place = [w for w in holders.get(first_chunks[i][0], ()) if counts.get(w, share) < share]
            if not place and workers:  # the least loaded; among equals, consecutive rows together
                home = workers[i * len(workers) // len(delayed)]
                place = [min(workers, key=lambda w: (counts[w], w != home))]
            if place:
                counts[place[0]] += 1
                futures.append(self.client.compute(d, workers=place[:1], allow_other_workers=False))
            else:
                futures.append(self.client.compute(d))
        wait(futures)
        return futures

    def where(self, future):
        holders = self.client.who_has([future])[future.key]
        return holders[0] if holders else None

    def map(self, function, *iterables, **consts):
        """``function(*items, **consts)`` for the items of the iterables, in one submission."""
        return self.client.map(function, *iterables, pure=False, **consts)

    def gather(self, futures):
        return self.client.gather(futures, direct=True)

    def share(self, value):
        """``value`` itself if small, else a future of it (one task; each worker that
        needs it fetches it once) — large ``Client.map`` keyword arguments would become
        one key named after the argument, shared and clashing across calls."""
        from dask.sizeof import sizeof

        if sizeof(value) > _SCATTER_BYTES:
            value = self.client.submit(_same, value, pure=False)
        return value

    def hold(self, value, worker):
        """``(value, None)`` placed on ``worker``, like the results of ``DaskData.run``."""
        held = self.client.scatter(value, workers=[worker] if worker else None, hash=False)
        return self.client.submit(_paired, held, pure=False)

    def as_delayed(self, future):
        return future


class _Done:
    """A finished 'future' of the in-process executor."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _InProcess:
    """The same tasks, run at once in this process (no distributed scheduler)."""

    def persist(self, delayed, X):
        import dask

        return [_Done(value) for value in dask.compute(*delayed)]

    def where(self, future):
        return None

    def map(self, function, *iterables, **consts):
        consts = {name: _resolve(value) for name, value in consts.items()}
        return [_Done(function(*_resolve(items), **consts)) for items in zip(*iterables)]

    def gather(self, futures):
        return [f.value for f in futures]

    def share(self, value):
        return value

    def hold(self, value, worker):
        return _Done(_paired(value))

    def as_delayed(self, future):
        return future.value


def _resolve(arg):
    if isinstance(arg, _Done):
        return arg.value
    if isinstance(arg, (list, tuple)):
        return type(arg)(_resolve(a) for a in arg)
    return arg


# -- row-block functions (run on the workers) -------------------------------------------


def _matmul(blocks, cols, G):
    """``X_i @ G`` for the row block ``blocks`` (its column chunks at ``cols``)."""
    out = None
    for block, c in zip(blocks, cols):
        part = block.matmul(G[c])
        out = part if out is None else out + part
    return out


def _stacked(parts):
    """Parts of the column chunks one above the other (no copy for a single chunk)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _transposed_matmul(blocks, cols, F):
    """``X_iᵀ @ F`` (n, k) for the row block ``blocks``."""
    return _stacked([block.T.matmul(F) for block in blocks])


def _frobenius_rows(blocks, cols, W, W_prev, Ht, HtH, step, l1, l2, beta):
    """A Frobenius half-step on the rows W (from ``W + β(W − W_prev)`` when W_prev is
    given; none when ``step`` is None), and the partial sums the client needs:
    ``(FᵀF, ⟨F, X_iHᵀ⟩, X_iᵀF, ΣF)``."""
    if W_prev is not None:
        F = extrapolate(W, W_prev, beta)
    else:
        F = W.copy() if step is not None else W
    inner = 0.0
    if step is not None:
        XHt = _matmul(blocks, cols, Ht)
        with keeping_dropped(F, HtH[None]):
            step(F, XHt, HtH[None], l1, l2)
        inner = dot64(F, XHt)
    return F, (F.T @ F, inner, _transposed_matmul(blocks, cols, F), F.sum(dtype=np.float64))


def _residual_rows(blocks, cols, W, Ht):
    """``‖X_i − W_i H‖²`` exactly."""
    return None, sum(block.residual_sqnorm(W, Ht[c]) for block, c in zip(blocks, cols))


def _gradient_rows(blocks, cols, W, Ht, HtH, l1, l2):
    """‖projected gradient in W_i‖² of the Frobenius objective, and ``(W_iᵀW_i, X_iᵀW_i)``."""
    grad = W @ HtH - _matmul(blocks, cols, Ht) + l1 + l2 * W
    return None, (projected_gradient_sqnorm(W, grad), W.T @ W, _transposed_matmul(blocks, cols, W))


def _beta_w_products(blocks, cols, W, Ht, beta):
    """Numerator and denominator of the β update of W_i, and (the report) the
    divergence, ‖X_i − W_iH‖², ΣW_i and ‖W_i‖²."""
    num = den = None
    divergence = squared = 0.0
    for block, c in zip(blocks, cols):
        n_j, d_j, div, sq = block.beta_products(W, Ht[c], beta)
        num = n_j if num is None else num + n_j
        den = d_j if den is None else den + d_j
        divergence += div
        squared += sq
    return (num, den), (divergence, squared, W.sum(dtype=np.float64), dot64(W, W))


def _beta_h_products(blocks, cols, F, Ht, beta):
    """This row block's share of the numerator and denominator of the β update of Hᵀ."""
    nums, dens = [], []
    for block, c in zip(blocks, cols):
        n_j, d_j, _, _ = block.T.beta_products(Ht[c], F, beta, with_objective=False)
        nums.append(n_j)
        dens.append(d_j)
    # For β = 1 each column chunk reports the same (1, k) denominator ΣF.
    den = dens[0] if beta == 1.0 else _stacked(dens)
    return _stacked(nums), den


def _beta_iteration_rows(blocks, cols, W, Ht, beta, l1, l2, gamma):
    """One β iteration's work on W_i: its products at (W_i, H), which give the
    divergence there, the update of W_i from them, and its share of Hᵀ's products at
    the updated W_i. Reports ``(divergence terms, (numerator, denominator) of Hᵀ)``."""
    (num, den), objective = _beta_w_products(blocks, cols, W, Ht, beta)
    F = W.copy()
    multiplicative_step(F, num, den, l1, l2, gamma)
    return F, (objective, _beta_h_products(blocks, cols, F, Ht, beta))


def _beta_gradient_rows(blocks, cols, W, Ht, beta, l1, l2):
    """‖projected gradient in W_i‖² of the β objective and W_i's share of Hᵀ's products."""
    (num, den), _ = _beta_w_products(blocks, cols, W, Ht, beta)
    grad = den - num + l1 + l2 * W
    return None, (projected_gradient_sqnorm(W, grad), *_beta_h_products(blocks, cols, W, Ht, beta))


def _random_rows(blocks, cols, seed, rank, scale, dtype):
    rows = blocks[0].shape[0]
    W = np.abs(scale * np.random.default_rng(seed).standard_normal((rows, rank)))
    return np.ascontiguousarray(W, dtype=dtype), None


def _part_sqnorms(blocks, cols, U):
    """Squared norms of the positive and negative parts of U_i's columns."""
    return None, (np.square(np.maximum(U, 0)).sum(axis=0), np.square(np.minimum(U, 0)).sum(axis=0))


def _nndsvd_rows(blocks, cols, U, signs, coef):
    W = nndsvd_part(U, signs, coef)
    return W, W.max(initial=0)


def _fill_rows(blocks, cols, W, seed, cutoff, init, scale, dtype):
    """``_init.initialize``'s treatment of the zeros of an NNDSVD factor, on W_i."""
    W = W.copy()
    W[W < cutoff] = 0
    if init == "nndsvda":
        W[W == 0] = scale
    elif init == "nndsvdar":
        zeros = W == 0
        W[zeros] = scale * np.random.default_rng(seed).random(np.count_nonzero(zeros)) / 100
    return np.ascontiguousarray(W, dtype=dtype), None


def _products_rows(blocks, cols, Y, T, Z):
    """Randomized SVD step: ``Q_i = Y_i T`` reported as ``X_iᵀQ_i``; or ``Y_i = X_i Z``
    with its Gram ``Y_iᵀY_i``."""
    if Z is None:
        Q = Y @ T
        return Q, _transposed_matmul(blocks, cols, Q.astype(blocks[0].dtype, copy=False))
    Y = _matmul(blocks, cols, Z)
    Y64 = Y.astype(np.float64, copy=False)  # as _init.orthonormal: the Gram squares cond(Y)
    return Y, Y64.T @ Y64


def _times_rows(blocks, cols, Y, T):
    return Y @ T, None


def _randomized_svd(data, rank, rng, oversample=OVERSAMPLE):
    """``_init.randomized_svd`` for the distributed X, built from the row-block products
    (each fused with the Gram the orthonormalization needs), with the same rule for the
    power iterations. U stays on the workers."""
    width = sketch_width(data, rank, oversample)
    Z = rng.standard_normal((data.shape[1], width)).astype(data.dtype)
    Y, gram = data.run(_products_rows, [None], (None, Z))
    for power in range(MAX_POWER_ITERATIONS + 1):
        T = orthonormalizer(gram)
        Q, XtQ = data.run(_products_rows, [Y], (T, None))
        values, Z = range_values_and_basis(XtQ, data.dtype)
        if power_iterations_done(power, values, width):
            break
        Y, gram = data.run(_products_rows, [None], (None, Z))
    T, S, Vt = svd_of_range(XtQ, rank)
    U, _ = data.run(_times_rows, [Q], (T,))
    return U, S, Vt


# -- the solvers: the in-memory schemes with W's rows on the workers -------------------


class Alternating:
    """``base.FrobeniusAlternating`` (and, with ``extrapolated``, ``base.Extrapolated``:
    Ang & Gillis 2019 with restarts) for distributed X.

    Same decisions in the same order as the in-memory classes, so both produce the same
    iterates up to the order of floating-point sums.
    """

    def __init__(self, data, W, Ht, penalties, steps, extrapolated):
        self.data, self.W, self.Ht, self.penalties = data, W, Ht, penalties
        self._steps = steps
        self._momentum = Momentum() if extrapolated else None
        self._previous = None
        self._last = None
        self._floor = CANCELLATION_FLOOR[np.dtype(data.dtype)] * data.sqnorm

    def evaluate(self):
        if self._last is None:
            _, (WtW, _, XtW, sum_W) = self.data.run(
                _frobenius_rows, [self.W, None], (self.Ht, None, None, 0, 0, 0)
            )
            self._last = self._objective(self.W, self.Ht, WtW, dot64(self.Ht, XtW), sum_W)
        return self._last

    def advance(self):
        if self._momentum is None:
            self._last, self.W, self.Ht = self._iterate(self.W, self.Ht)
            return
        accepted = self.evaluate()
        if self._previous is None:  # no direction yet: a plain step
            self._previous = (self.W, self.Ht)
            self._last, self.W, self.Ht = self._iterate(self.W, self.Ht)
            return
        W_prev, Ht_prev = self._previous
        beta = self._momentum.beta
        trial = self._iterate(self.W, extrapolate(self.Ht, Ht_prev, beta), W_prev, beta, bound=accepted[0])
        self._previous = (self.W, self.Ht)
        if trial is not None:
            self._momentum.succeeded()
        else:
            self._momentum.failed()
            trial = self._iterate(self.W, self.Ht)
        self._last, self.W, self.Ht = trial

    def _iterate(self, W, Ht, W_prev=None, beta=0.0, bound=None):
        """One iteration from (``W`` or its extrapolation from ``W_prev``, ``Ht``):
        ``((objective, squared), W, Ht)``, or None once the W half-step ends above
        ``bound`` (see ``FrobeniusAlternating.iterate``)."""
        p = self.penalties
        HtH = Ht.T @ Ht
        W, (WtW, inner, XtW, sum_W) = self.data.run(
            _frobenius_rows, [W, W_prev], (Ht, HtH, self._steps["W"], p.l1_W, p.l2_W, beta), columns=Ht.shape[1]
        )
        if bound is not None and self._objective(W, Ht, WtW, inner, sum_W, HtH)[0] > bound:
            return None
        Ht = Ht.copy()
        with keeping_dropped(Ht, WtW[None]):
            self._steps["H"](Ht, XtW, WtW[None], p.l1_H, p.l2_H)
        return self._objective(W, Ht, WtW, dot64(Ht, XtW), sum_W), W, Ht

    def _objective(self, W, Ht, WtW, inner, sum_W, HtH=None):
        """``(objective, ‖X − WH‖²)`` from ``inner`` = ⟨F, YF⟩ of the last half-step."""
        HtH = Ht.T @ Ht if HtH is None else HtH
        squared = self.data.sqnorm - 2 * inner + dot64(WtW, HtH)
        if squared < self._floor:  # digits lost to cancellation: compute it exactly
            squared = self.data.run(_residual_rows, [W], (Ht,))[1]
        penalty = self.penalties.from_sums(sum_W, Ht.sum(dtype=np.float64), np.trace(WtW), np.trace(HtH))
        return 0.5 * squared + penalty, squared

    def gradient_norm(self, W, Ht):
        """Norm of the projected gradient of the penalised objective at (W, Hᵀ)."""
        p = self.penalties
        _, (sq_W, WtW, XtW) = self.data.run(_gradient_rows, [W], (Ht, Ht.T @ Ht, p.l1_W, p.l2_W))
        grad_H = Ht @ WtW - XtW + p.l1_H + p.l2_H * Ht
        return np.sqrt(sq_W + projected_gradient_sqnorm(Ht, grad_H))


class BetaMU:
    """``mu.BetaMU`` for distributed X, with one round trip per iteration.

    The task that evaluates the current factors on a row block (the pass that forms
    W's update also yields the divergence) goes on to update W_i and to form its share
    of Hᵀ's update, which ``advance`` then applies. When the driver stops after an
    evaluation instead, that updated W is dropped: only the run's last evaluation does
    work that is not used, where evaluating and then advancing separately would cost a
    second round trip every iteration.
    """

    def __init__(self, data, W, Ht, penalties, beta):
        self.data, self.W, self.Ht, self.penalties = data, W, Ht, penalties
        self.beta = beta
        self._gamma = exponent(beta)
        self._pending = None  # (updated W, reports) from the current factors

    def evaluate(self):
        if self._pending is None:
            p = self.penalties
            self._pending = self.data.run(
                _beta_iteration_rows, [self.W], (self.Ht, self.beta, p.l1_W, p.l2_W, self._gamma),
                columns=self.Ht.shape[1],
            )
        divergence, squared, sum_W, sq_W = self._pending[1][0]
        Ht = self.Ht
        return divergence + self.penalties.from_sums(sum_W, Ht.sum(dtype=np.float64), sq_W, dot64(Ht, Ht)), squared

    def advance(self):
        p = self.penalties
        if self._pending is None:
            self.evaluate()
        self.W, (_, (num, den)) = self._pending
        self.Ht = self.Ht.copy()
        multiplicative_step(self.Ht, num, den, p.l1_H, p.l2_H, self._gamma)
        self._pending = None

    def gradient_norm(self, W, Ht):
        """Norm of the projected gradient of the penalised objective at (W, Hᵀ)."""
        p = self.penalties
        _, (sq_W, num, den) = self.data.run(_beta_gradient_rows, [W], (Ht, self.beta, p.l1_W, p.l2_W))
        grad_H = den - num + p.l1_H + p.l2_H * Ht
        return np.sqrt(sq_W + projected_gradient_sqnorm(Ht, grad_H))


def _register_sizes():
    """Tell Dask's memory manager how big a loaded block is (for spilling to disk)."""
    from dask.sizeof import sizeof

    sizeof.register(DenseData, lambda block: block.Y.nbytes)
    sizeof.register(SparseData, lambda block: 2 * (block.Y.data.nbytes + block.Y.indices.nbytes))


_register_sizes()

__all__ = ["DaskData", "RowBlocks", "SOLVERS", "load"]
