"""fastnmf side by side with scikit-learn and the two-GEMM floor, in one run.

    python benchmarks/compare.py            # the full table (a few minutes)
    python benchmarks/compare.py --quick    # smaller shapes, under a minute

Prints ONE table (the one the README's performance section quotes). Every timing is the
best of 3 repeats; fastnmf is compiled (or loaded from Numba's cache) before anything is
timed, except in row (e) which measures exactly that in fresh processes. fastnmf and
scikit-learn start from the same factors: fastnmf's nndsvda ``(W0, H0)``
(``fastnmf.nmf(X, k, max_iter=0)``), passed to scikit-learn as ``init="custom"``.

Rows:
  (a) HALS seconds per outer iteration and its ratio to the two-GEMM floor
      (``X @ Hᵀ`` + ``Xᵀ @ W``), float64 and float32; scikit-learn ``cd`` beside it.
  (b) time to reach the objective ½‖X − WH‖² that scikit-learn ``cd`` reaches after 200
      iterations: fastnmf HALS (stopped by a callback) vs scikit-learn ``cd``.
  (c) the 50×100 exactly rank-5 integer example: time to relative error < 1e-6.
  (d) multiplicative updates for the generalised KL divergence, seconds per iteration.
  (e) fresh-process ``import fastnmf`` + first small ``nmf()``: warm and cold Numba cache.
  (f) sparse word counts (20000×10000, 0.5 % non-zeros, 30 topics), generalised KL: time
      to the divergence scikit-learn ``mu`` reaches after 100 iterations, and the peak
      memory each allocates (tracemalloc) beyond X.
  (g) the same matrix, Frobenius: fastnmf HALS vs scikit-learn ``cd`` to the objective
      ``cd`` reaches after 100 iterations.
  (h) 5 % of the entries missing (``mask``): masked seconds per iteration over unmasked,
      hals and anls_bpp at 2000×1000, k=20.
  (i) the estimators at scikit-learn's defaults: scikit-learn ``NMF(k, solver)`` fits
      (``cd``, ``mu``) with seeds 0-2; fastnmf ``hals``/``mu`` with the same seed, stopped
      by a callback at scikit-learn's objective for that seed. Each from its own default
      init (whole calls, init included), and both from scikit-learn's init for the seed
      (solvers only): from different inits the two may settle in different minima.
  (j) ``transform`` of 10 000 new rows on components fitted to 2000 rows (``cd``).
  (k) a stream of low-rank rows in batches of 1024: scikit-learn ``MiniBatchNMF.fit`` at its
      defaults (nndsvda init on the whole X, ``random_state=0``) sets the target, the
      objective of its final components; fastnmf ``MiniBatchNMF.partial_fit`` is fed the
      same batches in order (its default nndsvda init on the first one) and timed until
      its components first reach the target. Objective of components H for both:
      ½‖X − WH‖² at the exact ``W = fastnmf.project(X, H)`` (the minimum over W ≥ 0).
      Only the ``partial_fit`` calls are timed: the clock stops while a check evaluates it.
  (l) ``anls_bpp``, ``anls_as`` and ``gdcls`` seconds per outer iteration against the
      two-GEMM floor, on the workload of row (a).

This file lives in the asv benchmark directory, so asv imports it: it defines no
``time_``/``track_``/``mem_`` names and does nothing on import.
"""

import os

# What ``import fastnmf`` sets when it comes before NumPy (see fastnmf/__init__.py):
# idle OpenBLAS threads stop spinning soon after each call. It must be set before NumPy
# loads OpenBLAS, hence here; it applies to scikit-learn's BLAS calls alike.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

if __package__:
    from .common import (dense_data, first_call_seconds, frobenius_objective, initial_factors, rank5_example,
                         topic_counts, warm_jit)
else:  # run as a script: python benchmarks/compare.py
    from common import (dense_data, first_call_seconds, frobenius_objective, initial_factors, rank5_example,
                        topic_counts, warm_jit)

REPEATS = 3

