"""What every solver shares: penalties and the Frobenius alternating scheme.

A solver object holds the current factors ``W`` (m, k) and ``Ht`` = Hᵀ (n, k), both
C-contiguous so that each row of a factor is an independent sub-problem, and offers
the driver three methods:

- ``evaluate()`` → ``(objective, squared_residual)`` of the current factors;
- ``advance()``: one outer iteration (a half-step on W, then one on Hᵀ);
- ``gradient_norm(W, Ht)``: the norm of the projected gradient at given factors.

Frobenius solvers build their half-steps from ``row_steps(data, k)``: one plain,
picklable function ``step(F, YG, Q, l1, l2)`` per factor that updates the rows F in
place. The Dask path (``fastnmf.dask``) runs the same functions on row blocks.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .._config import CANCELLATION_FLOOR
from .._kernels.blocks import inner64


# Inner repetitions (Gillis & Glineur 2012, §3): a HALS sweep or a Frobenius
# multiplicative update of a factor costs O(k²) per row given the products, which cost
# O(nk) per row, so the half-steps repeat it on the same products up to 1 + α·ρ times,
# ρ being the time of the products relative to one repetition, and stop once the change
# falls below δ of the first repetition's (their δ = 0.1 on norms, 1e-2 on squares; a
# row-wise criterion here, so rows stay independent). ρ is estimated in seconds rather
# than flops: BLAS runs an order of magnitude more flops per second than a sweep, and on
# small problems the Python overhead of one product dominates, which makes many
# repetitions almost free there. α = 1 lets the repetitions take as long as the
# products. Measured for HALS (compare.py rows b and g): α = 1, δ = 0.1 reaches
# scikit-learn cd's objective 1.3-2.2× sooner than α = 0.2, δ = 0.001 on the three
# workloads, though each outer iteration costs more (row a); the number of outer
# iterations to an objective is erratic in α and δ (extrapolation), so the choice rests
# on the region where it was steady (α from 0.7 to 2 with δ = 0.1). Frobenius MU uses
# the same budget, not tuned apart (row i: 4 outer iterations instead of 45 to
# scikit-learn mu's objective).
ALPHA = 1.0
DELTA_SQUARED = 1e-2
MAX_REPEATS = 100
_PRODUCT_OVERHEAD_S = 200e-6  # Python cost of one half-step besides the repetitions
_REPEAT_FLOPS = 2e10  # measured: hals_update and mu_repeats at 10000 x 30, float64 (20-22 GF/s)
_PER_ROW_GRAM_COST = 2.4  # measured: a sweep reading one Gram per row (masks) vs a shared one


def inner_repeats(data, k):
    """``{"W": n, "H": n}``: the repetitions of a k×k row update each factor's
    half-step may make on its products (see the comment above)."""
    m, n = data.shape
    cost = _PER_ROW_GRAM_COST if data.per_row_grams else 1.0

    def budget(rows, product_s):
        repeat_s = cost * 2.0 * rows * k * k / _REPEAT_FLOPS
        return int(min(MAX_REPEATS, 1 + ALPHA * (product_s + _PRODUCT_OVERHEAD_S) / repeat_s))

    return {"W": budget(m, data.product_seconds(k)), "H": budget(n, data.T.product_seconds(k))}


@dataclass(frozen=True)
class Penalties:
    """``l1·‖F‖₁ + ½·l2·‖F‖²`` on each factor (API.md §9)."""

    l1_W: float = 0.0
    l1_H: float = 0.0
    l2_W: float = 0.0
    l2_H: float = 0.0

    def __bool__(self):
        return bool(self.l1_W or self.l1_H or self.l2_W or self.l2_H)

    def value(self, W, Ht, WtW=None, HtH=None):
        """The penalty of the factors (traces of the Grams reuse them when given)."""
        if not self:
            return 0.0
        sq_W = np.trace(WtW) if WtW is not None else _sqnorm(W)
        sq_H = np.trace(HtH) if HtH is not None else _sqnorm(Ht)
        return self.from_sums(W.sum(dtype=np.float64), Ht.sum(dtype=np.float64), sq_W, sq_H)

    def from_sums(self, sum_W, sum_H, sq_W, sq_H):
        """The penalty from the factors' sums and squared norms."""
        return self.l1_W * sum_W + self.l1_H * sum_H + 0.5 * (self.l2_W * sq_W + self.l2_H * sq_H)


