"""The outer loop: half-steps, objective, stopping rules, history, callback, progress, restarts."""

import sys
import time
from dataclasses import dataclass

import numpy as np

from ._result import HISTORY_DTYPE, NMFResult


@dataclass(frozen=True)
class Stopping:
    """The stopping rules of API.md §9, checked in this order after each iteration:
    callback, ``target_error``, ``tol``, ``max_time``, ``max_iter``."""

    tol: float = 1e-4
    target_error: float = None
    max_iter: int = 200
    max_time: float = None


@dataclass(frozen=True)
class CallbackInfo:
    """What ``callback(info)`` receives after each completed iteration."""

    iteration: int
    seconds: float
    objective: float
    relative_error: float
    W: np.ndarray
    H: np.ndarray


@dataclass
class _Run:
    solver: object
    history: np.ndarray
    stop_reason: str
    initial_factors: tuple


def fit(data, inits, make_solver, stopping, *, callback=None, progress=False, meta):
    """Run the solver from each init in turn and keep the lowest objective.

    Parameters
    ----------
    data : data-layer object
    inits : iterable of (W, Ht)
        Initial factors, one pair per run; the driver owns them (they are updated in place).
    make_solver : callable (data, W, Ht) -> solver
    stopping : Stopping
    callback, progress : see ``fastnmf.nmf``
    meta : dict
        ``solver``, ``loss`` and ``rank`` to record in the result.
    """
    start = time.perf_counter()
    deadline = None if stopping.max_time is None else start + stopping.max_time
    best = None
    n_runs = 0
    for run_index, (W, Ht) in enumerate(inits):
        n_runs += 1
        initial = (W.copy(), Ht.copy())
        solver = make_solver(data, W, Ht)
        bar = _progress_bar(progress, stopping.max_iter, run_index)
        try:
            history, reason = _iterate(solver, data.sqnorm, stopping, deadline, callback, bar)
        finally:
            if bar is not None:
                bar.close()
        if best is None or history["objective"][-1] < best[1].history["objective"][-1]:
            best = (run_index, _Run(solver, history, reason, initial))
    run_index, run = best
    return _result(data, run, run_index, n_runs, time.perf_counter() - start, meta)


def _iterate(solver, sqnorm, stopping, deadline, callback, bar):
    """One run to its stopping rule; returns ``(history, stop_reason)``."""
    clock = time.perf_counter()
    records = []

    def record(iteration):
        objective, squared = solver.evaluate()
        rel = float(np.sqrt(max(squared, 0.0) / sqnorm)) if sqnorm > 0 else 0.0
        records.append((iteration, time.perf_counter() - clock, objective, rel))
        return objective, rel

    _, rel = record(0)
    reason = None
    if stopping.target_error is not None and rel <= stopping.target_error:
        reason = "target_error"
    iteration = 0
    while reason is None and iteration < stopping.max_iter:
        previous = records[-1][2]
        solver.advance()
        iteration += 1
        objective, rel = record(iteration)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(relative_error=f"{rel:.3e}", refresh=False)
        reason = _stop_reason(stopping, iteration, previous, objective, rel, deadline, callback, solver, records)
    history = np.array(records, dtype=HISTORY_DTYPE)
    return history, reason or "max_iter"


def _stop_reason(stopping, iteration, previous, objective, rel, deadline, callback, solver, records):
    if callback is not None:
        info = CallbackInfo(iteration, records[-1][1], objective, rel, _readonly(solver.W), _readonly(solver.Ht.T))
        if callback(info):
            return "callback"
    if stopping.target_error is not None and rel <= stopping.target_error:
        return "target_error"
    if stopping.tol > 0 or previous == 0:
        if previous == 0 or (previous - objective) / previous < stopping.tol:
            return "tol"
    if deadline is not None and time.perf_counter() >= deadline:
        return "max_time"
    if iteration >= stopping.max_iter:
        return "max_iter"
    return None


def _readonly(a):
    view = a.view()
    view.flags.writeable = False
    return view


def _progress_bar(progress, total, run_index):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"nmf run {run_index + 1}", file=sys.stderr, leave=False)


def _result(data, run, run_index, n_runs, seconds, meta):
    solver, history = run.solver, run.history
    final = solver.gradient_norm(solver.W, solver.Ht)
    start_norm = solver.gradient_norm(*run.initial_factors)
    kkt = final / start_norm if start_norm > 0 else 0.0
    reason = run.stop_reason
    return NMFResult(
        W=solver.W,
        H=np.ascontiguousarray(solver.Ht.T),
        objective=float(history["objective"][-1]),
        relative_error=float(history["relative_error"][-1]),
        n_iter=int(history["iteration"][-1]),
        converged=reason in ("tol", "target_error"),
        stop_reason=reason,
        kkt_residual=float(kkt),
        history=history,
        seconds=seconds,
        best_run=run_index,
        n_runs=n_runs,
        **meta,
    )
