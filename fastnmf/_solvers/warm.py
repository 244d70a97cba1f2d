"""Warm start on a sketch: the first iteration of a run on a large dense X iterates on
a low-rank sketch of X instead.

Far from a solution, each outer iteration mostly moves the factors towards X's dominant
subspace, and a sketch ``X̂ = QQᵀX`` of width w = rank + 10 (the randomized range finder
behind the NNDSVD inits, so it is already computed) shows that subspace at a cost of
O((m + n)·w·k) per product instead of O(m·n·k): 22× less at 2000×1000, k=20. The
solver runs on X̂ until its progress there is small next to the objective on X, then
continues on X from where it got (compressed NMF, Tepper & Sapiro 2016, "Compressed
nonnegative matrix factorization is fast and accurate", IEEE TSP 64(9); here only as a
start, so the result is a solution of the problem on X). On compare.py's dense
2000×1000, HALS on the sketch reaches scikit-learn cd's default objective in as many
iterations (13) as on X itself.

The whole warm start is one iteration of the run (``history`` records it as iteration
1, with the objective on X). If it ends above the objective of the initial factors,
it is discarded and the iteration is an ordinary one, so the objective never rises.
"""

import numpy as np

from .._data import DenseData, LowRankData
from .._init import range_sketch, sketch_width

# Stop iterating on the sketch when an iteration lowers its objective by less than this
# fraction of the objective on X (estimated as the sketch's plus ‖X − X̂‖²/2). Measured
# from the default init to the targets of compare.py rows b and i: 3e-3 and 1e-3 end the
# warm start closer to them, but the time to the tight targets of row b is the same (the
# iterations on X that follow do the rest anyway), and to row i's 13-27 % longer.
SKETCH_TOL = 1e-2
MAX_SKETCH_ITERATIONS = 100  # a bound only; the rule above ends it first in the benchmarks
# Only where the sketch's products cost at most this fraction of X's.
MAX_SKETCH_COST = 0.125
SKETCH_SEED = 0


def sketch_of(data, rank):
    """The ``LowRankData`` sketch of ``data`` to warm-start a rank-``rank`` run on, or
    None where it does not pay: a dense in-memory X only (sparse products already cost
    O(nnz·k), and a mask has no sketch), large next to the sketch's width. For runs
    that share their products (``_data.SharedProducts``), the sketch of their data."""
    data = getattr(data, "source", data)
    if not isinstance(data, DenseData):
        return None
    width = sketch_width(data, rank)
    if not _pays(data, width):
        return None
    # The SVD init's sketch when there was one; else one drawn with its own seed, so
    # that the caller's random draws (inits of later runs) do not depend on it.
    Q, XtQ = range_sketch(data, width, np.random.default_rng(SKETCH_SEED))
    if not _pays(data, Q.shape[1]):  # a wider sketch computed before (a rank survey)
        return None
    return LowRankData(Q, XtQ, data.sqnorm)


def share_warm_sketch(data, ranks):
    """Before runs at several ``ranks`` on one data object (a consensus survey): compute
    once the sketch of the widest rank whose sketch pays, which ``sketch_of`` then hands
    to every narrower rank, instead of one sketch per rank."""
    data = getattr(data, "source", data)
    if not isinstance(data, DenseData):
        return
    widths = [sketch_width(data, int(r)) for r in ranks if _pays(data, sketch_width(data, int(r)))]
    if widths:
        range_sketch(data, max(widths), np.random.default_rng(SKETCH_SEED))


def _pays(data, width):
    """Whether products with a sketch of this width cost at most MAX_SKETCH_COST of X's."""
    m, n = data.shape
    return (m + n) * width <= MAX_SKETCH_COST * m * n


class SketchWarmStart:
    """A solver whose first ``advance`` runs another instance of it on a sketch.

    ``make_solver(data, W, Ht)`` builds the solver (on X, then on the sketch, then on X
    again from the warm factors, so that its state — extrapolation, passive sets — is
    that of a fresh start there). The object offers the solver interface of
    ``base`` and forwards it to the solver on X.
    """

    def __init__(self, make_solver, data, sketch, W, Ht):
        self._make_solver = make_solver
        self._data = data
        self._sketch = sketch
        self._solver = make_solver(data, W, Ht)

    @property
    def W(self):
        return self._solver.W

    @property
    def Ht(self):
        return self._solver.Ht

    def evaluate(self):
        return self._solver.evaluate()

    def gradient_norm(self, W, Ht):
        return self._solver.gradient_norm(W, Ht)

    def advance(self):
        if self._sketch is None:
            self._solver.advance()
            return
        sketch, self._sketch = self._sketch, None
        start = self._solver
        warm = self._make_solver(sketch, start.W.copy(), start.Ht.copy())
        previous = warm.evaluate()[0]
        for _ in range(MAX_SKETCH_ITERATIONS):
            warm.advance()
            objective = warm.evaluate()[0]
            done = previous - objective <= SKETCH_TOL * (objective + 0.5 * sketch.gap_sqnorm)
            previous = objective
            if done:
                break
        self._solver = self._make_solver(self._data, warm.W, warm.Ht)
        self._solver.inherit_initial_products(start)
        reached = self._solver.evaluate()[0]
        if not np.isfinite(reached) or reached > start.evaluate()[0]:
            self._solver = start  # the sketch led astray: an ordinary iteration instead
            start.advance()