def dot64(a, b):
    """⟨a, b⟩ accumulated in float64 (float32 products lose the digits we need)."""
    return float(inner64(a.ravel(), b.ravel()))


def _sqnorm(a):
    return dot64(a, a)


def projected_gradient_sqnorm(F, grad):
    """‖P(∇)‖² where P keeps the gradient where F > 0 and its negative part where F = 0."""
    projected = np.minimum(grad, 0)
    np.copyto(projected, grad, where=F > 0)
    return _sqnorm(projected)


@contextmanager
def keeping_dropped(F, Q):
    """Around a half-step on the rows F: the components the other factor has dropped
    (a zero column of G, so a zero diagonal entry of the Gram ``Q``) keep their values.

    Such a component does not enter the half-problem, so any value solves it, and the
    half-step kernels set it to 0. But zeros on both sides are a stationary point that
    no later half-step leaves: the component would be lost for the rest of the run,
    which happens when an init far off in scale zeroes a column in the first half-step.
    Keeping F's values lets the other factor's next half-step bring the component back
    (as scikit-learn's coordinate descent does, which skips such coordinates).
    """
    dropped = np.diagonal(Q, axis1=1, axis2=2) <= 0
    kept = F.copy() if dropped.any() else None
    yield
    if kept is not None:
        np.copyto(F, kept, where=dropped)


def fold_penalties(YG, Q, l1, l2):
    """Products of the penalised half-problem: L1 comes off ``YG``, L2 onto the diagonal.

    ``min_F ½‖Y − FGᵀ‖² + l1‖F‖₁ + ½l2‖F‖²`` has the gradient ``F(GᵀG + l2 I) − (YG − l1)``,
    so any Frobenius half-step solves the penalised problem on these products
    (as scikit-learn's coordinate descent does). ``Q`` is a stack of Gram matrices
    (see ``gram_times``).
    """
    if l1:
        YG = YG - l1
    if l2:
        Q = Q + l2 * np.eye(Q.shape[-1], dtype=Q.dtype)
    return YG, Q


def gram_times(F, Q):
    """Row ``i`` of F times its Gram matrix: ``Q`` is (1, k, k), shared by every row
    (``F @ Q[0]``), or (r, k, k), one per row (masked data, where each row of F sees
    only its observed entries)."""
    if Q.shape[0] == 1:
        return F @ Q[0]
    return np.einsum("ik,ikl->il", F, Q)


