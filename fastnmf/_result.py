"""NMFResult: what a run of ``nmf`` returns."""

from dataclasses import dataclass

import numpy as np

HISTORY_DTYPE = np.dtype(
    [("iteration", np.int64), ("seconds", np.float64), ("objective", np.float64), ("relative_error", np.float64)]
)


@dataclass(frozen=True)
class NMFResult:
    """The factors of ``X ≈ W @ H`` and how they were found.

    Attributes
    ----------
    W : ndarray (m, k)
    H : ndarray (k, n)
        The factors, in the dtype of the computation.
    objective : float
        Final value of the penalised loss being minimised (API.md §9).
    relative_error : float
        ``‖X − WH‖_F / ‖X‖_F`` (0 when ``‖X‖_F = 0``).
    n_iter : int
        Outer iterations done by the returned run.
    converged : bool
        True when the run stopped on ``tol`` or ``target_error``.
    stop_reason : str
        ``"target_error"``, ``"tol"``, ``"max_time"``, ``"max_iter"`` or ``"callback"``.
    kkt_residual : float
        Norm of the projected gradient at the returned factors relative to its value at
        the initial factors (0 at a stationary point).
    history : ndarray
        Structured array with fields ``iteration``, ``seconds``, ``objective`` and
        ``relative_error``: iteration 0 (the initial factors), then one record per
        completed iteration; the last describes the returned factors.
    solver : str
    loss : str or float
    rank : int
    seconds : float
        Wall time of the whole call, all restarts included.
    best_run : int
        Index of the restart that was kept (0 is the run from the requested init).
    n_runs : int
        Number of runs made (``n_init``).
    """

    W: np.ndarray
    H: np.ndarray
    objective: float
    relative_error: float
    n_iter: int
    converged: bool
    stop_reason: str
    kkt_residual: float
    history: np.ndarray
    solver: str
    loss: object
    rank: int
    seconds: float
    best_run: int = 0
    n_runs: int = 1

    def normalized(self, norm="l1"):
        """Factors with unit-norm components and the scales between them.

        Parameters
        ----------
        norm : {"l1", "l2"}
            Norm of each column of W and each row of H after scaling.

        Returns
        -------
        W : ndarray (m, k)
        d : ndarray (k,)
        H : ndarray (k, n)
            ``W @ np.diag(d) @ H`` equals ``self.W @ self.H``; components are sorted by
            decreasing ``d``. A component that is entirely zero gets ``d = 0``.
        """
        if norm not in ("l1", "l2"):
            raise ValueError(f"norm={norm!r} is not supported; choose 'l1' or 'l2'.")
        order = 1 if norm == "l1" else 2
        w_norm = np.linalg.norm(self.W, ord=order, axis=0)
        h_norm = np.linalg.norm(self.H, ord=order, axis=1)
        d = w_norm * h_norm
        w_scale = np.where(w_norm > 0, w_norm, 1)
        h_scale = np.where(h_norm > 0, h_norm, 1)
        idx = np.argsort(-d, kind="stable")
        W = (self.W / w_scale)[:, idx]
        H = (self.H / h_scale[:, None])[idx]
        return W, d[idx].astype(self.W.dtype), H

    def top_features(self, n=10, names=None):
        """For each component, the ``n`` largest entries of its row of H.

        Parameters
        ----------
        n : int
            Entries per component.
        names : sequence of str, optional
            Names of the n_features columns of X; indices are returned when omitted.

        Returns
        -------
        list of lists of (name_or_index, weight) pairs, one list per component, by
        decreasing weight.
        """
        return _top(self.H, n, names, "names")

    def top_samples(self, n=10, names=None):
        """For each component, the ``n`` largest entries of its column of W.

        Same parameters and return shape as :meth:`top_features`, with ``names`` naming
        the samples (rows of X).
        """
        return _top(self.W.T, n, names, "names")


def _top(rows, n, names, argname):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if names is not None and len(names) != rows.shape[1]:
        raise ValueError(
            f"{argname} has {len(names)} entries; expected {rows.shape[1]} (one per column of this factor)."
        )
    out = []
    for row in rows:
        idx = np.argsort(-row, kind="stable")[:n]
        out.append([(names[i] if names is not None else int(i), float(row[i])) for i in idx])
    return out
