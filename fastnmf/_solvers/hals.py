"""Accelerated HALS: Gillis–Glineur inner repetitions plus Ang–Gillis extrapolation."""

from functools import partial

from .._kernels.hals import hals_update
from .base import Extrapolated, fold_penalties

# Gillis & Glineur (2012, §3) repeat the cheap k×k sweeps on the same products up to
# 1 + α·ρ times, ρ being the time of the products relative to one sweep, and stop once
# the change falls below δ of the first sweep's (their δ = 0.1 on norms, 1e-2 on
# squares; a row-wise criterion here, so rows stay independent). ρ is estimated in
# seconds rather than flops: BLAS runs an order of magnitude more flops per second than
# a sweep, and on small problems the Python overhead of one product dominates, which
# makes many sweeps almost free there. α = 1 lets the sweeps take as long as the
# products. Measured (compare.py rows b and g): α = 1, δ = 0.1 reaches scikit-learn
# cd's objective 1.3-2.2× sooner than α = 0.2, δ = 0.001 on the three workloads, though
# each outer iteration costs more (row a); the number of outer iterations to an
# objective is erratic in α and δ (extrapolation), so the choice rests on the region
# where it was steady (α from 0.7 to 2 with δ = 0.1).
ALPHA = 1.0
DELTA_SQUARED = 1e-2
MAX_SWEEPS = 100
_PRODUCT_OVERHEAD_S = 200e-6  # Python cost of one half-step besides the sweeps
_SWEEP_FLOPS = 1.2e10  # measured: hals_update at 10000 x 30, float64
_PER_ROW_SWEEP_COST = 2.4  # measured: a sweep reading one Gram per row (masks) vs a shared one


class HALS(Extrapolated):
    """Accelerated hierarchical alternating least squares (Cichocki & Phan 2009)."""

    @classmethod
    def row_steps(cls, data, k):
        """HALS sweeps on each factor, as many as its products pay for."""
        m, n = data.shape
        cost = _PER_ROW_SWEEP_COST if data.per_row_grams else 1.0
        return {
            "W": partial(hals_step, sweeps=max_sweeps(m, data.product_seconds(k), k, cost)),
            "H": partial(hals_step, sweeps=max_sweeps(n, data.T.product_seconds(k), k, cost)),
        }


def hals_step(F, YG, Q, l1, l2, sweeps):
    """Up to ``sweeps`` HALS sweeps over the rows F, in place (see ``hals_update``)."""
    YG, Q = fold_penalties(YG, Q, l1, l2)
    hals_update(F, YG, Q, sweeps, DELTA_SQUARED)


def max_sweeps(rows, product_s, k, sweep_cost=1.0):
    """Inner sweeps allowed for a factor with ``rows`` rows whose products take
    ``product_s`` seconds (the data layer's estimate); ``sweep_cost`` scales the
    modelled time of one sweep."""
    product_s += _PRODUCT_OVERHEAD_S
    sweep_s = sweep_cost * 2.0 * rows * k * k / _SWEEP_FLOPS
    return int(min(MAX_SWEEPS, 1 + ALPHA * product_s / sweep_s))