FULL = dict(
    a_shape=(10000, 2000, 30), a_iters=20,
    b_shapes=[(2000, 1000, 20), (10000, 2000, 30)], b_sklearn_iters=200, b_max_iter=20000,
    c_target=1e-6, c_cap_iters=50_000, c_cap_seconds=60.0,
    d_shape=(2000, 1000, 20), d_iters=100,
    e_cold_repeats=REPEATS,
    f_shape="20000x10000_d0.005_k30", f_sklearn_iters=100, g_sklearn_iters=100, sparse_repeats=2,
    h_shape=(2000, 1000, 20), h_iters=20,
    i_dense=(2000, 1000, 20), i_cap_seconds=10.0, i_seeds=3, j_rows=10_000, k_stream=(200_000, 1000, 20),
    k_repeats=REPEATS,
)
QUICK = dict(
    a_shape=(2000, 1000, 20), a_iters=10,
    b_shapes=[(1000, 500, 10), (1500, 800, 15)], b_sklearn_iters=200, b_max_iter=20000,
    c_target=1e-6, c_cap_iters=50_000, c_cap_seconds=5.0,
    d_shape=(1000, 500, 10), d_iters=20,
    e_cold_repeats=1,
    f_shape="2000x1000_d0.02_k10", f_sklearn_iters=100, g_sklearn_iters=100, sparse_repeats=1,
    h_shape=(1000, 500, 10), h_iters=10,
    i_dense=(1000, 500, 10), i_cap_seconds=5.0, i_seeds=1, j_rows=2_000, k_stream=(20_000, 500, 10),
    k_repeats=1,
)


# --- helpers -------------------------------------------------------------------------------


def best_of(fn, repeats=REPEATS):
    """``(best wall seconds, result of the best run)`` of ``fn()`` over ``repeats`` calls."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, out = elapsed, result
    return best, out


def best_of_interleaved(fns, repeats=REPEATS):
    """Best wall seconds and result of each callable, the callables taking turns.

    Round r runs every callable once, so a burst of load from elsewhere hits all the
    contenders alike and the best-of-``repeats`` picks the quiet rounds for all of them.
    """
    best = [float("inf")] * len(fns)
    out = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            if elapsed < best[i]:
                best[i], out[i] = elapsed, result
    return best, out


def sklearn_nmf(X, k, W0, H0, max_iter, **kwargs):
    """scikit-learn NMF from ``(W0, H0)`` (copied: its ``cd`` updates W in place), tol=0."""
    from sklearn.decomposition import NMF

    model = NMF(n_components=k, init="custom", tol=0, max_iter=max_iter, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: stopping at max_iter is intended
        W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
    return W, model.components_, model


def two_gemm(X, W, Ht, inner=5):
    """A callable running the pair ``X @ Ht``, ``X.T @ W`` ``inner`` times (divide by inner)."""

    def pair():
        for _ in range(inner):
            X @ Ht
            X.T @ W

    pair()  # first-touch / thread-pool start-up
    return pair


def loop_seconds_per_iteration(res):
    """Mean seconds of one outer iteration from a result's history (init and result excluded)."""
    s = res.history["seconds"]
    return float(s[-1] - s[0]) / max(res.n_iter, 1)


def kl_divergence(X, W, H):
    """Generalised KL ``Σ X log(X / WH) − X + WH`` in float64 (0 log 0 = 0); X dense or
    sparse (then WH is formed at the non-zeros only)."""
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    if hasattr(X, "tocoo"):
        coo = X.tocoo()
        x = coo.data.astype(np.float64)
        wh = np.einsum("ij,ji->i", W[coo.row], H[:, coo.col])
        return float(np.sum(x * np.log(x / wh)) - x.sum() + W.sum(axis=0) @ H.sum(axis=1))
    X = np.asarray(X, np.float64)
    WH = W @ H
    nz = X > 0
    return float(np.sum(X[nz] * np.log(X[nz] / WH[nz])) - X.sum() + WH.sum())


def sparse_frobenius_objective(X, W, H):
    """``0.5 ‖X − WH‖²`` for a sparse X from products (fine at these error levels)."""
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    cross = float(np.sum((X @ H.T) * W))
    return 0.5 * (float(np.sum(X.data.astype(np.float64) ** 2)) - 2 * cross + float(np.vdot(W.T @ W, H @ H.T)))


