"""The outer loop: half-steps, objective, stopping rules, history, callback, progress, restarts."""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from ._data import SharedProducts
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


# With pruning, restarts advance together in rounds of this many iterations, and the
# worse half of the runs still going is dropped after each round.
PRUNE_ROUND = 10


class _Run:
    """One run from one init: its solver, and the loop of ``_iterate`` as a generator
    that can be advanced a few iterations at a time (for pruning) or to its end."""

    def __init__(self, index, solver, initial, bar, steps):
        self.index, self.solver, self.initial_factors = index, solver, initial
        self._bar, self._steps = bar, steps
        self.history = self.stop_reason = None
        self.objective = None

    @property
    def finished(self):
        return self.stop_reason is not None

    def advance(self, iterations=None):
        """Run ``iterations`` more iterations (None: to the stopping rule)."""
        done = 0
        try:
            while iterations is None or done < iterations:
                self.objective = next(self._steps)
                done += 1
        except StopIteration as stop:
            self.history, self.stop_reason = stop.value
            self.objective = float(self.history["objective"][-1])
            self.close()
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def fit(data, inits, make_solver, stopping, *, callback=None, progress=False, prune=False, meta):
    """Run the solver from each init and keep the run with the lowest objective.

    Parameters
    ----------
    data : data-layer object
    inits : iterable of (W, Ht)
        Initial factors, one pair per run; the driver owns them (they are updated in place).
    make_solver : callable (data, W, Ht) -> solver
    stopping : Stopping
    callback, progress : see ``fastnmf.nmf``
    prune : bool
        Advance all runs together in rounds of ``PRUNE_ROUND`` iterations and drop the
        worse half of the unfinished ones after each round (successive halving); the
        last one standing runs to its stopping rule. Without pruning, runs go one after
        the other, each to its stopping rule.
    meta : dict
        ``solver``, ``loss`` and ``rank`` to record in the result.
    """
    start = time.perf_counter()
    deadline = None if stopping.max_time is None else start + stopping.max_time

    def begin(index, W, Ht):
        solver = make_solver(data, W, Ht)
        bar = _progress_bar(progress, stopping.max_iter, index)
        steps = _iterate(solver, data.sqnorm, stopping, deadline, callback, bar)
        return _Run(index, solver, (W.copy(), Ht.copy()), bar, steps)

    finished = []
    if prune:
        active = [begin(index, W, Ht) for index, (W, Ht) in enumerate(inits)]
        n_runs = len(active)
        while len(active) > 1:
            for run in active:
                run.advance(PRUNE_ROUND)
            finished += [run for run in active if run.finished]
            going = sorted((run for run in active if not run.finished), key=lambda run: run.objective)
            for run in going[max(1, len(going) // 2):]:
                run.close()
            active = going[: max(1, len(going) // 2)]
        for run in active:
            run.advance()
            finished.append(run)
    else:
        n_runs = 0
        for index, (W, Ht) in enumerate(inits):
            n_runs += 1
            run = begin(index, W, Ht)
            run.advance()
            finished.append(run)
            # keep only the best so far: the others' factors are not needed
            finished = [min(finished, key=lambda r: r.objective)]
    best = min(finished, key=lambda run: run.objective)
    return _result(data, best, best.index, n_runs, time.perf_counter() - start, meta)


def fit_together(data, inits, make_solver, stopping, *, meta):
    """One result per init, in order, the runs advancing together.

    Each run is a thread of its own with one Numba thread, as many computing at once as
    the caller has Numba threads, and their products with X are gathered into one
    product per pass over X (``SharedProducts``), which is what costs at small rank.
    A run stops by its own rules (no ``max_time``: the runs share the clock), and its
    result is that of the run alone up to the rounding of the shared product. Only for
    solvers whose passes over X are ``matmul`` (the Frobenius solvers), and only with a
    thread-safe Numba threading layer.
    """
    inits = list(inits)
    shared = SharedProducts(data, len(inits), numba.get_num_threads())

    def run_alone(index):
        numba.set_num_threads(1)  # thread-local: the runs' kernels share the cores
        W, Ht = inits[index]
        start = time.perf_counter()
        shared.enter()
        try:
            solver = make_solver(shared.view(index), W, Ht)
            steps = _iterate(solver, data.sqnorm, stopping, None, None, None)
            run = _Run(index, solver, (W.copy(), Ht.copy()), None, steps)
            run.advance()
        finally:
            shared.leave(index)
        return _result(data, run, 0, 1, time.perf_counter() - start, meta)

    with ThreadPoolExecutor(len(inits), "fastnmf-run") as pool:
        return list(pool.map(run_alone, range(len(inits))))


def _iterate(solver, sqnorm, stopping, deadline, callback, bar):
    """One run to its stopping rule, as a generator: yields the objective after each
    iteration and returns ``(history, stop_reason)``."""
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
        yield objective
    history = np.array(records, dtype=HISTORY_DTYPE)
    return history, reason or "max_iter"


def _stop_reason(stopping, iteration, previous, objective, rel, deadline, callback, solver, records):
    if callback is not None:
        info = CallbackInfo(iteration, records[-1][1], objective, rel, _public(solver.W, True), _readonly(solver.Ht.T))
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


def _public(W, readonly=False):
    """W as users see it: the array itself (a read-only view when ``readonly``), or,
    for a factor whose row blocks live on Dask workers (``fastnmf.dask``), a dask array."""
    if not isinstance(W, np.ndarray):
        return W.to_dask()
    return _readonly(W) if readonly else W


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
        W=_public(solver.W),
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
