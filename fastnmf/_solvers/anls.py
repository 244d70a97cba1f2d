"""Alternating least squares family: exact NNLS per half-step, truncated LS, GDCLS.

All are Frobenius half-steps on the products ``YG`` and ``GᵀG`` (DESIGN.md §1):

- ``ANLS``: each half-step solves its NNLS exactly (block principal pivoting, Kim & Park
  2011, or Lawson–Hanson active set), warm-started from the previous passive sets, with
  the extrapolation of ``base.Extrapolated`` between outer iterations;
- ``ALS``: the unconstrained least-squares solution with negatives set to 0. Cheap, but
  not a descent method: it may oscillate or stall away from a stationary point;
- ``GDCLS`` (Shahnaz et al. 2006, as in the Mathematica NNMF package): Hᵀ by
  regularised least squares ``(WᵀW + λI) H = WᵀX`` clipped at 0 (λ = ``l2_H``), W by
  a multiplicative update.
"""

import numpy as np
import scipy.linalg

from .._kernels import nnls as kernels
from .base import Extrapolated, FrobeniusAlternating, fold_penalties, gram_times
from .mu import multiplicative_step

# method -> (kernel for a Gram shared by all rows, kernel for one Gram per row)
_NNLS = {"bpp": (kernels.bpp, kernels.bpp_rows), "active_set": (kernels.active_set, kernels.active_set_rows)}


class ANLS(Extrapolated):
    """Alternating non-negative least squares with an exact NNLS per half-step."""

    def __init__(self, data, W, Ht, penalties, method):
        super().__init__(data, W, Ht, penalties)
        self._nnls = _NNLS[method]
        # Passive sets of the last solution of each factor: the next solve starts there.
        self._passive = {"W": W > 0, "H": Ht > 0}

    def half_step(self, F, YG, Q, l1, l2, side, rows):
        YG, Q = fold_penalties(YG, Q, l1, l2)
        shared, per_row = self._nnls
        YG, passive = np.ascontiguousarray(YG), self._passive[side][rows]
        if Q.shape[0] == 1:
            shared(np.ascontiguousarray(Q[0]), YG, F, passive)
        else:
            per_row(np.ascontiguousarray(Q), YG, F, passive)


def least_squares_clipped(F, YG, Q):
    """``F ← max(0, YG Q⁻¹)`` row by row (``Q`` as in ``gram_times``), a least-norm
    solution where Q is singular."""
    if Q.shape[0] == 1:
        try:
            factor = scipy.linalg.cho_factor(Q[0], check_finite=False)
            solution = scipy.linalg.cho_solve(factor, YG.T, check_finite=False).T
        except np.linalg.LinAlgError:
            solution = np.linalg.lstsq(Q[0], YG.T, rcond=None)[0].T
    else:
        try:
            solution = np.linalg.solve(Q, YG[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            solution = gram_times(YG, np.linalg.pinv(Q, hermitian=True))
    np.maximum(solution, 0, out=F, casting="unsafe")


class ALS(FrobeniusAlternating):
    """Alternating least squares with truncation of negatives (not monotone)."""

    def half_step(self, F, YG, Q, l1, l2, side, rows):
        YG, Q = fold_penalties(YG, Q, l1, l2)
        least_squares_clipped(F, YG, Q)


class GDCLS(FrobeniusAlternating):
    """Gradient descent with constrained least squares (Shahnaz et al. 2006)."""

    def half_step(self, F, YG, Q, l1, l2, side, rows):
        if side == "W":
            multiplicative_step(F, np.maximum(YG, 0), gram_times(F, Q), l1, l2, 1.0)
        else:
            YG, Q = fold_penalties(YG, Q, l1, l2)
            least_squares_clipped(F, YG, Q)
