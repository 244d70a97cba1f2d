"""Slow, obviously correct NNLS references: scipy, one column at a time."""

import numpy as np
from scipy.optimize import nnls as scipy_nnls


def nnls_reference(A, B):
    """``scipy.optimize.nnls`` on every column of ``B`` (or on a 1-D ``b``), in float64."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if B.ndim == 1:
        return nnls_reference(A, B[:, None])[:, 0]
    maxiter = 50 * A.shape[1] + 50
    return np.stack([scipy_nnls(A, B[:, j], maxiter=maxiter)[0] for j in range(B.shape[1])], axis=1)


def objective(A, X, B):
    """``½‖A x − b‖²`` of every column, in float64."""
    R = np.asarray(A, np.float64) @ np.asarray(X, np.float64) - np.asarray(B, np.float64)
    return 0.5 * np.sum(R * R, axis=0)


def kkt_violation(A, X, B):
    """Largest violation of the KKT conditions of each column, relative to ``‖Aᵀb‖∞``.

    At the optimum ``x ≥ 0``, ``g = Aᵀ(Ax − b) ≥ 0`` and ``x · g = 0`` (checked as
    ``|x_j g_j| / ‖A_j‖·‖b‖``, scale-free).
    """
    A = np.asarray(A, np.float64)
    X = np.asarray(X, np.float64)
    B = np.asarray(B, np.float64)
    G = A.T @ (A @ X - B)
    scale = np.maximum(np.abs(A.T @ B).max(axis=0), np.finfo(float).tiny)
    col_norms = np.linalg.norm(A, axis=0)[:, None]
    b_norms = np.maximum(np.linalg.norm(B, axis=0), np.finfo(float).tiny)
    negative_x = np.maximum(-X, 0).max(axis=0) * col_norms.max() / b_norms
    negative_g = np.maximum(-G, 0).max(axis=0) / scale
    complementarity = (np.abs(X * G) * col_norms).max(axis=0) / (scale * b_norms)
    return np.maximum(np.maximum(negative_x, negative_g), complementarity)