def peak_bytes(fn):
    """``(result, peak bytes allocated by fn beyond what existed before)`` via tracemalloc
    (NumPy and SciPy report their allocations to it; BLAS's small buffers are missed)."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class Bound(float):
    """A lower bound (the run was capped before it got there): printed as ``>value``."""


def fmt_s(seconds):
    if isinstance(seconds, Bound):
        return ">" + fmt_s(float(seconds))
    if seconds is None or not np.isfinite(seconds):
        return "—"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_ratio(r):
    if isinstance(r, Bound):
        return ">" + fmt_ratio(float(r))
    return "—" if r is None or not np.isfinite(r) else f"{r:.2f}×"


def shape_name(shape, dtype=None):
    m, n, k = shape
    return f"{m}×{n} k={k}" + (f" {np.dtype(dtype).name}" if dtype is not None else "")


def environment_lines():
    import numba
    import sklearn
    from threadpoolctl import threadpool_info

    import fastnmf

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return [
        f"uptime: {uptime}",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs | Python {platform.python_version()} | "
        f"numpy {np.__version__} | BLAS {', '.join(blas) or '?'}",
        f"fastnmf {fastnmf.__version__} (numba {numba.__version__}, {numba.get_num_threads()} threads, "
        f"layer {numba.config.THREADING_LAYER}) | scikit-learn {sklearn.__version__} | "
        f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}",
    ]


# --- the rows ------------------------------------------------------------------------------


def row_a(cfg, dtype):
    """HALS seconds per outer iteration vs the two-GEMM floor (and sklearn cd)."""
    import fastnmf

    X, k = dense_data(cfg["a_shape"], dtype)
    W0, H0 = initial_factors(X, k)
    warm_jit(dtype, solver="hals")
    n = cfg["a_iters"]
    per_it = []

    def hals():
        res = fastnmf.nmf(X, k, solver="hals", init=(W0, H0), tol=0, max_iter=n)
        per_it.append(loop_seconds_per_iteration(res))
        return res

    inner = 5
    floor_pair = two_gemm(X, np.ascontiguousarray(W0), np.ascontiguousarray(H0.T), inner)
    (wall, floor, sk_wall), _ = best_of_interleaved(
        [hals, floor_pair, lambda: sklearn_nmf(X, k, W0, H0, n, solver="cd")])
    fast, floor, sk = min(per_it), floor / inner, sk_wall / n
    return dict(
        row="(a)", workload=shape_name(cfg["a_shape"], dtype), measure="s / outer iteration",
        fast=fast, sk=sk, floor=floor, sk_ratio=sk / fast, floor_ratio=fast / floor,
        detail=f"hals vs cd, {n} it; fastnmf whole call {fmt_s(wall / n)}/it",
    )


def row_l(cfg, solver):
    """An alternating solver's seconds per outer iteration vs the two-GEMM floor."""
    import fastnmf

    X, k = dense_data(cfg["a_shape"], np.float64)
    W0, H0 = initial_factors(X, k)
    warm_jit(np.float64, solver=solver)
    n = cfg["a_iters"]
    per_it = []

    def run():
        res = fastnmf.nmf(X, k, solver=solver, init=(W0, H0), tol=0, max_iter=n)
        per_it.append(loop_seconds_per_iteration(res))
        return res

    inner = 5
    floor_pair = two_gemm(X, np.ascontiguousarray(W0), np.ascontiguousarray(H0.T), inner)
    (wall, floor), _ = best_of_interleaved([run, floor_pair])
    fast, floor = min(per_it), floor / inner
    return dict(
        row="(l)", workload=shape_name(cfg["a_shape"], np.float64), measure=f"s / outer iteration, {solver}",
        fast=fast, sk=None, floor=floor, sk_ratio=None, floor_ratio=fast / floor,
        detail=f"{n} it; whole call {fmt_s(wall / n)}/it",
    )


def row_b(cfg, shape):
    """Time to the objective scikit-learn cd reaches after 200 iterations."""
    import fastnmf

    X, k = dense_data(shape, np.float64)
    W0, H0 = initial_factors(X, k)
    warm_jit(np.float64, solver="hals")
    n_sk = cfg["b_sklearn_iters"]
    W, H, _ = sklearn_nmf(X, k, W0, H0, n_sk, solver="cd")  # deterministic: sets the target
    target = frobenius_objective(X, W, H)
    rel_sk = np.sqrt(2 * target) / np.linalg.norm(X)

    def hals():
        return fastnmf.nmf(X, k, solver="hals", init=(W0, H0), tol=0, max_iter=cfg["b_max_iter"],
                           callback=lambda info: bool(info.objective <= target))

    (fast_time, sk_time), (res, _) = best_of_interleaved(
        [hals, lambda: sklearn_nmf(X, k, W0, H0, n_sk, solver="cd")])
    reached = res.stop_reason == "callback"
    detail = (f"target ½‖X−WH‖²={target:.6g} (rel.err {rel_sk:.4g}) = cd after {n_sk} it; "
              f"hals {'reached it in' if reached else 'did NOT reach it in'} {res.n_iter} it")
    return dict(
        row="(b)", workload=shape_name(shape, np.float64), measure="s to cd@200 objective",
        fast=fast_time if reached else None, sk=sk_time, floor=None,
        sk_ratio=sk_time / fast_time if reached else None, floor_ratio=None, detail=detail,
    )