class FrobeniusAlternating:
    """Alternating minimisation of ``½‖X − WH‖² + penalties`` from products.

    Each half-step needs only ``Y G`` (one GEMM over X) and the Gram matrices ``Q`` of
    G — ``GᵀG`` shared by all rows, or per row for masked data, handed out by the data
    layer in row blocks (``data.gram_blocks``). Subclasses supply the classmethod
    ``row_steps(data, k)``: ``{"W": step, "H": step}``, where ``step(F, YG, Q, l1, l2)``
    updates the rows F in place (the settings may differ between the two factors).
    The objective after an iteration comes from the products of the Hᵀ half-step
    (DESIGN.md §3):
    ``‖X‖² − 2⟨Hᵀ, XᵀW⟩ + Σ_j h_jᵀ Q_j h_j`` (the last term is ``⟨WᵀW, HHᵀ⟩`` without a
    mask), accumulated in float64; near the cancellation floor it is replaced by the
    exact residual.
    """

    def __init__(self, data, W, Ht, penalties):
        self.data = data
        self.W = W
        self.Ht = Ht
        self.penalties = penalties
        self._floor = CANCELLATION_FLOOR[np.dtype(data.dtype)] * data.sqnorm
        self._last = None
        self._steps = self.row_steps(data, W.shape[1])
        # Products the run forms anyway that the KKT residual at the end needs: those of
        # the initial factors, ``(side, copy of G, Y G)``, and ``(W, XᵀW)`` of the last
        # Hᵀ half-step (W is unchanged until the next iteration).
        self._initial_products = []
        self._latest_XtW = None

    @classmethod
    def row_steps(cls, data, k):
        """``{"W": step, "H": step}``; none here (the base class only evaluates)."""
        return {}

    def half_step(self, F, YG, Q, l1, l2, side, rows):
        """Update the rows ``F`` (at ``rows`` of the factor ``side``) in place."""
        self._steps[side](F, YG, Q, l1, l2)

    def _solve(self, F, YG, G, GtG, l1, l2, side, update=True):
        """Half-step on every row block of F (or none, ``update=False``).

        Returns ``Σ_i f_iᵀ Q_i f_i`` for per-row Gram matrices, or None when all rows
        share ``GtG`` (the caller forms ``⟨FᵀF, GᵀG⟩`` from the Grams it needs anyway).
        """
        quad = None
        data = self.data if side == "W" else self.data.T
        for rows, Q in data.gram_blocks(G, GtG):
            F_rows, YG_rows = F[rows], YG[rows]
            if update:
                with keeping_dropped(F_rows, Q):
                    self.half_step(F_rows, YG_rows, Q, l1, l2, side, rows)
            if Q.shape[0] > 1:
                quad = (quad or 0.0) + dot64(gram_times(F_rows, Q), F_rows)
        return quad

    def iterate(self, W, Ht, bound=None):
        """One plain iteration on the given factors, in place.

        Returns ``(objective, squared_residual)`` of the result. With a ``bound``, the
        iteration is abandoned (None returned, Hᵀ untouched) when the objective after
        the W half-step already exceeds it: the Hᵀ half-step can only lower it further,
        so an iteration that passes this check ends below the bound.
        """
        p = self.penalties
        XHt, HtH = self.data.matmul(Ht), Ht.T @ Ht
        if Ht is self.Ht and not any(side == "W" for side, _, _ in self._initial_products):
            self._initial_products.append(("W", Ht.copy(), XHt))  # the first iteration
        quad = self._solve(W, XHt, Ht, HtH, p.l1_W, p.l2_W, "W")
        WtW = W.T @ W
        if bound is not None and self.objective(W, Ht, W, XHt, WtW, HtH, quad)[0] > bound:
            return None
        XtW = self.data.T.matmul(W)
        self._latest_XtW = W, XtW
        quad = self._solve(Ht, XtW, W, WtW, p.l1_H, p.l2_H, "H")
        return self.objective(W, Ht, Ht, XtW, WtW, Ht.T @ Ht, quad)

    def objective(self, W, Ht, F, YF, WtW, HtH, quad=None):
        """``(objective, ‖X − WH‖²)`` from the products of the last half-step.

        ``F`` is the factor just updated (W or Hᵀ) and ``YF`` the product it was updated
        from (``X Hᵀ`` or ``Xᵀ W``): ‖X − WH‖² = ‖X‖² − 2⟨F, YF⟩ + ``quad``, where
        ``quad`` = Σ_i f_iᵀ Q_i f_i, which is ⟨WᵀW, HᵀH⟩ when it is None (no mask).
        """
        if quad is None:
            quad = dot64(WtW, HtH)
        squared = self.data.sqnorm - 2 * dot64(F, YF) + quad
        if squared < self._floor:  # digits lost to cancellation: compute it exactly
            squared = self.data.residual_sqnorm(W, Ht)
        return 0.5 * squared + self.penalties.value(W, Ht, WtW, HtH), squared

    def evaluate(self):
        if self._last is None:
            W, Ht = self.W, self.Ht
            XtW, WtW = self.data.T.matmul(W), W.T @ W
            self._latest_XtW = W, XtW
            if not self._initial_products:  # the initial factors
                self._initial_products.append(("H", W.copy(), XtW))
            quad = self._solve(Ht, XtW, W, WtW, 0.0, 0.0, "H", update=False)
            self._last = self.objective(W, Ht, Ht, XtW, WtW, Ht.T @ Ht, quad)
        return self._last

    def advance(self):
        self._last = self.iterate(self.W, self.Ht)

    def gradient_norm(self, W, Ht):
        """Norm of the projected gradient of the penalised objective at (W, Hᵀ) (with
        the products of X the run formed with these factors, where it did)."""
        p = self.penalties
        grad_W = _gradient(self.data, W, Ht, p.l1_W, p.l2_W, self._known_product("W", Ht))
        grad_H = _gradient(self.data.T, Ht, W, p.l1_H, p.l2_H, self._known_product("H", W))
        return np.sqrt(projected_gradient_sqnorm(W, grad_W) + projected_gradient_sqnorm(Ht, grad_H))

    def _known_product(self, side, G):
        """``Y G`` for the half-problem of ``side`` if the run formed it with G, else None."""
        if side == "H" and self._latest_XtW is not None and self._latest_XtW[0] is G:
            return self._latest_XtW[1]
        for known_side, known_G, product in self._initial_products:
            if known_side == side and np.array_equal(known_G, G):
                return product
        return None

    def inherit_initial_products(self, other):
        """Take over ``other``'s products of the initial factors (a solver that took
        over its run: ``_solvers.warm``)."""
        self._initial_products = other._initial_products + self._initial_products


