"""Numba options, the threading layer and per-dtype constants, in one place.

Every kernel takes its decorator options from here (DESIGN.md §2): ``cache=True`` so a
warm process never recompiles, ``nogil=True`` so kernels run concurrently with other
Python threads, and ``parallel=True`` only for kernels that ``prange``.
"""

import numba
import numpy as np

# Numba's default ``workqueue`` layer is not safe when several Python threads launch
# parallel kernels at once. Prefer a thread-safe layer (OpenMP or TBB); when neither
# can be loaded, ``_threading`` serialises kernel launches with a lock instead.


def _threadsafe_layer_available():
    for module in ("omppool", "tbbpool"):
        try:
            __import__(f"numba.np.ufunc.{module}")
            return True
        except ImportError:
            continue
    return False


THREADSAFE_LAYER = _threadsafe_layer_available()
if THREADSAFE_LAYER and numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"

# Fast-math flags without ``nnan``/``ninf`` so NaN and inf checks keep working; ``reassoc``
# lets reductions over the rank vectorise.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

JIT = dict(cache=True, nogil=True, fastmath=FASTMATH)
PARALLEL_JIT = dict(JIT, parallel=True)
# For element-wise loops that must vectorise: with Numba's default error model every
# float division carries a zero check that raises ZeroDivisionError, and that branch
# keeps LLVM from vectorising the loop. Under "numpy" x/0 gives inf or nan, as in NumPy.
VECTOR_JIT = dict(JIT, error_model="numpy")

# Squared relative error below which the objective computed from products,
# ||X||^2 - 2<W, XH^T> + <W^TW, HH^T>, has lost too many digits to cancellation
# (DESIGN.md §3); below it the driver evaluates the exact residual instead.
CANCELLATION_FLOOR = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-12}

# Number of elements of one row/column block of X for passes that need (WH) entries
# (beta-divergence updates, exact residual): small enough to stay in cache, large
# enough that the GEMM that forms it runs at full speed.
BLOCK_ELEMENTS = 1 << 17

# Passes that sum a product over blocks of rows of X (the update of H from a C-ordered
# X) keep this many running sums, one per fixed group of consecutive blocks, so that
# groups run in parallel and the result does not depend on the thread count.
ACCUMULATORS = 8


def eps(dtype):
    """Machine epsilon of ``dtype``."""
    return np.finfo(dtype).eps

# The performance model (measured on 2 cores, float64) behind time-based budgets such as
# HALS's inner sweeps: flop rates of a dense GEMM X @ G, of the sparse kernel spmm, and of
# the per-row Gram matrices of masked data (row_grams). spmm: 5.1 ms per product at
# 20000×10000, 0.5 % non-zeros, k=30 (it was modelled at a third of that speed, from an
# older kernel, which gave sparse HALS three times the sweeps its α allows).
DENSE_PRODUCT_FLOPS = 5e10
SPARSE_PRODUCT_FLOPS = 1.2e10
GRAM_FLOPS = 4e9
