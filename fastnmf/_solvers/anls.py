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

from functools import partial

import numpy as np
import scipy.linalg

from .._kernels import nnls as kernels
from .base import Extrapolated, FrobeniusAlternating, fold_penalties, gram_times
from .mu import frobenius_mu_step

# method -> (kernel for a Gram shared by all rows, kernel for one Gram per row)
_NNLS = {"bpp": (kernels.bpp, kernels.bpp_rows), "active_set": (kernels.active_set, kernels.active_set_rows)}


class ANLS(Extrapolated):
    """Alternating non-negative least squares with an exact NNLS per half-step."""

    def __init__(self, data, W, Ht, penalties, method):
        self._method = method
        super().__init__(data, W, Ht, penalties)
        # Passive sets of the last solution of each factor: the next solve starts there.
        self._passive = {"W": W > 0, "H": Ht > 0}

    def row_steps(self, data, k):
        return nnls_steps(data, k, self._method)

    def half_step(self, F, YG, Q, l1, l2, side, rows):
        nnls_step(F, YG, Q, l1, l2, self._method, self._passive[side][rows])


def nnls_steps(data, k, method):
    """Exact NNLS half-steps by ``method`` for both factors (see ``base.row_steps``)."""
    step = partial(nnls_step, method=method)
    return {"W": step, "H": step}


def nnls_step(F, YG, Q, l1, l2, method, passive=None):
    """Exact NNLS for the rows F, in place, by ``method`` ("bpp" or "active_set"),
    starting from the ``passive`` sets (those of F's support when None)."""
    YG, Q = fold_penalties(YG, Q, l1, l2)
    shared, per_row = _NNLS[method]
    YG = np.ascontiguousarray(YG)
    if passive is None:
        passive = F > 0
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


def clipped_step(F, YG, Q, l1, l2):
    """Penalised least squares for the rows F, negatives set to 0, in place."""
    YG, Q = fold_penalties(YG, Q, l1, l2)
    least_squares_clipped(F, YG, Q)


class ALS(FrobeniusAlternating):
    """Alternating least squares with truncation of negatives (not monotone)."""

    @classmethod
    def row_steps(cls, data, k):
        return {"W": clipped_step, "H": clipped_step}


class GDCLS(FrobeniusAlternating):
    """Gradient descent with constrained least squares (Shahnaz et al. 2006)."""

    @classmethod
    def row_steps(cls, data, k):
        return {"W": frobenius_mu_step, "H": clipped_step}