def _gradient(data, F, G, l1, l2, YG=None):
    """Gradient in F of ``½‖Y − FGᵀ‖²`` (observed entries) ``+ l1‖F‖₁ + ½l2‖F‖²``
    (``YG`` = Y G, formed here unless given)."""
    grad = np.empty_like(F)
    for rows, Q in data.gram_blocks(G, G.T @ G):
        if Q.shape[0] == 1:  # one Gram for all rows: no temporary
            np.matmul(F[rows], Q[0], out=grad[rows])
        else:
            grad[rows] = gram_times(F[rows], Q)
    grad -= data.matmul(G) if YG is None else YG
    if l1 or l2:
        grad += l1 + l2 * F
    return grad


class Extrapolated(FrobeniusAlternating):
    """The alternating scheme with extrapolation between outer iterations.

    Ang & Gillis (2019, "Accelerating nonnegative matrix factorization algorithms using
    extrapolation", Neural Computation 31(2), Algorithm 2): each iteration starts from
    ``P(F + β(F − F_prev))`` instead of F; β grows by γ after a success (capped by β̄,
    which grows by γ̄) and shrinks by η after a failure, when β̄ is set to the failed β.
    Unlike the paper, a failed extrapolation (objective above the last accepted one,
    detected after the W half-step so that a failure costs one product, not two) is
    discarded and the plain iteration is taken from the accepted factors instead, so
    the objective the driver records never increases.
    """

    def __init__(self, data, W, Ht, penalties):
        super().__init__(data, W, Ht, penalties)
        self._momentum = Momentum()
        self._W_prev = self._Ht_prev = None
        self._W_try, self._Ht_try = np.empty_like(W), np.empty_like(Ht)

    def advance(self):
        accepted = self.evaluate()
        if self._W_prev is None:  # no direction yet: a plain step
            self._W_prev, self._Ht_prev = self.W.copy(), self.Ht.copy()
            self._last = self.iterate(self.W, self.Ht)
            return
        W_try, Ht_try = self._W_try, self._Ht_try
        beta = self._momentum.beta
        extrapolate(self.W, self._W_prev, beta, W_try)
        extrapolate(self.Ht, self._Ht_prev, beta, Ht_try)
        trial = self.iterate(W_try, Ht_try, bound=accepted[0])
        if trial is not None:
            # The accepted factors become the previous ones; the trial ones current.
            self._W_prev, self.W, self._W_try = self.W, W_try, self._W_prev
            self._Ht_prev, self.Ht, self._Ht_try = self.Ht, Ht_try, self._Ht_prev
            self._last = trial
            self._momentum.succeeded()
        else:
            self._momentum.failed()
            np.copyto(self._W_prev, self.W)
            np.copyto(self._Ht_prev, self.Ht)
            self._last = self.iterate(self.W, self.Ht)


class Momentum:
    """The extrapolation weight β of Ang & Gillis (2019, Algorithm 2) and its bound β̄."""

    beta0, eta, gamma, gamma_bar = 0.25, 1.5, 1.2, 1.1

    def __init__(self):
        self.beta, self.beta_max = self.beta0, 1.0

    def succeeded(self):
        self.beta_max = min(1.0, self.gamma_bar * self.beta_max)
        self.beta = min(self.beta_max, self.gamma * self.beta)

    def failed(self):
        self.beta_max = self.beta
        self.beta /= self.eta


def extrapolate(F, F_prev, beta, out=None):
    """``out = max(0, F + β (F − F_prev))`` without temporaries (returns ``out``)."""
    if out is None:
        out = np.empty_like(F)
    np.subtract(F, F_prev, out=out)
    out *= beta
    out += F
    np.maximum(out, 0, out=out)
    return out
