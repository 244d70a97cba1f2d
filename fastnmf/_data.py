"""The data layer: every input kind behind the same few operations (DESIGN.md §1).

Solvers never touch X directly. They see an object with

- ``shape``, ``dtype``, ``sqnorm`` (‖X‖², float64), ``total`` (ΣX, float64);
- ``T``: the same data transposed (a view, nothing copied), so a solver written for
  the half-problem ``min_F ‖Y − F Gᵀ‖`` serves W (Y = X) and Hᵀ (Y = Xᵀ);
- ``matmul(G)`` = ``Y @ G``, and ``product_seconds(k)``, the modelled time of it and
  of the Grams (for time-based budgets);
- ``blas_threads``: the BLAS threads a solver should run with (None: all). Only dense
  products need threaded BLAS; between the parallel kernels of sparse and masked data,
  OpenBLAS's idle workers spin on the cores the kernels need (measured on 2 cores:
  sparse HALS and MU-KL 60 → 36 ms per iteration at 20000×10000, k=30, with one);
- ``gram_blocks(G, GtG)``: the Gram matrices of the half-problem in row blocks
  ``(rows, Q)``: one block ``Q = GtG[None]`` shared by every row, or, with missing
  values (``per_row_grams``), one Gram per row (of the columns of G the row observes);
- ``residual_sqnorm(F, G)`` = ``‖Y − F Gᵀ‖²`` exactly (float64, observed entries);
- ``beta_products(F, G, beta)``: the numerator and denominator of the β-divergence
  multiplicative update of F, with the divergence and squared residual of ``F Gᵀ``.

``DenseData``, ``SparseData`` and ``MaskedData`` implement it (and ``LowRankData``, a
sketch of a dense X for the warm start); ``load`` picks the class
for the caller's input. Dask inputs are a further class with the same interface.
``SharedProducts`` wraps any of them for runs that advance together in threads and
share one pass over X per product.
"""

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from . import _validation as v
from ._config import ACCUMULATORS, BLOCK_ELEMENTS, DENSE_PRODUCT_FLOPS, GRAM_FLOPS, SPARSE_PRODUCT_FLOPS
from ._kernels.blocks import beta_weights, inner64, residual_sqnorm
from ._kernels.sparse import nnz_beta, row_grams, spmm
from ._threading import blas_limits

# Per-row Gram matrices are formed this many entries (rows × k²) at a time.
GRAM_BLOCK_ELEMENTS = 1 << 20

_pool = None  # the helper threads of _run_tasks, started on first use
_pool_lock = threading.Lock()


