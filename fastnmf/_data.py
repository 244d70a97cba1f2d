"""The data layer: every input kind behind the same few operations (DESIGN.md §1).

Solvers never touch X directly. They see an object with

- ``shape``, ``dtype``, ``sqnorm`` (‖X‖², float64), ``total`` (ΣX, float64);
- ``T``: the same data transposed (a view, nothing copied), so a solver written for
  the half-problem ``min_F ‖Y − F Gᵀ‖`` serves W (Y = X) and Hᵀ (Y = Xᵀ);
- ``matmul(G)`` = ``Y @ G``;
- ``residual_sqnorm(F, G)`` = ``‖Y − F Gᵀ‖²`` exactly (float64);
- ``beta_products(F, G, beta)``: the numerator and denominator of the β-divergence
  multiplicative update of F, with the divergence and squared residual of ``F Gᵀ``.

Sparse, masked and Dask inputs are further classes with the same interface.
"""

import numpy as np

from ._config import BLOCK_ELEMENTS
from ._kernels.blocks import beta_weights, residual_sqnorm
from ._threading import blas_limits


class DenseData:
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

    def __init__(self, X, total, sqnorm, n_zeros):
        # Keep the C-ordered orientation: a Fortran array is the C-ordered transpose.
        if X.flags.c_contiguous:
            self._native, self._transposed = X, False
        else:
            self._native, self._transposed = X.T, True
        self.total = total
        self.sqnorm = sqnorm
        self.n_zeros = n_zeros
        self._flipped = None
        self._buffers = [None, None]

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
        if self._flipped is None:
            flipped = object.__new__(DenseData)
            flipped._native, flipped._transposed = self._native, not self._transposed
            flipped.total, flipped.sqnorm, flipped.n_zeros = self.total, self.sqnorm, self.n_zeros
            flipped._flipped = self
            flipped._buffers = [None, None]
            self._flipped = flipped
        return self._flipped

    @property
    def Y(self):
        """The array this view represents (a view of X or of Xᵀ)."""
        return self._native.T if self._transposed else self._native

    def matmul(self, G):
        """``Y @ G`` for ``G`` of shape (columns of Y, k)."""
        return self.Y @ G

    def _block_step(self):
        """Rows (or columns) of X per block, so a block holds ~BLOCK_ELEMENTS entries."""
        m, n = self._native.shape
        return max(1, BLOCK_ELEMENTS // (m if self._transposed else n))

    def _scratch(self, which):
        """Scratch array ``which`` (0 or 1) for one block, allocated on first use and then
        reused by every pass of this orientation (a data object belongs to one call)."""
        if self._buffers[which] is None:
            m, n = self._native.shape
            self._buffers[which] = np.empty(self._block_step() * (m if self._transposed else n), self.dtype)
        return self._buffers[which]

    def _blocks(self, F, G, scratch):
        """Yield ``(slice of F's rows, r0, c0, WH)`` covering Y ≈ F Gᵀ block by block.

        WH is written into ``scratch`` and laid out like the native (C-ordered) block of
        X it faces, so the element-wise kernels walk X along its rows whichever
        orientation Y has.
        """
        m, n = self._native.shape
        step = self._block_step()
        if not self._transposed:  # F holds rows of X: blocks of rows, WH = F[rows] Gᵀ
            for r0 in range(0, m, step):
                rows = slice(r0, min(m, r0 + step))
                WH = scratch[: (rows.stop - r0) * n].reshape(rows.stop - r0, n)
                yield rows, r0, 0, np.matmul(F[rows], G.T, out=WH)
        else:  # F holds columns of X: blocks of columns, WH = G F[cols]ᵀ
            for c0 in range(0, n, step):
                cols = slice(c0, min(n, c0 + step))
                WH = scratch[: m * (cols.stop - c0)].reshape(m, cols.stop - c0)
                yield cols, 0, c0, np.matmul(G, F[cols].T, out=WH)

    def residual_sqnorm(self, F, G):
        """Exact ``‖Y − F Gᵀ‖²`` in float64, one block of WH at a time."""
        with blas_limits(1):  # small GEMMs between parallel kernels (see blas_limits)
            blocks = self._blocks(F, G, self._scratch(0))
            return sum(residual_sqnorm(self._native, r0, c0, WH) for _, r0, c0, WH in blocks)

    def beta_products(self, F, G, beta, with_objective=True):
        """Numerator and denominator of the multiplicative update of F for D_β(Y‖F Gᵀ).

        Returns ``(numerator, denominator, divergence, squared_residual)``:
        ``numerator = (Y ∘ (FGᵀ)^(β−2)) G`` and ``denominator = (FGᵀ)^(β−1) G``, both
        shaped like F, and the divergence and ‖Y − FGᵀ‖² of the current factors (0 and
        0 unless ``with_objective``).
        """
        tiny = np.finfo(self.dtype).tiny ** 0.25
        num = np.empty_like(F)
        den = np.empty_like(F)
        divergence = squared = 0.0
        den_scratch = self._scratch(1) if beta != 1.0 else None
        with blas_limits(1):  # small GEMMs between parallel kernels (see blas_limits)
            for rows, r0, c0, WH in self._blocks(F, G, self._scratch(0)):
                DEN = den_scratch[: WH.size].reshape(WH.shape) if beta != 1.0 else WH[:0]
                d, s = beta_weights(self._native, r0, c0, WH, DEN, beta, tiny, with_objective)
                divergence += d
                squared += s
                if self._transposed:  # the block is (m, |cols|): contract over X's rows
                    WH, DEN = WH.T, DEN.T
                np.matmul(WH, G, out=num[rows])
                if beta != 1.0:
                    np.matmul(DEN, G, out=den[rows])
        if beta == 1.0:  # (FGᵀ)^0 = 1: every row of the denominator is ΣG over rows
            den[:] = G.sum(axis=0)
        return num, den, divergence, squared
