"""fastnmf: fast, trustworthy non-negative matrix factorization.

The public names: :func:`nmf`, :class:`NMFResult`, :data:`SOLVERS`, :data:`LOSSES`,
:func:`nnls`, :func:`nnls_gram`, :func:`project`, the scikit-learn estimators
:class:`NMF` and :class:`MiniBatchNMF`, rank selection :func:`consensus` and
:func:`select_rank`, and the modules :mod:`fastnmf.datasets` and :mod:`fastnmf.plotting`
(matplotlib, imported on first use).
"""

import os
import sys

# OpenBLAS's idle worker threads spin for ~2^28 cycles after each call, on the cores the
# Numba kernels that follow need (HALS at 10000×2000, k=30: 1.81 → 1.46× the two-GEMM
# floor per iteration with a short spin). The setting is read once, when NumPy loads
# OpenBLAS, so it only takes effect if fastnmf is imported first; a value the user set
# is kept. It changes nothing but how soon idle BLAS threads go to sleep.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import datasets  # noqa: E402  (after the environment is set)
from ._result import NMFResult  # noqa: E402
from ._solvers import SOLVERS  # noqa: E402
from .nmf import LOSSES, nmf  # noqa: E402
from .nnls import NNLS_METHODS, nnls, nnls_gram, project  # noqa: E402
from .selection import consensus, select_rank  # noqa: E402

__version__ = "0.1.0"

# The estimators import scikit-learn (about a second): loaded on first use only.
_LAZY = {"NMF": "estimators", "MiniBatchNMF": "estimators"}


# Submodules imported on first attribute access (plotting imports matplotlib lazily too).
_LAZY_MODULES = ("plotting",)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LOSSES",
    "MiniBatchNMF",
    "NMF",
    "NMFResult",
    "NNLS_METHODS",
    "SOLVERS",
    "consensus",
    "datasets",
    "nmf",
    "nnls",
    "nnls_gram",
    "plotting",
    "project",
    "select_rank",
    "__version__",
]