def row_c(cfg):
    """The 50×100 rank-5 example to relative error < target."""
    import fastnmf

    X = rank5_example()
    target = cfg["c_target"]
    W0, H0 = initial_factors(X, 5)
    norm = np.linalg.norm(X)
    warm_jit(np.float64, solver="hals")
    fast_time, res = best_of(lambda: fastnmf.nmf(X, 5, solver="hals", init=(W0, H0), target_error=target,
                                                 tol=0, max_iter=1_000_000))
    # scikit-learn has no callback: run cd in chunks from the previous factors (with tol=0
    # and no shuffling, chained chunks are exactly one long run), then find the exact
    # iteration inside the chunk that crosses the target and time one clean run to it.
    W, H, done, chunk, rel = W0.copy(), H0.copy(), 0, 100, np.inf
    start = time.perf_counter()
    while done < cfg["c_cap_iters"] and time.perf_counter() - start < cfg["c_cap_seconds"]:
        W_next, H_next, _ = sklearn_nmf(X, 5, W, H, chunk, solver="cd")
        rel = np.linalg.norm(X - W_next @ H_next) / norm
        if rel < target:
            break
        W, H, done = W_next, H_next, done + chunk
    search_seconds = time.perf_counter() - start
    if rel < target:
        for extra in range(1, chunk + 1):  # W, H are the factors after `done` iterations
            W, H, _ = sklearn_nmf(X, 5, W, H, 1, solver="cd")
            if np.linalg.norm(X - W @ H) / norm < target:
                break
        n_sk = done + extra
        sk_time, _ = best_of(lambda: sklearn_nmf(X, 5, W0, H0, n_sk, solver="cd"))
        detail = f"hals {res.n_iter} it, rel.err {res.relative_error:.3g}; cd {n_sk} it"
        sk_ratio = sk_time / fast_time
    else:  # not reached within the cap: the time spent is a lower bound
        sk_time, sk_ratio = Bound(search_seconds), Bound(search_seconds / fast_time)
        detail = (f"hals {res.n_iter} it, rel.err {res.relative_error:.3g}; cd did NOT reach it: "
                  f"rel.err {rel:.3g} after {done} it / {search_seconds:.1f} s (cap)")
    return dict(
        row="(c)", workload="50×100 rank-5 integer", measure=f"s to rel.err < {target:g}",
        fast=fast_time if res.relative_error < target else None, sk=sk_time, floor=None,
        sk_ratio=sk_ratio, floor_ratio=None, detail=detail,
    )


def row_d(cfg):
    """Multiplicative updates for the generalised KL divergence, seconds per iteration."""
    import fastnmf

    X, k = dense_data(cfg["d_shape"], np.float64)
    W0, H0 = initial_factors(X, k)
    warm_jit(np.float64, solver="mu", loss="kl")
    n = cfg["d_iters"]
    per_it = []

    def mu():
        res = fastnmf.nmf(X, k, solver="mu", loss="kl", init=(W0, H0), tol=0, max_iter=n)
        per_it.append(loop_seconds_per_iteration(res))
        return res

    inner = 5
    floor_pair = two_gemm(X, np.ascontiguousarray(W0), np.ascontiguousarray(H0.T), inner)
    (fast_wall, sk_wall, floor), (res, (W, H, _), _) = best_of_interleaved(
        [mu, lambda: sklearn_nmf(X, k, W0, H0, n, solver="mu", beta_loss="kullback-leibler"), floor_pair])
    fast, sk, floor = fast_wall / n, sk_wall / n, floor / inner
    detail = (f"{n} it, whole calls; KL reached fastnmf {res.objective:.6g} vs sklearn "
              f"{kl_divergence(X, W, H):.6g}; fastnmf loop only {fmt_s(min(per_it))}/it")
    return dict(
        row="(d)", workload=shape_name(cfg["d_shape"], np.float64), measure="s / iteration, MU KL",
        fast=fast, sk=sk, floor=floor, sk_ratio=sk / fast, floor_ratio=fast / floor, detail=detail,
    )


def _time_to_sklearn_objective(cfg, X, k, W0, H0, loss, solver, sk_kwargs, n_sk, evaluate):
    """Seconds for fastnmf and for scikit-learn to reach the objective scikit-learn
    reaches after ``n_sk`` iterations; fastnmf stops by a callback as soon as it is there."""
    import fastnmf

    W, H, _ = sklearn_nmf(X, k, W0, H0, n_sk, **sk_kwargs)  # deterministic: sets the target
    target = evaluate(X, W, H)

    def fast():
        return fastnmf.nmf(X, k, solver=solver, loss=loss, init=(W0, H0), tol=0, max_iter=100 * n_sk,
                           callback=lambda info: bool(info.objective <= target))

    (fast_time, sk_time), (res, _) = best_of_interleaved(
        [fast, lambda: sklearn_nmf(X, k, W0, H0, n_sk, **sk_kwargs)], repeats=cfg["sparse_repeats"])
    return fast_time, sk_time, res, target


