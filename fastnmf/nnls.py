"""Non-negative least squares for many right-hand sides at once (API.md §2).

Every public function reduces its problem to the normal equations — a Gram matrix
``GtG`` (k, k) and one row of ``YG`` (r, k) per right-hand side — with BLAS, then calls
one kernel of :mod:`fastnmf._kernels.nnls` that solves all rows in parallel.
"""

import numpy as np
import scipy.sparse as sp

from ._data import _CSR
from ._kernels import nnls as kernels
from ._threading import blas_limits, thread_limits
from ._validation import (
    as_dense_2d,
    check_choice,
    check_finite,
    check_int,
    check_nonnegative_float,
    compute_dtype,
    is_dask_array,
)

NNLS_METHODS = ("bpp", "active_set", "cd")

# Coordinate descent defaults: stop a column when a sweep changes no entry by more than
# CD_TOL times its largest entry, or after CD_MAX_ITER sweeps.
CD_TOL = 1e-6
CD_MAX_ITER = 5000

def nnls(A, b, *, method="bpp", tol=None, max_iter=None, n_threads=None):
    """Solve ``min ‖A x − b‖₂`` subject to ``x ≥ 0``, for one or many right-hand sides.

    Parameters
    ----------
    A : array_like of shape (m, k)
        The design matrix (any sign).
    b : array_like of shape (m,) or (m, r)
        One right-hand side, or ``r`` of them as columns; each column is an independent
        problem and they are solved in parallel.
    method : {"bpp", "active_set", "cd"}, default="bpp"
        ``"bpp"``: block principal pivoting with column grouping (Kim & Park 2011).
        ``"active_set"``: Lawson–Hanson active set, warm-started from the FAST
        approximation (the unconstrained solution with the negative variables removed
        until all are positive). Both return the exact optimum, also for rank-deficient
        ``A`` (then one of the optimal solutions).
        ``"cd"``: coordinate descent (as in RcppML) from the FAST approximation, then an
        exact active-set polish on the support it found; at the default tolerance the
        objective is within 1e-6 of the optimum for cond(A) up to 1e4.
    tol : float >= 0, optional
        ``"cd"`` only: a column stops when one sweep changes no entry by more than
        ``tol`` times its largest entry. Default ``CD_TOL`` (1e-6). The exact methods
        ignore it.
    max_iter : int >= 0, optional
        ``"cd"`` only: the maximum number of sweeps per column. Default ``CD_MAX_ITER``
        (5000). The exact methods ignore it.
    n_threads : int >= 1, optional
        Threads for the kernel and BLAS during this call; None uses all cores.

    Returns
    -------
    x : ndarray of shape (k,) or (k, r)
        The solution(s), float32 if the inputs are float32, else float64.

    Raises
    ------
    ValueError
        If the shapes do not match, an input holds NaN or inf, ``method`` is unknown or
        ``tol`` is negative.
    TypeError
        If ``max_iter`` or ``n_threads`` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnmf import nnls
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> nnls(A, np.array([1.0, -1.0, 0.0]))
    array([0.5, 0. ])
    """
    options = _check_options(method, tol, max_iter, n_threads)
    A = _dense(A, "A")
    B, vector = _right_hand_sides(b, "b", A.shape[0], f"A has shape {A.shape}")
    dtype = np.result_type(A.dtype, B.dtype)
    with thread_limits(n_threads):
        A = A.astype(dtype, copy=False)
        B = B.astype(dtype, copy=False)
        with _products_blas():
            GtG = np.ascontiguousarray(A.T @ A)
            YG = np.ascontiguousarray(B.T @ A)  # (r, k): one row per right-hand side
        F = _solve(GtG, YG, *options)
    return F[0] if vector else F.T


