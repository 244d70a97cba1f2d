"""Distributed fastnmf on a LocalCluster beside in-memory fastnmf on the same machine.

    python benchmarks/dask_compare.py [--quick] [--clusters 1x1 2x1 1x2]

For each solver: seconds per outer iteration in memory and on a ``distributed.LocalCluster``
of W worker processes with T threads each (``WxT``; by default 1 and 2 single-threaded
workers, and 1 worker with 2 threads; X in 8 row chunks, persisted on the workers
first), and the bytes moved per iteration against the O((m + n)·k) model.

Per-iteration figures are differences between a long and a short run (40 and 20
iterations, same init, ``tol=0``), so loading X, the init, the final KKT check and the
result are left out; the best of ``--repeats`` pairs is kept. Bytes moved are counted on
the loopback interface (all traffic between client, scheduler and workers of this
machine, protocol and heartbeats included), over the same difference of runs.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # as `import fastnmf` does when it comes first

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastnmf  # noqa: E402

FULL = dict(shape=(10000, 2000, 30), chunks=8, short=20, long=40, repeats=3)
QUICK = dict(shape=(2000, 500, 10), chunks=8, short=5, long=10, repeats=1)
SOLVERS = (("hals", "frobenius"), ("anls_bpp", "frobenius"), ("mu", "frobenius"), ("mu", "kl"))


def loopback_bytes():
    import psutil

    counters = psutil.net_io_counters(pernic=True)
    return counters["lo"].bytes_sent if "lo" in counters else 0


def per_iteration(fit, cfg):
    """Best (seconds, bytes) per iteration from pairs of long and short runs."""
    best_s, best_b = np.inf, np.inf
    for _ in range(cfg["repeats"]):
        measured = {}
        for iters in (cfg["short"], cfg["long"]):
            b0, t0 = loopback_bytes(), time.perf_counter()
            fit(iters)
            measured[iters] = time.perf_counter() - t0, loopback_bytes() - b0
        extra = cfg["long"] - cfg["short"]
        seconds = (measured[cfg["long"]][0] - measured[cfg["short"]][0]) / extra
        moved = (measured[cfg["long"]][1] - measured[cfg["short"]][1]) / extra
        best_s, best_b = min(best_s, seconds), min(best_b, moved)
    return best_s, max(best_b, 0.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small problem, one repeat")
    parser.add_argument("--clusters", nargs="+", default=["1x1", "2x1", "1x2"], help="WORKERSxTHREADS")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL

    import dask.array as da
    from distributed import Client, LocalCluster

    m, n, k = cfg["shape"]
    rng = np.random.default_rng(0)
    X = rng.random((m, k)) @ rng.random((k, n)) + 0.1 * rng.random((m, n))
    W0, H0 = rng.random((m, k)) + 0.1, rng.random((k, n)) + 0.1
    model = (m + n) * k * 8
    print(f"X {m}×{n} float64, k={k}, {cfg['chunks']} row chunks; O((m+n)k) model = {model / 1e6:.2f} MB")
    print(f"{'solver':16s} {'in memory':>10s} " + " ".join(
        f"{spec + ' cluster':>10s} {'ratio':>6s} {'MB/iter':>8s} {'/model':>6s}" for spec in args.clusters))
    results = {}
    for spec in args.clusters:
        workers, threads = map(int, spec.split("x"))
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None) \
                as cluster, Client(cluster):
            Xd = da.from_array(X, chunks=(-(-m // cfg["chunks"]), n)).persist()
            for solver, loss in SOLVERS:
                def fit(iters):
                    return fastnmf.nmf(Xd, k, solver=solver, loss=loss, init=(W0, H0), max_iter=iters, tol=0)
                fit(2)  # compile and load on the workers
                results[solver, loss, spec] = per_iteration(fit, cfg)
    line = []
    for solver, loss in SOLVERS:
        def fit(iters):
            return fastnmf.nmf(X, k, solver=solver, loss=loss, init=(W0, H0), max_iter=iters, tol=0)
        fit(2)
        local, _ = per_iteration(fit, cfg)
        cells = [f"{solver + ('/' + loss if loss != 'frobenius' else ''):16s} {local * 1e3:8.1f}ms"]
        for spec in args.clusters:
            seconds, moved = results[solver, loss, spec]
            cells.append(f"{seconds * 1e3:8.1f}ms {seconds / local:5.2f}× {moved / 1e6:8.2f} {moved / model:5.2f}×")
        line.append(" ".join(cells))
    print("\n".join(line))


if __name__ == "__main__":
    main()
