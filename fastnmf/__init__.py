"""fastnmf: fast, trustworthy non-negative matrix factorization.

The public names: :func:`nmf`, :class:`NMFResult`, :data:`SOLVERS`, :data:`LOSSES`,
:func:`nnls`, :func:`nnls_gram`, :func:`project`, the scikit-learn estimators
:class:`NMF` and :class:`MiniBatchNMF`, and the :mod:`fastnmf.datasets` module.
"""

from . import datasets
from ._result import NMFResult
from ._solvers import SOLVERS
from .nmf import LOSSES, nmf
from .nnls import NNLS_METHODS, nnls, nnls_gram, project

__version__ = "0.1.0"

# The estimators import scikit-learn (about a second): loaded on first use only.
_LAZY = {"NMF": "estimators", "MiniBatchNMF": "estimators"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LOSSES",
    "MiniBatchNMF",
    "NMF",
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
