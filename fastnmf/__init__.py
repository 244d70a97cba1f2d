"""fastnmf: fast, trustworthy non-negative matrix factorization.

The public names: :func:`nmf`, :class:`NMFResult`, :data:`SOLVERS`, :data:`LOSSES`,
and the :mod:`fastnmf.datasets` module.
"""

from . import datasets
from ._result import NMFResult
from ._solvers import SOLVERS
from .nmf import LOSSES, nmf

__version__ = "0.1.0"

__all__ = ["LOSSES", "NMFResult", "SOLVERS", "datasets", "nmf", "__version__"]