def row_f(cfg):
    """Sparse counts, KL: time to scikit-learn mu's divergence after 100 iterations."""
    import fastnmf

    X, k = topic_counts(cfg["f_shape"])
    W0, H0 = initial_factors(X, k)
    warm_jit(np.float64, solver="mu", loss="kl")
    fastnmf.nmf(X[:50], 3, solver="mu", loss="kl", max_iter=1)  # the sparse kernels
    n_sk = cfg["f_sklearn_iters"]
    sk_kwargs = dict(solver="mu", beta_loss="kullback-leibler")
    fast, sk, res, target = _time_to_sklearn_objective(cfg, X, k, W0, H0, "kl", "mu", sk_kwargs, n_sk, kl_divergence)
    reached = res.stop_reason == "callback"
    _, fast_peak = peak_bytes(lambda: fastnmf.nmf(X, k, solver="mu", loss="kl", init=(W0, H0), tol=0, max_iter=3))
    _, sk_peak = peak_bytes(lambda: sklearn_nmf(X, k, W0, H0, 3, **sk_kwargs))
    x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    detail = (f"target KL={target:.6g} = sklearn mu after {n_sk} it; fastnmf mu "
              f"{'reached it in' if reached else 'did NOT reach it in'} {res.n_iter} it; peak extra memory "
              f"fastnmf {fast_peak / 2**20:.0f} MiB vs sklearn {sk_peak / 2**20:.0f} MiB (X: {x_bytes / 2**20:.0f} MiB)")
    return dict(
        row="(f)", workload=f"sparse {X.shape[0]}×{X.shape[1]} nnz {X.nnz / np.prod(X.shape):.2%} k{k}",
        measure=f"s to mu-KL@{n_sk} objective", fast=fast if reached else None, sk=sk, floor=None,
        sk_ratio=sk / fast if reached else None, floor_ratio=None, detail=detail,
    )


def row_g(cfg):
    """Sparse counts, Frobenius: HALS vs scikit-learn cd to cd's objective after 100 iterations."""
    import fastnmf

    X, k = topic_counts(cfg["f_shape"])
    W0, H0 = initial_factors(X, k)
    warm_jit(np.float64, solver="hals")
    fastnmf.nmf(X[:50], 3, solver="hals", max_iter=1)
    n_sk = cfg["g_sklearn_iters"]
    fast, sk, res, target = _time_to_sklearn_objective(
        cfg, X, k, W0, H0, "frobenius", "hals", dict(solver="cd"), n_sk, sparse_frobenius_objective)
    reached = res.stop_reason == "callback"
    detail = (f"target ½‖X−WH‖²={target:.6g} = cd after {n_sk} it; hals "
              f"{'reached it in' if reached else 'did NOT reach it in'} {res.n_iter} it")
    return dict(
        row="(g)", workload=f"sparse {X.shape[0]}×{X.shape[1]} k{k}", measure=f"s to cd@{n_sk} objective",
        fast=fast if reached else None, sk=sk, floor=None, sk_ratio=sk / fast if reached else None,
        floor_ratio=None, detail=detail,
    )


def row_h(cfg, solver):
    """Masked (5 % missing) vs unmasked seconds per iteration."""
    import fastnmf

    X, k = dense_data(cfg["h_shape"], np.float64)
    mask = np.random.default_rng(0).random(X.shape) > 0.05
    W0, H0 = initial_factors(X, k)
    warm_jit(np.float64, solver=solver, mask=np.eye(60, 40) == 0)
    warm_jit(np.float64, solver=solver)
    n = cfg["h_iters"]
    per_it = {}

    def run(masked):
        def go():
            res = fastnmf.nmf(X, k, solver=solver, init=(W0, H0), tol=0, max_iter=n, mask=mask if masked else None)
            per_it.setdefault(masked, []).append(loop_seconds_per_iteration(res))
            return res
        return go

    best_of_interleaved([run(True), run(False)])
    masked, plain = min(per_it[True]), min(per_it[False])
    return dict(
        row="(h)", workload=shape_name(cfg["h_shape"], np.float64) + " 5% missing", measure=f"s / iteration, {solver}",
        fast=masked, sk=None, floor=plain, sk_ratio=None, floor_ratio=masked / plain,
        detail=f"floor column = the same solver unmasked; {n} it, loop only",
    )