def _forget_pool():
    """In a forked child the pool's threads do not exist: start a new pool when needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run_tasks(n_tasks, work):
    """``[work(i, slot) for i in range(n_tasks)]``, on Numba's thread count of threads.

    Threads take the next task as they finish one; ``slot`` (0 for the calling thread)
    names the thread's scratch. Each task's result depends on the task alone, and the
    caller combines them in task order, so the outcome is the same for any thread count.
    """
    n_threads = min(numba.get_num_threads(), n_tasks)
    if n_threads <= 1:
        return [work(i, 0) for i in range(n_tasks)]
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1), "fastnmf-blocks")
    results = [None] * n_tasks
    claim = itertools.count().__next__  # atomic under the GIL
    stop = threading.Event()  # a failed task stops the others early

    def worker(slot):
        i = claim()
        while i < n_tasks and not stop.is_set():
            try:
                results[i] = work(i, slot)
            except BaseException:
                stop.set()
                raise
            i = claim()

    helpers = [_pool.submit(worker, slot) for slot in range(1, n_threads)]
    try:
        worker(0)
    finally:
        # a helper not started yet (the pool busy with another call) has nothing left to
        # do; one that has started may still be using its scratch: wait for it
        errors = [None if h.cancel() else h.exception() for h in helpers]
    for error in errors:
        if error is not None:
            raise error
    return results


def load(X, mask=None, missing=None, beta=2.0):
    """Validate the caller's X (and mask) once and wrap it in the data layer.

    Parameters
    ----------
    X : array-like or scipy.sparse (m, n)
    mask : bool array-like or scipy.sparse (m, n), optional
        True where X is observed; entries where it is False are never read.
    missing : {None, "zeros"}
        "zeros": the implicit zeros of a sparse X are unobserved.
    beta : float
        β of the loss; masks with β ≤ 0 keep the observed entries explicitly.
    """
    v.check_missing(missing, X, mask)
    if v.is_sparse(X):
        csr = v.as_csr(X)
        if missing == "zeros":
            return MaskedData.observed(csr)
        if mask is not None:
            mask = v.check_mask(mask, csr.shape)
        if mask is None:
            return SparseData(csr, *v.check_sparse_values("X", csr))
        return MaskedData.from_mask(csr, mask, beta)
    arr = v.as_dense_2d(X)
    if mask is not None:
        mask = v.check_mask(mask, arr.shape)
    if mask is None:
        return DenseData(arr, *v.check_values("X", arr))
    return MaskedData.from_mask(arr, mask, beta)


class _BlockPasses:
    """Passes over X that need the entries of ``F Gᵀ``: formed one block of rows of X at
    a time by a GEMM, so no m×n temporary exists.

    Blocks run on several Python threads at once, each block's GEMMs in one BLAS
    thread and its element-wise kernel serial, so all of a block's work stays on one
    core and in its cache, and no BLAS or Numba pool spins between the steps.

    Subclasses provide ``_block_rows()``, the slices of X's (C-ordered) rows, one per
    block; ``_block(F, G, rows, slot)`` returning ``(X, r0, WH)``: the block of WH, in
    the scratch of thread ``slot``, faces ``X[r0:r0 + len(WH)]``; ``_transposed`` (True
    when F holds the columns of that X, so a block of rows of X is a block of rows of
    G) and ``_block_size()`` (entries of one block).
    """

    def _scratch(self, which, slot=0):
        """Scratch array ``which`` (0, 1 or 2) of thread ``slot`` for one block, allocated
        on first use and then reused by every pass of this orientation (a data object
        belongs to one call)."""
        buffer = self._buffers.get((which, slot))
        if buffer is None:
            buffer = self._buffers[which, slot] = np.empty(self._block_size(), self.dtype)
        return buffer

    def residual_sqnorm(self, F, G):
        """Exact ``‖Y − F Gᵀ‖²`` in float64, one block of WH at a time."""
        blocks = self._block_rows()

        def task(i, slot):
            return residual_sqnorm(*self._block(F, G, blocks[i], slot))

        with blas_limits(1):  # one BLAS thread per block (see the class docstring)
            return sum(_run_tasks(len(blocks), task))  # in block order

    def beta_products(self, F, G, beta, with_objective=True):
        """Numerator and denominator of the multiplicative update of F for D_β(Y‖F Gᵀ).

        Returns ``(numerator, denominator, divergence, squared_residual)``:
        ``numerator = (Y ∘ (FGᵀ)^(β−2)) G`` and ``denominator = (FGᵀ)^(β−1) G``, shaped
        like F (for β = 1 the denominator's rows are all ΣG: one row, (1, k)), and the
        divergence and ‖Y − FGᵀ‖² of the current factors (0 and 0 unless
        ``with_objective``).

        When F holds rows of X, each block gives its rows of the products. When F holds
        columns of X, blocks of rows of X are still the fast way through X (contiguous
        rows, and GEMMs of the same shapes), and each block adds ``Qᵀ G[rows]`` to the
        products: blocks are summed in ``ACCUMULATORS`` fixed groups of consecutive
        blocks, one running sum each, then the groups in order, so the rounding does not
        depend on the thread count.
        """
        tiny = _tiny(self.dtype)
        blocks = self._block_rows()
        need_den = beta != 1.0  # β = 1: (FGᵀ)^0 = 1, every row of the denominator is ΣG

        def block(rows, slot, num, den):
            """Weights of one block into ``num`` (and ``den``); its divergence and residual."""
            X, r0, Q = self._block(F, G, rows, slot)
            DEN = self._scratch(1, slot)[: Q.size].reshape(Q.shape) if need_den else Q[:0]
            sums = beta_weights(X, r0, Q, DEN, beta, tiny, with_objective)
            if self._transposed:  # rows of G: this block's share of every row of F
                num += Q.T @ G[rows]
                if need_den:
                    den += DEN.T @ G[rows]
            else:
                np.matmul(Q, G, out=num[rows])
                if need_den:
                    np.matmul(DEN, G, out=den[rows])
            return sums

        if not self._transposed:  # one task per block, each writing its rows
            tasks = [[i] for i in range(len(blocks))]
            out = (np.empty_like(F), np.empty_like(F) if need_den else None)
            outs = [out] * len(tasks)
        else:  # one task per group of consecutive blocks, each with its running sums
            tasks = np.array_split(np.arange(len(blocks)), max(1, min(len(blocks), ACCUMULATORS)))
            outs = [(np.zeros_like(F), np.zeros_like(F) if need_den else None) for _ in tasks]

        def task(t, slot):
            return [block(blocks[i], slot, *outs[t]) for i in tasks[t]]

        with blas_limits(1):  # one BLAS thread per block (see the class docstring)
            sums = [block_sums for group in _run_tasks(len(tasks), task) for block_sums in group]
        num, den = outs[0]
        if self._transposed:
            for group_num, group_den in outs[1:]:  # the groups in order
                num += group_num
                if need_den:
                    den += group_den
        divergence = sum(d for d, _ in sums)  # in block order, for any thread count
        squared = sum(s for _, s in sums)
        if not need_den:
            den = G.sum(axis=0, keepdims=True)
        return num, den, divergence, squared


def _flipped(data, **changed):
    """``data.T``: one object, made on first use, that shares every attribute of ``data``
    but the ``changed`` ones, and whose own ``T`` is ``data``."""
    if data._flipped is None:
        flipped = object.__new__(type(data))
        flipped.__dict__.update(data.__dict__, **changed)
        flipped._flipped = data
        data._flipped = flipped
    return data._flipped


def _tiny(dtype):
    """Entries of WH are raised to this before powers and divisions."""
    return np.finfo(dtype).tiny ** 0.25


class DenseData(_BlockPasses):
    """A dense X in any memory order, used in place (memory maps included).

    Parameters
    ----------
    X : ndarray (m, n), float32 or float64, C- or Fortran-contiguous
        Validated data; never written to.
    total, sqnorm : float
        ΣX and ‖X‖², computed once by the validation scan.
    n_zeros : int
        Number of zero entries of X.
    """

    blas_threads = None
    per_row_grams = False

    def __init__(self, X, total, sqnorm, n_zeros):
        # Keep the C-ordered orientation: a Fortran array is the C-ordered transpose.
        if X.flags.c_contiguous:
            self._native, self._transposed = X, False
        else:
            self._native, self._transposed = X.T, True
        self.total = total
        self.sqnorm = sqnorm
        self.n_zeros = n_zeros
        self.n_observed = X.size
        self._flipped = None
        self._buffers = {}

    @property
    def shape(self):
        m, n = self._native.shape
        return (n, m) if self._transposed else (m, n)

    @property
    def dtype(self):
        return self._native.dtype

    @property
    def T(self):
        """The transposed data (shares X and its sums)."""
        return _flipped(self, _transposed=not self._transposed, _buffers={})

    @property
    def Y(self):
        """The array this view represents (a view of X or of Xᵀ)."""
        return self._native.T if self._transposed else self._native

    def matmul(self, G):
        """``Y @ G`` for ``G`` of shape (columns of Y, k)."""
        return self.Y @ G

    def product_seconds(self, k):
        return 2.0 * self._native.size * k / DENSE_PRODUCT_FLOPS

    def gram_blocks(self, G, GtG):
        """Every row shares ``GᵀG``: one block."""
        yield slice(None), GtG[None]

    def _block_step(self):
        """Rows of the C-ordered X per block, so a block holds ~BLOCK_ELEMENTS entries."""
        return max(1, BLOCK_ELEMENTS // self._native.shape[1])

    def _block_size(self):
        return self._block_step() * self._native.shape[1]

    def _block_rows(self):
        m, step = self._native.shape[0], self._block_step()
        return [slice(a, min(m, a + step)) for a in range(0, m, step)]

    def _block(self, F, G, rows, slot):
        n = self._native.shape[1]
        WH = self._scratch(0, slot)[: (rows.stop - rows.start) * n].reshape(-1, n)
        if not self._transposed:  # F holds rows of X: WH = F[rows] Gᵀ
            np.matmul(F[rows], G.T, out=WH)
        else:  # F holds columns of X, G its rows: WH = G[rows] Fᵀ
            np.matmul(G[rows], F.T, out=WH)
        return self._native, rows.start, WH


class _CSR:
    """The arrays of one orientation of a sparse matrix, in the kernels' types."""

    def __init__(self, csr):
        # Aligned too (a Dask chunk may be deserialised into a byte buffer): Numba
        # would compile the kernels again for unaligned arrays.
        self.shape = csr.shape
        self.indptr = np.require(csr.indptr, np.int64, "A")
        self.indices = np.require(csr.indices, np.int32, "A")
        self.data = np.require(csr.data, requirements="A")

    @classmethod
    def both(cls, csr):
        """``(rows, columns)``: the CSR of X and the CSR of Xᵀ, converted once."""
        return cls(csr), cls(csr.T.tocsr())

    def matmul(self, G):
        """``Y @ G`` by the parallel sparse-times-dense kernel (G of this data's dtype)."""
        out = np.empty((self.shape[0], G.shape[1]), dtype=G.dtype)
        spmm(self.indptr, self.indices, self.data, np.ascontiguousarray(G), out)
        return out

    def scipy(self):
        import scipy.sparse

        return scipy.sparse.csr_array((self.data, self.indices, self.indptr), shape=self.shape)


class SparseData(_BlockPasses):
    """A scipy.sparse X, held as CSR in both orientations (converted once).

    Products go through the parallel ``spmm`` kernel; the generalised KL divergence and
    its multiplicative update touch the non-zeros only (O(nnz·k), Lee & Seung 2001 with
    ``Σ_ij (WH)_ij = (Σ_i w_i)·(Σ_j h_j)`` for the zeros). Other β need every entry of
    WH: they fall back to dense blocks of X (``_BlockPasses``), still without an m×n
    temporary.

    Parameters
    ----------
    csr : scipy.sparse.csr_array
        Canonical (sorted, no duplicates) private copy; float32 or float64.
    total, sqnorm : float
    n_nonzero : int
        Stored entries that are not 0.
    """

    _transposed = False  # each orientation has its own CSR: blocks are always rows
    blas_threads = 1
    per_row_grams = False

    def __init__(self, csr, total, sqnorm, n_nonzero):
        self._rows, self._cols = _CSR.both(csr)
        m, n = csr.shape
        self.total, self.sqnorm = total, sqnorm
        self.n_zeros = m * n - n_nonzero
        self.n_observed = m * n
        self._flipped = None
        self._buffers = {}

    @property
    def shape(self):
        return self._rows.shape

    @property
    def dtype(self):
        return self._rows.data.dtype

    @property
    def T(self):
        """The transposed data (shares both CSR arrays and the sums)."""
        return _flipped(self, _rows=self._cols, _cols=self._rows, _buffers={})

    @property
    def Y(self):
        """This orientation as a scipy CSR array (sharing the data)."""
        return self._rows.scipy()

    def matmul(self, G):
        """``Y @ G`` by the parallel sparse-times-dense kernel."""
        return self._rows.matmul(G)

    def product_seconds(self, k):
        return 2.0 * self._rows.data.size * k / SPARSE_PRODUCT_FLOPS

    def gram_blocks(self, G, GtG):
        """Every row shares ``GᵀG``: one block."""
        yield slice(None), GtG[None]

    def _block_step(self):
        return max(1, BLOCK_ELEMENTS // self.shape[1])

    def _block_size(self):
        return self._block_step() * self.shape[1]

    def _block_rows(self):
        m, step = self.shape[0], self._block_step()
        return [slice(a, min(m, a + step)) for a in range(0, m, step)]

    def _block(self, F, G, rows, slot):
        """A dense block of rows of Y (written into scratch 2) beside F[rows] Gᵀ."""
        size = (rows.stop - rows.start) * self.shape[1]
        X = self._scratch(2, slot)[:size].reshape(-1, self.shape[1])
        X[:] = 0
        self.Y[rows].toarray(out=X)
        WH = self._scratch(0, slot)[:size].reshape(X.shape)
        return X, 0, np.matmul(F[rows], G.T, out=WH)

    def beta_products(self, F, G, beta, with_objective=True):
        """As ``_BlockPasses.beta_products``; for KL at the non-zeros only."""
        if beta != 1.0:
            return super().beta_products(F, G, beta, with_objective)
        Y = self._rows
        num = np.empty_like(F)
        divergence, squared, sum_v, sum_v2 = nnz_beta(
            Y.indptr, Y.indices, Y.data, F, G, 1.0, _tiny(self.dtype), num, F[:0], False, with_objective
        )
        G_sum = G.sum(axis=0, dtype=np.float64)
        den = G_sum[None, :].astype(F.dtype)  # (FGᵀ)^0 = 1: every row is ΣG
        if with_objective:
            # The zeros add (WH)_ij to the divergence and (WH)_ij² to the residual.
            divergence += F.sum(axis=0, dtype=np.float64) @ G_sum - sum_v
            squared += _gram_inner(F, G) - sum_v2
        return num, den, divergence, squared


class LowRankData:
    """The rank-w matrix ``X̂ = Q Pᵀ`` (Q: m × w with orthonormal columns, P = XᵀQ: n × w),
    a sketch of a dense X that the warm start (``_solvers.warm``) iterates on.

    Its products cost O((m + n)·w·k) instead of O(m·n·k). As X̂ = QQᵀX is an orthogonal
    projection of X, ``‖X − WH‖² = ‖X̂ − WH‖² + ‖X − X̂‖² − 2⟨WH, X − X̂⟩``: the objective
    on X̂ plus ``gap_sqnorm`` (= ‖X − X̂‖²) is the one on X up to the last term, which
    vanishes when the columns of W H lie in Q's range.
    """

    blas_threads = None
    per_row_grams = False

    def __init__(self, Q, P, total_sqnorm):
        self._Q, self._P, self._transposed = Q, P, False
        self.sqnorm = float(inner64(P.ravel(), P.ravel()))
        self.gap_sqnorm = max(total_sqnorm - self.sqnorm, 0.0)
        self._flipped = None

    @property
    def shape(self):
        m, n = self._Q.shape[0], self._P.shape[0]
        return (n, m) if self._transposed else (m, n)

    @property
    def dtype(self):
        return self._Q.dtype

    @property
    def T(self):
        """The transposed sketch (shares Q, P and the sums)."""
        return _flipped(self, _transposed=not self._transposed)

    def _factors(self):
        """(A, B) with Y = A Bᵀ for this orientation."""
        return (self._P, self._Q) if self._transposed else (self._Q, self._P)

    def matmul(self, G):
        A, B = self._factors()
        return A @ (B.T @ G)

    def product_seconds(self, k):
        return 2.0 * (self._Q.size + self._P.size) * k / DENSE_PRODUCT_FLOPS

    def gram_blocks(self, G, GtG):
        yield slice(None), GtG[None]

    def residual_sqnorm(self, F, G):
        """Exact ``‖Y − F Gᵀ‖²`` in float64, a block of rows at a time."""
        A, B = self._factors()
        step = max(1, BLOCK_ELEMENTS // B.shape[0])
        total = 0.0
        for start in range(0, A.shape[0], step):
            rows = slice(start, start + step)
            R = A[rows].astype(np.float64) @ B.T - F[rows].astype(np.float64) @ G.T
            total += float(np.einsum("ij,ij->", R, R))
        return total


def _gram_inner(F, G):
    """``‖F Gᵀ‖² = ⟨FᵀF, GᵀG⟩`` in float64."""
    F64, G64 = F.astype(np.float64, copy=False), G.astype(np.float64, copy=False)
    return float(np.vdot(F64.T @ F64, G64.T @ G64))


class MaskedData:
    """X with unobserved entries, which never enter the loss nor are read.

    The observed part is held in one of two forms, chosen by the fraction observed:

    - *observed* (at most half observed, or β ≤ 0): the observed entries as a sparse
      matrix with explicit zeros (``values``), whose pattern is the observed set;
    - *complement* (mostly observed): ``values`` = X with unobserved entries set to 0
      (dense or sparse like X, so products keep BLAS speed) and the pattern of the
      missing entries, whose contributions are subtracted.

    Each row of a factor then sees its own Gram matrix: ``Σ_{j observed} g_j g_jᵀ``,
    or ``GᵀG − Σ_{j missing} g_j g_jᵀ`` in the complement form (whichever sum is
    shorter), formed in row blocks by ``row_grams``.
    """

    per_row_grams = True

    def __init__(self, values, pattern, complement, n_observed, n_nonzero):
        self.values = values
        self._pattern, self._pattern_T = pattern
        self.complement = complement
        self.total, self.sqnorm = values.total, values.sqnorm
        self.n_observed = n_observed
        self.n_zeros = n_observed - n_nonzero
        self._zeros = np.zeros(self._pattern.indices.size if complement else 0, values.dtype)
        self._flipped = None

    @classmethod
    def observed(cls, csr):
        """The stored entries of ``csr`` (explicit zeros included) are the observed ones."""
        total, sqnorm, n_nonzero = v.check_sparse_values("X", csr)
        values = SparseData(csr, total, sqnorm, n_nonzero)
        return cls(values, (values._rows, values._cols), False, csr.nnz, n_nonzero)

    @classmethod
    def from_mask(cls, X, mask, beta):
        """X (ndarray or canonical CSR) observed where ``mask`` (bool ndarray or CSR) is True."""
        import scipy.sparse

        m, n = X.shape
        sparse_mask = v.is_sparse(mask)
        n_observed = mask.nnz if sparse_mask else int(np.count_nonzero(mask))
        if 2 * n_observed <= m * n or beta <= 0:
            rows, cols = mask.nonzero()
            gathered = X[rows, cols]  # reads the observed entries only
            data = np.asarray(gathered.todense() if v.is_sparse(gathered) else gathered).ravel()
            observed = scipy.sparse.csr_array((data.astype(X.dtype), (rows, cols)), shape=(m, n))
            return cls.observed(observed)
        dense_mask = mask.toarray() if sparse_mask else mask
        missing = _CSR.both(scipy.sparse.csr_array(~dense_mask))
        if v.is_sparse(X):
            rows = np.repeat(np.arange(m), np.diff(X.indptr))
            keep = dense_mask[rows, X.indices]  # stored entries that are observed
            V = scipy.sparse.csr_array((X.data[keep], (rows[keep], X.indices[keep])), shape=(m, n))
            total, sqnorm, n_nonzero = v.check_sparse_values("X", V)
            values = SparseData(V, total, sqnorm, n_nonzero)
        else:
            V = np.where(dense_mask, X, X.dtype.type(0))  # unobserved entries never used
            total, sqnorm, n_zeros = v.check_values("X", V)
            values = DenseData(V, total, sqnorm, n_zeros)
            n_nonzero = V.size - n_zeros
        return cls(values, missing, True, n_observed, n_nonzero)

    @property
    def shape(self):
        return self.values.shape

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def blas_threads(self):
        """Those of the values: with dense values (complement form) the products are
        GEMMs as long as those of X unmasked, which want every thread."""
        return self.values.blas_threads

    @property
    def T(self):
        """The transposed data (shares the values and the patterns)."""
        return _flipped(self, values=self.values.T, _pattern=self._pattern_T, _pattern_T=self._pattern)

    @property
    def Y(self):
        """The observed values with unobserved entries as 0 (for the SVD inits)."""
        return self.values.Y

    def matmul(self, G):
        """``(M ∘ Y) @ G``: unobserved entries count as 0."""
        return self.values.matmul(G)

    def product_seconds(self, k):
        return self.values.product_seconds(k) + self._pattern.indices.size * k * k / GRAM_FLOPS

    def gram_blocks(self, G, GtG):
        """Per-row Gram matrices of the observed columns of G, in blocks of rows."""
        P = self._pattern
        r, k = P.shape[0], G.shape[1]
        step = max(1, GRAM_BLOCK_ELEMENTS // (k * k))
        Q = np.empty((min(step, r), k, k), G.dtype)
        G, GtG = np.ascontiguousarray(G), np.ascontiguousarray(GtG)
        for r0 in range(0, r, step):
            block = Q[: min(step, r - r0)]
            row_grams(P.indptr, P.indices, G, GtG, self.complement, r0, block)
            yield slice(r0, r0 + block.shape[0]), block

    def residual_sqnorm(self, F, G):
        """Exact ``‖M ∘ (Y − F Gᵀ)‖²`` in float64."""
        if not self.complement:
            return self._nnz_pass(self.values._rows, F, G, 2.0, False)[3]
        missing = self._nnz_pass(None, F, G, 2.0, False)[3]
        return self.values.residual_sqnorm(F, G) - missing

    def beta_products(self, F, G, beta, with_objective=True):
        """As ``DenseData.beta_products`` over the observed entries only."""
        if not self.complement:
            return self._nnz_pass(self.values._rows, F, G, beta, True, with_objective)
        num, den, divergence, squared = self.values.beta_products(F, G, beta, with_objective)
        _, den_missing, div_missing, sq_missing = self._nnz_pass(
            None, F, G, beta, True, with_objective
        )
        den = np.maximum(den - den_missing, 0)  # 0: round-off of the subtraction
        return num, den, divergence - div_missing, squared - sq_missing

    def _nnz_pass(self, csr, F, G, beta, need_den, with_objective=True):
        """``(num, den, divergence, squared)`` summed over the entries of ``csr``, or of
        the missing pattern (``csr=None``), whose entries count as zeros."""
        csr, data = (self._pattern, self._zeros) if csr is None else (csr, csr.data)
        num = np.empty_like(F)
        den = np.empty_like(F) if need_den else F[:0]
        divergence, squared, _, _ = nnz_beta(
            csr.indptr, csr.indices, data, F, np.ascontiguousarray(G), beta, _tiny(self.dtype),
            num, den, need_den, with_objective,
        )
        return num, den, divergence, squared


class SharedProducts:
    """One data object for several runs that advance together, one thread per run.

    At small k a product ``Y @ G`` is bound by reading X, not by its flops (on 2 cores,
    2000×1000: 2.0 ms for k = 6, 6.6 ms for ten such G side by side). So the runs'
    products are gathered: ``view(run)`` is the data as run ``run`` sees it, whose
    ``matmul`` waits until every run still going has asked for its next product, and
    then one product per orientation serves them all, the Gs side by side in run order
    (so the outcome does not depend on which thread came last). A run calls
    ``leave(run)`` when it ends; its later products (for its result) are its own.
    Between products, at most ``n_threads`` runs compute at once (``enter`` takes a
    place, waiting for a product gives it back).
    Everything else is the wrapped data's. Only ``matmul`` and ``residual_sqnorm`` may
    be called from several threads at once: solvers that use other passes (β ≠ 2)
    must not share.
    """

    def __init__(self, data, n_runs, n_threads):
        self._sides = (data, data.T)
        self._going = set(range(n_runs))
        self._asked = {}  # run -> (orientation, G), for the runs waiting on a product
        self._answers = {}  # run -> its product, or the exception computing it raised
        self._ready = threading.Condition()
        self._places = threading.Semaphore(n_threads)
        self._exact = threading.Lock()  # residual_sqnorm uses the data's scratch

    def enter(self):
        """Wait for a place to compute in (a run calls this when it starts)."""
        self._places.acquire()

    def view(self, run):
        """The data as run ``run`` sees it."""
        return _RunView(self, run, 0)

    def leave(self, run):
        """Run ``run`` has ended: the others stop waiting for it."""
        self._places.release()
        with self._ready:
            self._going.discard(run)
            self._answer_if_all_asked()

    def product(self, run, side, G):
        """``Y @ G`` for run ``run`` (``side`` 0: Y = X, 1: Y = Xᵀ), computed together with
        the products every other run still going asks for."""
        with self._ready:
            alone = run not in self._going
            if not alone:
                self._places.release()
                self._asked[run] = (side, G)
                self._answer_if_all_asked()
                while run not in self._answers:
                    self._ready.wait()
                answer = self._answers.pop(run)
        if alone:
            return self._sides[side].matmul(G)
        self._places.acquire()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def residual_sqnorm(self, side, F, G):
        with self._exact:
            return self._sides[side].residual_sqnorm(F, G)

    def _answer_if_all_asked(self):
        if not self._asked or len(self._asked) < len(self._going):
            return
        asked, self._asked = self._asked, {}
        for side in (0, 1):
            runs = sorted(run for run, (s, _) in asked.items() if s == side)
            if not runs:
                continue
            try:
                Gs = [asked[run][1] for run in runs]
                product = self._sides[side].matmul(np.hstack(Gs) if len(Gs) > 1 else Gs[0])
                edges = np.cumsum([0] + [G.shape[1] for G in Gs])
                for run, a, b in zip(runs, edges[:-1], edges[1:]):
                    self._answers[run] = np.ascontiguousarray(product[:, a:b])
            except BaseException as error:  # every waiting run raises it
                self._answers.update((run, error) for run in runs)
        self._ready.notify_all()


class _RunView:
    """The data as one run of ``SharedProducts`` sees it (``side`` 1: transposed)."""

    def __init__(self, shared, run, side):
        self._shared, self._run, self._side = shared, run, side

    def __getattr__(self, name):
        return getattr(self._shared._sides[self._side], name)

    @property
    def T(self):
        return _RunView(self._shared, self._run, 1 - self._side)

    @property
    def source(self):
        """The data whose passes this view shares (for what a run computes from X on
        its own: the sketch of ``_solvers.warm``)."""
        return self._shared._sides[self._side]

    def matmul(self, G):
        return self._shared.product(self._run, self._side, G)

    def residual_sqnorm(self, F, G):
        return self._shared.residual_sqnorm(self._side, F, G)
