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
from .base import Extrapolated, FrobeniusAlternating, fold_penalties
from .mu import multiplicative_step

_NNLS = {"bpp": kernels.bpp, "active_set": kernels.active_set}


class ANLS(Extrapolated):
    """Alternating non-negative least squares with an exact NNLS per half-step."""

    def __init__(self, data, W, Ht, penalties, method):
        super().__init__(data, W, Ht, penalties)
        self._solve = _NNLS[method]
        # Passive sets of the last solution of each factor: the next solve starts there.
        self._passive = {"W": W > 0, "H": Ht > 0}

    def half_step(self, F, YG, GtG, l1, l2, side):
        YG, GtG = fold_penalties(YG, GtG, l1, l2)
        self._solve(np.ascontiguousarray(GtG), np.ascontiguousarray(YG), F, self._passive[side])


def least_squares_clipped(F, YG, GtG):
    """``F ← max(0, YG (GᵀG)⁻¹)``, a least-norm solution when GᵀG is singular."""
    try:
        factor = scipy.linalg.cho_factor(GtG, check_finite=False)
        solution = scipy.linalg.cho_solve(factor, YG.T, check_finite=False).T
    except np.linalg.LinAlgError:
        solution = np.linalg.lstsq(GtG, YG.T, rcond=None)[0].T
    np.maximum(solution, 0, out=F, casting="unsafe")


class ALS(FrobeniusAlternating):
    """Alternating least squares with truncation of negatives (not monotone)."""

    def half_step(self, F, YG, GtG, l1, l2, side):
        YG, GtG = fold_penalties(YG, GtG, l1, l2)
        least_squares_clipped(F, YG, GtG)


class GDCLS(FrobeniusAlternating):
    """Gradient descent with constrained least squares (Shahnaz et al. 2006)."""

    def half_step(self, F, YG, GtG, l1, l2, side):
        if side == "W":
            multiplicative_step(F, np.maximum(YG, 0), F @ GtG, l1, l2, 1.0)
        else:
            YG, GtG = fold_penalties(YG, GtG, l1, l2)
            least_squares_clipped(F, YG, GtG)
