"""One module per algorithm; this registry maps public names to solver factories.

A factory takes ``(data, W, Ht, penalties, beta)`` and returns an object with the
``evaluate`` / ``advance`` / ``gradient_norm`` methods described in ``base``.
"""

from .anls import ALS, ANLS, GDCLS
from .hals import HALS
from .mu import BetaMU, FrobeniusMU


def _hals(data, W, Ht, penalties, beta):
    return HALS(data, W, Ht, penalties)


def _mu(data, W, Ht, penalties, beta):
    if beta == 2.0:
        return FrobeniusMU(data, W, Ht, penalties)
    return BetaMU(data, W, Ht, penalties, beta)


def _anls_bpp(data, W, Ht, penalties, beta):
    return ANLS(data, W, Ht, penalties, "bpp")


def _anls_as(data, W, Ht, penalties, beta):
    return ANLS(data, W, Ht, penalties, "active_set")


def _als(data, W, Ht, penalties, beta):
    return ALS(data, W, Ht, penalties)


def _gdcls(data, W, Ht, penalties, beta):
    return GDCLS(data, W, Ht, penalties)


# name -> (factory, supports any β-divergence rather than only Frobenius), in the
# order of API.md §1
REGISTRY = {
    "hals": (_hals, False),
    "anls_bpp": (_anls_bpp, False),
    "anls_as": (_anls_as, False),
    "mu": (_mu, True),
    "als": (_als, False),
    "gdcls": (_gdcls, False),
}
SOLVERS = tuple(REGISTRY)

# Solvers that start on a sketch of a large dense X (``warm``): those whose half-steps
# solve or descend on the half-problem whatever the sign of the data, as the sketch's
# may be negative (a multiplicative update needs non-negative products).
SKETCH_WARM_START = ("hals", "anls_bpp", "anls_as")
