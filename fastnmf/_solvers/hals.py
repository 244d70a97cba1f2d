"""Accelerated HALS: Gillis–Glineur inner repetitions plus Ang–Gillis extrapolation."""

from functools import partial

from .._kernels.hals import hals_update
from .base import DELTA_SQUARED, Extrapolated, fold_penalties, inner_repeats


class HALS(Extrapolated):
    """Accelerated hierarchical alternating least squares (Cichocki & Phan 2009)."""

    @classmethod
    def row_steps(cls, data, k):
        """HALS sweeps on each factor, as many as its products pay for."""
        budget = inner_repeats(data, k)
        return {side: partial(hals_step, sweeps=budget[side]) for side in ("W", "H")}


def hals_step(F, YG, Q, l1, l2, sweeps):
    """Up to ``sweeps`` HALS sweeps over the rows F, in place (see ``hals_update``)."""
    YG, Q = fold_penalties(YG, Q, l1, l2)
    hals_update(F, YG, Q, sweeps, DELTA_SQUARED)