def nnls_gram(AtA, AtB, *, method="bpp", tol=None, max_iter=None, n_threads=None):
    """Solve the non-negative least squares problem given its normal equations.

    Minimises ``½ xᵀ (AᵀA) x − (Aᵀb)ᵀ x`` over ``x ≥ 0``, which has the same solutions
    as ``min ‖A x − b‖₂, x ≥ 0``. Use it when the products are at hand or cheaper to form
    than ``A`` itself (e.g. inside alternating NMF).

    Parameters
    ----------
    AtA : array_like of shape (k, k)
        The Gram matrix ``Aᵀ A``: symmetric positive semi-definite (not checked beyond
        symmetry). A variable whose diagonal entry is 0 (a zero column of ``A``) gets 0.
    AtB : array_like of shape (k,) or (k, r)
        ``Aᵀ b`` for one right-hand side, or ``Aᵀ B`` for ``r`` of them.
    method, tol, max_iter, n_threads
        As in :func:`nnls`.

    Returns
    -------
    x : ndarray of shape (k,) or (k, r)
        The solution(s), float32 if the inputs are float32, else float64.

    Raises
    ------
    ValueError
        If ``AtA`` is not square and symmetric, the shapes do not match, an input holds
        NaN or inf, ``method`` is unknown or ``tol`` is negative.
    TypeError
        If ``max_iter`` or ``n_threads`` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnmf import nnls_gram
    >>> nnls_gram(np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([1.0, -1.0]))
    array([0.5, 0. ])
    """
    options = _check_options(method, tol, max_iter, n_threads)
    AtA = _dense(AtA, "AtA")
    k = AtA.shape[0]
    if AtA.shape != (k, k):
        raise ValueError(
            f"AtA must be square (k, k), got shape {AtA.shape}; pass A.T @ A, not A."
        )
    scale = np.abs(AtA).max()
    if np.abs(AtA - AtA.T).max() > 1e-6 * scale:
        raise ValueError("AtA is not symmetric; pass the Gram matrix A.T @ A.")
    AtB, vector = _right_hand_sides(AtB, "AtB", k, f"AtA has shape {AtA.shape}")
    dtype = np.result_type(AtA.dtype, AtB.dtype)
    with thread_limits(n_threads):
        GtG = np.ascontiguousarray(AtA, dtype=dtype)
        YG = np.ascontiguousarray(AtB.T, dtype=dtype)
        F = _solve(GtG, YG, *options)
    return F[0] if vector else F.T


def project(X_new, H, *, method="bpp", n_threads=None):
    """Coefficients of new samples on fixed components: ``argmin_{W ≥ 0} ‖X_new − W H‖_F``.

    Each row of ``X_new`` is an independent non-negative least squares problem on the
    rows of ``H``; this is the ``transform`` step of NMF.

    Parameters
    ----------
    X_new : array_like, scipy.sparse matrix or dask array of shape (m, n)
        The samples to project (any sign; sparse in any format). A dask array (dense
        or sparse chunks) is projected lazily, one block of rows per task.
    H : array_like of shape (k, n)
        The components, one per row.
    method : {"bpp", "active_set", "cd"}, default="bpp"
        As in :func:`nnls` (``"cd"`` with its default tolerance).
    n_threads : int >= 1, optional
        Threads for the kernel and BLAS during this call; None uses all cores.

    Returns
    -------
    W : ndarray of shape (m, k)
        Float32 if the inputs are float32, else float64; a dask array chunked like
        ``X_new``'s rows when ``X_new`` is one.

    Raises
    ------
    ValueError
        If ``X_new`` and ``H`` have different numbers of columns, an input holds NaN or
        inf, or ``method`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnmf import project
    >>> H = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    >>> project(np.array([[3.0, 0.0, 1.0]]), H)
    array([[2., 0.]])
    """
    options = _check_options(method, None, None, n_threads)
    H = _dense(H, "H")
    if is_dask_array(X_new):
        return _project_dask(X_new, H, method, n_threads)
    if sp.issparse(X_new):
        X_new = sp.csr_array(X_new)
        X_new = X_new.astype(compute_dtype(X_new.dtype), copy=False)
        if not np.isfinite(X_new.data).all():
            count = int(np.size(X_new.data) - np.isfinite(X_new.data).sum())
            raise ValueError(
                f"X_new contains {count} NaN or infinite stored entries; remove or impute "
                "them before projecting."
            )
    else:
        X_new = _dense(X_new, "X_new")
    if X_new.shape[1] != H.shape[1]:
        raise ValueError(
            f"X_new has shape {X_new.shape} and H has shape {H.shape}: they need the same "
            "number of columns (features)."
        )
    dtype = np.result_type(X_new.dtype, H.dtype)
    with thread_limits(n_threads):
        H = H.astype(dtype, copy=False)
        with _products_blas():
            GtG = np.ascontiguousarray(H @ H.T)
            if sp.issparse(X_new):  # the data layer's parallel kernel (scipy's is serial)
                YG = _CSR(X_new.astype(dtype, copy=False)).matmul(H.T)
            else:
                YG = np.ascontiguousarray(X_new @ H.T, dtype=dtype)  # (m, k)
        return _solve(GtG, YG, *options)


