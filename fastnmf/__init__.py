"""fastnmf: fast, trustworthy non-negative matrix factorization.

The public names: :func:`nmf`, :class:`NMFResult`, :data:`SOLVERS`, :data:`LOSSES`,
:func:`nnls`, :func:`nnls_gram`, :func:`project`, and the :mod:`fastnmf.datasets` module.
"""

from . import datasets
from ._result import NMFResult
from ._solvers import SOLVERS
from .nmf import LOSSES, nmf
from .nnls import NNLS_METHODS, nnls, nnls_gram, project

__version__ = "0.1.0"

__all__ = [
    "LOSSES",
    "NMFResult",
    "NNLS_METHODS",
    "SOLVERS",
    "datasets",
    "nmf",
    "nnls",
    "nnls_gram",
    "project",
    "__version__",
]
