"""Multiplicative updates for the β-divergence family (Lee & Seung 2001; Févotte & Idier 2011).

``F ← F ∘ (numerator / denominator)^γ(β)``: for the Frobenius loss the ratio comes from
the same products as every alternating solver (``YG / (F GᵀG)``), so the update is
repeated on them (Gillis & Glineur 2012); for other β the data layer forms it block by
block (``_data.DenseData.beta_products``), and each update needs a pass over X.
"""

from functools import partial

import numpy as np

from .._config import eps
from .._kernels.blocks import multiplicative_update
from .._kernels.mu import mu_repeats
from .base import DELTA_SQUARED, FrobeniusAlternating, inner_repeats, projected_gradient_sqnorm


def exponent(beta):
    """Févotte & Idier (2011, Table 2): the exponent that makes MU monotone for any β."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def multiplicative_step(F, numerator, denominator, l1, l2, gamma):
    """``F ← max(F ∘ (num / (den + l1 + l2·F))^γ, floor)`` in place.

    ``denominator`` is shaped like F or, when every row shares it, (1, k). The floor,
    machine epsilon times the factor's largest entry, keeps an entry from being locked
    at exactly zero (a zero never grows under a multiplicative update) while staying
    negligible at the scale of the factor.
    """
    multiplicative_update(F, numerator, denominator, float(l1), float(l2), float(gamma), float(eps(F.dtype)))


class FrobeniusMU(FrobeniusAlternating):
    """Accelerated Lee–Seung multiplicative updates for ½‖X − WH‖²:
    ``F ← F ∘ YG / (F GᵀG)`` repeated on the same products (Gillis & Glineur 2012)."""

    @classmethod
    def row_steps(cls, data, k):
        """Multiplicative updates of each factor, as many as its products pay for."""
        budget = inner_repeats(data, k)
        return {side: partial(frobenius_mu_step, repeats=budget[side]) for side in ("W", "H")}


def frobenius_mu_step(F, YG, Q, l1, l2, repeats=1):
    """Up to ``repeats`` Lee–Seung updates of the rows F, in place (``mu_repeats``)."""
    mu_repeats(F, YG, Q, float(l1), float(l2), repeats, DELTA_SQUARED, float(eps(F.dtype)))


class BetaMU:
    """Multiplicative updates for D_β(X ‖ WH), β ≠ 2.

    The pass over X that forms the update of W also yields the divergence of the
    current factors, so ``evaluate`` computes that pass and ``advance`` uses it: one
    iteration costs two passes over X, plus one at the very end.
    """

    def __init__(self, data, W, Ht, penalties, beta):
        self.data, self.W, self.Ht, self.penalties = data, W, Ht, penalties
        self.beta = beta
        self._gamma = exponent(beta)
        self._pending = None  # products of the W half-step at the current factors

    def evaluate(self):
        if self._pending is None:
            self._pending = self.data.beta_products(self.W, self.Ht, self.beta)
        _, _, divergence, squared = self._pending
        return divergence + self.penalties.value(self.W, self.Ht), squared

    def advance(self):
        p = self.penalties
        if self._pending is None:
            self.evaluate()
        num, den, _, _ = self._pending
        multiplicative_step(self.W, num, den, p.l1_W, p.l2_W, self._gamma)
        num, den, _, _ = self.data.T.beta_products(self.Ht, self.W, self.beta, with_objective=False)
        multiplicative_step(self.Ht, num, den, p.l1_H, p.l2_H, self._gamma)
        self._pending = None

    def gradient_norm(self, W, Ht):
        """Norm of the projected gradient of the penalised objective at (W, Hᵀ)."""
        p = self.penalties
        self._pending = None  # free its products: one side's gradient at a time
        squared = 0.0
        for data, F, G, l1, l2 in ((self.data, W, Ht, p.l1_W, p.l2_W), (self.data.T, Ht, W, p.l1_H, p.l2_H)):
            num, den, _, _ = data.beta_products(F, G, self.beta, with_objective=False)
            np.subtract(den, num, out=num)
            num += l1 + l2 * F
            squared += projected_gradient_sqnorm(F, num)
        return np.sqrt(squared)