# --------------------------------------------------------------------------- helpers


def _project_dask(X_new, H, method, n_threads):
    """``project`` on each block of rows of a dask array (columns gathered per block)."""
    if X_new.ndim != 2 or X_new.shape[1] != H.shape[1]:
        raise ValueError(
            f"X_new has shape {X_new.shape} and H has shape {H.shape}: they need the same "
            "number of columns (features)."
        )
    dtype = np.result_type(compute_dtype(X_new.dtype), H.dtype)
    rows = X_new.rechunk({1: -1})
    return rows.map_blocks(
        _project_block, H, method, n_threads, dtype=dtype, chunks=(rows.chunks[0], (H.shape[0],)),
        meta=np.empty((0, 0), dtype),
    )


def _project_block(block, H, method, n_threads):
    return project(block, H, method=method, n_threads=n_threads)


def _check_options(method, tol, max_iter, n_threads):
    """Validate the solver options; fill the defaults of coordinate descent."""
    method = check_choice("method", method, NNLS_METHODS)
    tol = check_nonnegative_float("tol", tol, allow_none=True)
    max_iter = check_int("max_iter", max_iter, 0, allow_none=True)
    check_int("n_threads", n_threads, 1, allow_none=True)
    return (
        method,
        CD_TOL if tol is None else tol,
        CD_MAX_ITER if max_iter is None else max_iter,
    )


def _products_blas():
    """BLAS threads for the products that precede a kernel: one.

    OpenBLAS worker threads keep spinning for a while after a multi-threaded call and
    take the cores from the Numba kernel that follows. Measured on 2 cores (A 500 × 50,
    5000 right-hand sides): ``nnls`` bpp 59 → 39 ms, active_set 51 → 34 ms with the
    products on one thread, which itself costs ~3 ms more (7 ms instead of 4).
    """
    return blas_limits(1)


def _dense(X, name):
    """A finite 2-D float array (C or Fortran order), as the public functions need."""
    X = as_dense_2d(X, name)
    check_finite(name, X)
    return X


def _right_hand_sides(b, name, n_rows, other):
    """``b`` as a finite 2-D array with ``n_rows`` rows, and whether it was 1-D."""
    if not hasattr(b, "ndim"):
        b = np.asarray(b)
    if b.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (one right-hand side) or 2-D (one per column), got "
            f"{b.ndim}-D with shape {b.shape}."
        )
    vector = b.ndim == 1
    shape = b.shape
    B = _dense(b.reshape(-1, 1) if vector else b, name)
    if B.shape[0] != n_rows:
        raise ValueError(
            f"{name} has shape {shape} but {other}: {name} needs {n_rows} rows."
        )
    return B, vector


def _solve(GtG, YG, method, tol, max_iter):
    """Run the kernel of ``method`` on C-contiguous products of one dtype; return F (r, k)."""
    F = np.zeros(YG.shape, dtype=YG.dtype)
    if method == "bpp":  # Kim & Park's cold start: every variable active
        kernels.bpp(GtG, YG, F, np.zeros(YG.shape, dtype=np.bool_))
        return F
    # The FAST approximation (exact on most columns) starts the other two methods:
    # coordinate descent refines it, Lawson–Hanson is warm-started from its support.
    kernels.fast(GtG, YG, F)
    if method == "cd":
        kernels.cd(GtG, YG, F, float(tol), int(max_iter))
    else:
        kernels.active_set(GtG, YG, F, F > 0)
    return F
