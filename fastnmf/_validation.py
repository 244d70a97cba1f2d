"""Every check of arrays and parameters, with the exact error messages (API.md §8).

Checks run once, at the public door; kernels and solvers trust what they receive.
"""

import numbers
import sys

import numpy as np

from ._kernels.checks import scan_dense

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtype(dtype):
    """The dtype a computation on an input of ``dtype`` runs in.

    float32 stays float32, float64 stays float64, float16 widens to float32 and every
    other real type (integers, bool, long double) becomes float64.
    """
    dtype = np.dtype(dtype)
    if dtype in FLOAT_DTYPES:
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "biuf":
        return np.dtype(np.float64)
    raise TypeError(
        f"X has dtype {dtype}; expected a real numeric dtype (float, int or bool). "
        "Convert it with np.asarray(X, dtype=float)."
    )


def check_choice(name, value, choices):
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not supported; choose one of {listed}.")
    return value


def check_int(name, value, minimum, allow_none=False):
    """An integer >= ``minimum`` (numpy integers accepted, bool rejected)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_bool(name, value):
    """True or False (numpy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_nonnegative_float(name, value, allow_none=False, strictly_positive=False):
    """A finite real number >= 0 (> 0 when ``strictly_positive``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (strictly_positive and value == 0):
        bound = "> 0" if strictly_positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}.")
    return value


def check_rank(rank, shape, svd_init):
    """An integer rank >= 1, at most min(m, n) when the init is SVD-based."""
    rank = check_int("rank", rank, 1)
    if svd_init and rank > min(shape):
        raise ValueError(
            f"rank={rank} exceeds min(m, n)={min(shape)} of X with shape {shape}, which "
            "the SVD-based inits ('nndsvd', 'nndsvda', 'nndsvdar') cannot provide; lower "
            "the rank or use init='random'."
        )
    return rank


def as_dense_2d(X, name="X"):
    """``X`` as a 2-D ndarray in its compute dtype, copied only when it must be.

    C- and Fortran-ordered arrays and memory maps are used in place when the dtype is
    already float32/float64; other strided views are copied once to C order, and
    unaligned arrays (as deserialised into a byte buffer, e.g. by Dask) once in their
    order: BLAS cannot take them, so every product would copy them again.
    """
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        if not isinstance(X, (list, tuple)):
            raise TypeError(
                f"{name} must be a numpy array or array-like of numbers, got "
                f"{type(X).__name__}."
            )
    arr = np.asarray(X)
    if arr.dtype == object:
        raise TypeError(f"{name} must hold numbers, got an array of Python objects.")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (samples x features), got {arr.ndim}-D with shape "
            f"{arr.shape}; use X.reshape(1, -1) for one sample or X.reshape(-1, 1) for one "
            "feature."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one entry.")
    dtype = compute_dtype(arr.dtype)
    if arr.dtype != dtype or not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    elif not arr.flags.aligned:
        arr = arr.copy(order="K")
    return arr


def check_values(name, arr):
    """Scan a dense array once; raise on NaN/inf or negatives, else return its sums.

    Returns ``(total, sqnorm, n_zeros)``, the sums in float64.
    """
    sums, sqsums, negatives, nonfinite, zeros = _scan(name, arr, "remove or impute them")
    if negatives.any():
        count, position = int(negatives.sum()), _first_position(arr, lambda a: a < 0)
        raise ValueError(
            f"{name} contains {count} negative entries (first at {position}); NMF needs "
            "non-negative data: shift or clip it, e.g. np.clip(X, 0, None)."
        )
    return float(sums.sum()), float(sqsums.sum()), int(zeros.sum())


def _first_position(arr, predicate):
    """Row-major index of the first entry where ``predicate`` holds (error path only)."""
    for i in range(arr.shape[0]):
        hits = np.flatnonzero(predicate(arr[i]))
        if hits.size:
            return (i, int(hits[0]))
    return None


def check_factor(name, F, shape, dtype):
    """A user-supplied init factor: right shape, finite, non-negative; copied."""
    arr = as_dense_2d(F, name)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape} for this X and rank.")
    check_values(name, arr)
    return np.array(arr, dtype=dtype, order="C", copy=True)


def check_random_state(random_state):
    """A numpy Generator from None, an int, a SeedSequence or a Generator."""
    if isinstance(random_state, (bool, np.bool_)):
        raise TypeError("random_state must be None, an int or a numpy Generator, got a bool.")
    if isinstance(random_state, numbers.Integral) and random_state < 0:
        raise ValueError(f"random_state must be a non-negative integer, got {random_state}.")
    if random_state is None or isinstance(
        random_state, (numbers.Integral, np.random.Generator, np.random.SeedSequence)
    ):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    raise TypeError(
        f"random_state must be None, an int or a numpy Generator, got "
        f"{type(random_state).__name__}."
    )


def check_callback(callback):
    """None or a callable."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}.")
    return callback