def row_i(cfg, kind, solver, start):
    """scikit-learn NMF at its defaults vs fastnmf to the same objective, over seeds.

    ``start="own"``: each library from its own default init (the whole call, init
    included). ``start="same"``: both from scikit-learn's NNDSVDa init for the seed
    (computed once, not timed). fastnmf runs until its objective is at most
    scikit-learn's final one for the same seed; the figure is the ratio of the times
    summed over the seeds, when every seed reached it.
    """
    import fastnmf
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf

    if kind == "dense":
        X, k = dense_data(cfg["i_dense"], np.float64)
        objective = frobenius_objective
        name = shape_name(cfg["i_dense"], np.float64)
    else:
        X, k = topic_counts(cfg["f_shape"])
        objective = sparse_frobenius_objective
        name = f"sparse {X.shape[0]}×{X.shape[1]} k{k}"
    fast_solver = {"cd": "hals", "mu": "mu"}[solver]
    warm_jit(np.float64, solver=fast_solver)
    fastnmf.nmf(X[:60], 3, solver=fast_solver, max_iter=1)
    totals, reached, iters = [0.0, 0.0], [], []
    for seed in range(cfg["i_seeds"]):
        same = _initialize_nmf(X, k, init="nndsvda", random_state=seed) if start == "same" else None

        def sklearn():
            model = NMF(k, solver=solver, random_state=seed, init="custom" if same else None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                W = model.fit_transform(X, **(dict(W=same[0].copy(), H=same[1].copy()) if same else {}))
            return W, model

        W, model = sklearn()
        target = objective(X, W, model.components_)

        def fast():  # capped: from another init, fastnmf may settle in another minimum
            return fastnmf.nmf(X, k, solver=fast_solver, init=same or "nndsvda", random_state=seed, tol=0,
                               max_iter=100_000, max_time=cfg["i_cap_seconds"],
                               callback=lambda info: bool(info.objective <= target))

        times, (res, _) = best_of_interleaved([fast, sklearn], repeats=cfg["sparse_repeats"])
        totals = [t + u for t, u in zip(totals, times)]
        reached.append(res.stop_reason == "callback")
        iters.append(f"{res.n_iter if reached[-1] else 'never'}/{model.n_iter_}")
    fast_time = totals[0] if all(reached) else None
    start_name = "own inits" if start == "own" else "sklearn's init for both"
    detail = (f"{start_name}; seeds 0-{len(reached) - 1}; target = sklearn NMF(solver={solver!r}) defaults' objective "
              f"per seed; fastnmf {fast_solver} iterations to it / sklearn's: {', '.join(iters)}")
    return dict(
        row="(i)", workload=name, measure=f"s to NMF({solver}) default obj., {start_name}", fast=fast_time,
        sk=totals[1], floor=None, sk_ratio=totals[1] / fast_time if fast_time else None, floor_ratio=None,
        detail=detail,
    )


def row_j(cfg):
    """transform of new rows: exact NNLS vs scikit-learn's iterative transform."""
    from sklearn.decomposition import NMF as SkNMF

    from fastnmf import NMF

    m, n, k = cfg["i_dense"]
    X, _ = dense_data((m + cfg["j_rows"], n, k), np.float64)
    X_fit, X_new = X[:m], X[m:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = NMF(k, random_state=0).fit(X_fit), SkNMF(k, random_state=0).fit(X_fit)
        ours.transform(X_fit[:10])
        (fast, sk), (W, W_sk) = best_of_interleaved([lambda: ours.transform(X_new), lambda: theirs.transform(X_new)])
    err = np.linalg.norm(X_new - W @ ours.components_)
    err_sk = np.linalg.norm(X_new - W_sk @ theirs.components_)
    return dict(
        row="(j)", workload=f"{cfg['j_rows']} new rows × {n}, k={k}", measure="s / transform", fast=fast, sk=sk,
        floor=None, sk_ratio=sk / fast, floor_ratio=None,
        detail=f"‖X_new − WH‖: fastnmf {err:.6g} (exact NNLS) vs sklearn {err_sk:.6g} (on its own components)",
    )


def stream_objective(X, H, rows=8192):
    """``0.5 ‖X − WH‖²`` at the exact ``W = argmin_{W ≥ 0} ‖X − WH‖`` (fastnmf.project), in
    float64, the residual formed ``rows`` rows at a time (X may be too large to copy)."""
    import fastnmf

    H = np.asarray(H, dtype=np.float64)
    W = fastnmf.project(X, H)
    total = 0.0
    for start in range(0, X.shape[0], rows):
        R = np.asarray(X[start:start + rows], dtype=np.float64) - W[start:start + rows] @ H
        total += float(np.einsum("ij,ij->", R, R))
    return 0.5 * total


def stream_to_objective(X, k, batch_size, target, objective, cap_seconds, n_batches):
    """Feed ``fastnmf.MiniBatchNMF.partial_fit`` the batches of X in order (cycling) until
    its components first reach ``objective <= target``.

    Only the ``partial_fit`` calls are timed. The components are checked after batches
    1, 2, 4, 8, … (the clock stopped; a check costs a projection of all of X); once a
    check reaches the target, the batches since the previous check are bisected on
    their stored components. Stops at the target or after ``cap_seconds`` of training,
    then goes on (timed apart) to ``n_batches`` batches for the objective at the end
    of the stream. Returns a dict: ``seconds`` (training time to the target, None if
    not reached), ``batches``, ``objective`` (at the target), ``final`` (after
    ``n_batches``, or at the cap), ``final_batches``, ``final_seconds``.
    """
    from sklearn.utils import gen_batches

    from fastnmf import MiniBatchNMF

    slices = list(gen_batches(X.shape[0], batch_size))
    model = MiniBatchNMF(k, batch_size=batch_size, random_state=0)
    trained, times, snapshots = 0.0, [], {}
    reached = previous_check = None
    step, next_check = 0, 1
    while reached is None and trained < cap_seconds:
        batch = slices[step % len(slices)]
        start = time.perf_counter()
        model.partial_fit(X[batch])
        trained += time.perf_counter() - start
        step += 1
        times.append(trained)
        snapshots[step] = model.components_.copy()
        if step != next_check:
            continue
        value = objective(snapshots[step])
        if value <= target:  # bisect (previous_check, step] down to a batch that reaches it
            # after one that does not (the first such batch when the objective decreases)
            lo, hi, best = previous_check or 0, step, value
            while hi - lo > 1:
                mid = (lo + hi) // 2
                mid_value = objective(snapshots[mid])
                if mid_value <= target:
                    hi, best = mid, mid_value
                else:
                    lo = mid
            reached = dict(seconds=times[hi - 1], batches=hi, objective=best)
        previous_check, next_check = step, 2 * step
        snapshots = {step: snapshots[step]}
    while step < n_batches and trained < cap_seconds:  # the rest of the stream, for its final objective
        batch = slices[step % len(slices)]
        start = time.perf_counter()
        model.partial_fit(X[batch])
        trained += time.perf_counter() - start
        step += 1
    out = dict(seconds=None, batches=None, objective=None) if reached is None else reached
    return dict(out, final=objective(model.components_), final_batches=step, final_seconds=trained)


def row_k(cfg):
    """MiniBatchNMF on a stream: fastnmf partial_fit's time to scikit-learn's final objective."""
    from sklearn.decomposition import MiniBatchNMF as SkMiniBatchNMF

    from fastnmf import MiniBatchNMF

    m, n, k = cfg["k_stream"]
    batch_size = 1024
    X, _ = dense_data(cfg["k_stream"], np.float64)
    with warnings.catch_warnings():  # compile fit, partial_fit (first and later calls) and project
        warnings.simplefilter("ignore")
        for _ in range(2):
            MiniBatchNMF(3, batch_size=64, max_iter=2).fit(X[:300, :40])
            MiniBatchNMF(3).partial_fit(X[:300, :40]).partial_fit(X[300:600, :40]).transform(X[:10, :40])

    def sklearn():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SkMiniBatchNMF(k, batch_size=batch_size, random_state=0).fit(X)

    sk, theirs, fast, run, target = float("inf"), None, None, None, None
    for _ in range(cfg["k_repeats"]):  # the two take turns; best of each
        start = time.perf_counter()
        model = sklearn()
        elapsed = time.perf_counter() - start
        if elapsed < sk:
            sk, theirs = elapsed, model
        if target is None:  # scikit-learn's runs are deterministic: one target
            target = stream_objective(X, model.components_)
        out = stream_to_objective(X, k, batch_size, target, lambda H: stream_objective(X, H), cap_seconds=sk,
                                  n_batches=theirs.n_steps_)
        if run is None or (out["seconds"] is not None and (fast is None or out["seconds"] < fast)):
            fast, run = out["seconds"], out
    reached = run["seconds"] is not None
    detail = (f"target ½‖X−WH‖²={target:.6g} = sklearn fit's final ({theirs.n_steps_} batches, "
              f"{theirs.n_iter_} pass{'es' if theirs.n_iter_ > 1 else ''}); fastnmf partial_fit "
              + (f"reached it at batch {run['batches']} ({run['objective']:.6g}), "
                 if reached else "did NOT reach it within sklearn's time, ")
              + f"after {run['final_batches']} batches {run['final']:.6g} in {fmt_s(run['final_seconds'])}; "
              f"W = exact NNLS for both")
    return dict(
        row="(k)", workload=f"stream {m}×{n}, k={k}", measure="s to sklearn's final obj.",
        fast=fast if reached else Bound(run["final_seconds"]), sk=sk, floor=None,
        sk_ratio=sk / fast if reached else None, floor_ratio=None, detail=detail,
    )


def row_e(cfg, cold):
    """Fresh process: import fastnmf + first nmf() on 100×100."""
    repeats = cfg["e_cold_repeats"] if cold else REPEATS
    seconds = first_call_seconds(cold=cold, repeats=repeats)
    return dict(
        row="(e)", workload="fresh process, 100×100 k=5",
        measure=f"s import+first call, {'cold' if cold else 'warm'}",
        fast=seconds, sk=None, floor=None, sk_ratio=None, floor_ratio=None,
        detail=f"whole `python -c` wall time, best of {repeats}" + ("; empty NUMBA_CACHE_DIR" if cold else ""),
    )


def startup_breakdown():
    """Where the warm first-call time goes (one fresh process, cache already warm)."""
    code = (
        "import sys, time; t0 = time.perf_counter(); import numpy as np; t1 = time.perf_counter();"
        "import fastnmf; t2 = time.perf_counter(); sk = 'sklearn' in sys.modules;"
        "fastnmf.nmf(np.random.rand(100, 100), 5); t3 = time.perf_counter();"
        "print(f'import numpy {t1-t0:.2f} s, import fastnmf {t2-t1:.2f} s '"
        "f'(numba{\" + scikit-learn\" if sk else \"\"}), first nmf() {t3-t2:.2f} s')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


# --- the table -----------------------------------------------------------------------------

COLUMNS = [
    ("row", "", 3, "<"),
    ("workload", "workload", 26, "<"),
    ("measure", "measure", 26, "<"),
    ("fast", "fastnmf", 9, ">"),
    ("sk", "sklearn", 9, ">"),
    ("floor", "2-GEMM floor", 12, ">"),
    ("sk_ratio", "sklearn/fastnmf", 15, ">"),
    ("floor_ratio", "fastnmf/floor", 13, ">"),
    ("detail", "notes", 0, "<"),
]


def format_row(row):
    cells = []
    for key, _, width, align in COLUMNS:
        value = row.get(key)
        if key in ("fast", "sk", "floor"):
            value = fmt_s(value)
        elif key in ("sk_ratio", "floor_ratio"):
            value = fmt_ratio(value)
        cells.append(f"{value:{align}{width}}" if width else str(value))
    return "  ".join(cells)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes; finishes in under a minute")
    parser.add_argument("--rows", default="abcdefghijkl", help="letters of the rows to run (default: all)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    header = environment_lines()  # `uptime` first, before any load of our own
    started = time.perf_counter()

    steps = [(row_a, (cfg, dtype)) for dtype in (np.float64, np.float32)]
    steps += [(row_b, (cfg, shape)) for shape in cfg["b_shapes"]]
    steps += [(row_c, (cfg,)), (row_d, (cfg,)), (row_e, (cfg, False)), (row_e, (cfg, True))]
    steps += [(row_f, (cfg,)), (row_g, (cfg,)), (row_h, (cfg, "hals")), (row_h, (cfg, "anls_bpp"))]
    steps += [(row_i, (cfg, kind, solver, start)) for start in ("own", "same") for kind in ("dense", "sparse")
              for solver in ("cd", "mu")]
    steps += [(row_j, (cfg,)), (row_k, (cfg,))]
    steps += [(row_l, (cfg, solver)) for solver in ("anls_bpp", "anls_as", "gdcls")]
    steps = [(fn, fn_args) for fn, fn_args in steps if fn.__name__[-1] in args.rows]
    rows = []
    for fn, fn_args in steps:
        rows.append(fn(*fn_args))
        row = rows[-1]
        print(f"[{time.perf_counter() - started:6.1f} s] {format_row(row)}", file=sys.stderr, flush=True)
    breakdown = startup_breakdown()
    end_load = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    title = (f"fastnmf vs scikit-learn vs the two-GEMM floor ({'--quick' if args.quick else 'full'} run; "
             f"every timing best of {REPEATS}; same nndsvda init for both libraries)")
    head = "  ".join(f"{label:{align}{width}}" if width else label for _, label, width, align in COLUMNS)
    rule = "-" * max(len(head) + 40, len(title))
    print(title)
    for line in header:
        print(line)
    print(rule)
    print(head)
    print(rule)
    for row in rows:
        print(format_row(row))
    print(rule)
    print(f"(e) warm-cache breakdown: {breakdown}")
    print("(a) fastnmf = mean outer iteration inside the loop (objective evaluation and extrapolation included, "
          "init and result assembly excluded); sklearn = whole fit / iterations. Floor = X@Hᵀ + Xᵀ@W.")
    print("(a, b, d) the contenders take turns within each of the 3 rounds; the best round of each is reported.")
    print("(d) both whole calls / iterations; sklearn with tol=0 never evaluates its loss, "
          "fastnmf evaluates KL every iteration (fused into the update pass). KL needs WH, so its "
          "own floor is about 2× the two-GEMM floor.")
    print(f"load average at the end: {end_load}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
