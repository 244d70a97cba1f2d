"""One module per algorithm; this registry maps public names to solver factories.

A factory takes ``(data, W, Ht, penalties, beta)`` and returns an object with the
``evaluate`` / ``advance`` / ``gradient_norm`` methods described in ``base``.
"""

from .hals import HALS
from .mu import BetaMU, FrobeniusMU


def _hals(data, W, Ht, penalties, beta):
    return HALS(data, W, Ht, penalties)


def _mu(data, W, Ht, penalties, beta):
    if beta == 2.0:
        return FrobeniusMU(data, W, Ht, penalties)
    return BetaMU(data, W, Ht, penalties, beta)


# name -> (factory, supports any β-divergence rather than only Frobenius)
REGISTRY = {
    "hals": (_hals, False),
    "mu": (_mu, True),
}
SOLVERS = tuple(REGISTRY)