def check_finite(name, arr):
    """Raise ValueError if a dense array holds NaN or inf (negative entries are allowed)."""
    _scan(name, arr, "remove or impute them before solving")


def _scan(name, arr, fix):
    """The per-row statistics of ``scan_dense``; raises on NaN/inf with ``fix`` as advice."""
    c_order = arr if arr.flags.c_contiguous else arr.T
    stats = scan_dense(c_order)
    nonfinite = stats[3]
    if nonfinite.any():
        count = int(nonfinite.sum())
        position = _first_position(arr, lambda a: ~np.isfinite(a))
        raise ValueError(f"{name} contains {count} NaN or infinite entries (first at {position}); {fix}.")
    return stats


def is_dask_array(X):
    """True for a ``dask.array.Array`` (without importing dask when it is not loaded)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def is_sparse(X):
    """True for any scipy.sparse matrix or array."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def as_csr(X, name="X"):
    """A canonical CSR form of a scipy.sparse ``X`` in its compute dtype.

    A canonical CSR X of the right dtype is shared, not copied (it is only read);
    otherwise a copy is converted, its duplicates summed and indices sorted. Explicit
    zeros are kept (they are observed entries for ``missing="zeros"``).
    """
    import scipy.sparse

    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got a sparse array with shape {X.shape}.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); it needs at least one entry.")
    dtype = compute_dtype(X.dtype)
    if X.format == "csr" and X.dtype == dtype and X.has_canonical_format:
        # already canonical: share its arrays (nothing here writes to them)
        return scipy.sparse.csr_array((X.data, X.indices, X.indptr), shape=X.shape, copy=False)
    csr = scipy.sparse.csr_array(X, dtype=dtype, copy=True)
    csr.sum_duplicates()
    return csr


def check_sparse_values(name, csr):
    """Scan the stored values of a CSR matrix: raise on NaN/inf or negatives.

    Returns ``(total, sqnorm, n_nonzero)``: ΣX and ‖X‖² in float64 and the number of
    stored entries that are not 0.
    """
    values = csr.data.reshape(1, -1)
    sums, sqsums, negatives, nonfinite, zeros = scan_dense(np.ascontiguousarray(values))
    for count, predicate, message in (
        (nonfinite, lambda a: ~np.isfinite(a), "NaN or infinite entries"),
        (negatives, lambda a: a < 0, "negative entries"),
    ):
        if count.any():
            p = int(np.flatnonzero(predicate(csr.data))[0])
            row = int(np.searchsorted(csr.indptr, p, side="right") - 1)
            fix = (
                "remove or impute them"
                if message.startswith("NaN")
                else "NMF needs non-negative data: shift or clip it"
            )
            raise ValueError(
                f"{name} contains {int(count.sum())} {message} (first at "
                f"{(row, int(csr.indices[p]))}); {fix}."
            )
    return float(sums.sum()), float(sqsums.sum()), int(csr.nnz - zeros.sum())


def check_missing(missing, X, mask):
    """``missing`` is None or "zeros", the latter only for a sparse X and without a mask."""
    if missing is None:
        return
    check_choice("missing", missing, ("zeros",))
    if not is_sparse(X):
        raise ValueError(
            "missing='zeros' treats the implicit zeros of a sparse X as unobserved, but X "
            "is dense; pass a scipy.sparse X, or mask=... for a dense X."
        )
    if mask is not None:
        raise ValueError("pass either mask=... or missing='zeros', not both.")


def check_mask(mask, shape):
    """A boolean mask of ``shape`` (True = observed): a bool ndarray or a CSR array.

    Returns None when every entry is observed (no mask needed).
    """
    if is_sparse(mask):
        import scipy.sparse

        if mask.shape != shape:
            raise ValueError(f"mask has shape {mask.shape}; expected {shape}, the shape of X.")
        mask = scipy.sparse.csr_array(mask, dtype=np.bool_)
        mask.eliminate_zeros()
        observed = mask.nnz
    else:
        arr = np.asarray(mask)
        if arr.shape != shape:
            raise ValueError(f"mask has shape {arr.shape}; expected {shape}, the shape of X.")
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
                raise TypeError(
                    f"mask must be a boolean array (True = observed), got dtype {arr.dtype}; "
                    "build it with e.g. mask=~np.isnan(X)."
                )
        mask = arr.astype(np.bool_, copy=False)
        observed = int(np.count_nonzero(mask))
    if observed == 0:
        raise ValueError("mask observes no entry of X; at least one entry must be True.")
    return None if observed == shape[0] * shape[1] else mask
