"""asv suites: rank surveys. Ranks 2..10 with 10 runs each on a 2000×1000 matrix of planted
rank 6 (+10% noise):

- ``ConsensusSurvey``: consensus clustering over 10 random restarts per rank (labels,
  consensus matrix, cophenetic correlation, dispersion), by ``fastnmf.select_rank(...,
  method="consensus")`` and by the same survey built on scikit-learn's ``NMF``. This is the
  survey the two libraries can run alike: cross-validation needs fits that ignore held-out
  entries, which scikit-learn's NMF cannot do (no mask), so its "same survey" would not be
  the same. Both sides fit from random inits with their default stopping rules (tol=1e-4,
  max_iter=200) and share the post-processing (``fastnmf.selection``'s helpers), so the
  difference is the fits; ``track_mean_relative_error`` shows the fits are as good.
- ``CVSurvey``: fastnmf's cross-validated survey (10 splits, 5% held out), cold-started at
  every rank vs warm-started along the rank path; ``track_best_rank`` records what both
  pick. (It is 7, not 6: ``low_rank``'s half-normal noise has a positive mean, a
  constant rank-one offset that a seventh component predicts on held-out entries.)

Measured on the project's machine (2 cores, shared, load 1.3-2.0): consensus survey
fastnmf 7.7 s vs scikit-learn 58.0 s (7.5×; 10.0 vs 67.2 s = 6.7× in a second, more
loaded run; the runs start on a sketch of X, and share their passes over X: 10.2 s
before that, one by one) at mean relative errors within 0.01 % of scikit-learn's or
lower; cv survey 12.7 s cold, 7.8 s warm-started (38 % saved, held-out errors within
0.3 %; measured apart, as this module's run was under load). Since the randomized SVD
iterates until the leading singular directions stand out (``_init``), the NNDSVDa inits
at ranks above the planted one make 7 power iterations instead of 1-4 (the masked
matrix's spectrum is flat there): the cold cv survey took 12.1-12.8 s against
11.1-12.9 s before, in one interleaved A/B (load 1.3-1.7). Every rank of a split now
shares one sketch, of the widest rank (``_init.share_sketch``): 10.0-12.0 s against
11.8-13.2 s with one sketch per rank, in three interleaved rounds (load 1.5-1.7). The
consensus survey's warm starts share one sketch likewise (``warm.share_warm_sketch``):
6.6-7.4 s against 7.1-8.0 s, three interleaved rounds (load 0.9-1.7), mean relative
errors within 0.4 % of each other.

Benchmark names are history (DESIGN.md §5): do not rename classes, methods or parameter
values; add new ones instead.
"""

import time
import warnings

import numpy as np

import fastnmf

from .bench_nmf import _Heavy
from .common import warm_jit

# (m, n, planted rank): the survey workload. Part of the benchmark names' history.
SURVEY_SHAPE = (2000, 1000, 6)
SURVEY_RANKS = range(2, 11)
SURVEY_RUNS = 10


def survey_data(random_state=0):
    """The 2000×1000 rank-6 + 10% noise matrix of the surveys."""
    m, n, k = SURVEY_SHAPE
    X, _, _ = fastnmf.datasets.low_rank(m, n, k, noise=0.1, random_state=random_state)
    return X


def sklearn_consensus_survey(X, ranks, n_runs, random_state=0):
    """The consensus survey on scikit-learn's NMF (coordinate descent, random inits).

    Returns one ``(rank, mean relative error, cophenetic, dispersion)`` tuple per rank,
    with the consensus statistics computed by fastnmf's own helpers from the runs' labels
    (the largest entry of each column of H), as ``fastnmf.consensus`` does.
    """
    from sklearn.decomposition import NMF

    from fastnmf.selection import _consensus_matrix, _cophenetic_and_clusters, _dispersion

    norm = np.linalg.norm(X)
    rows = []
    seed = random_state
    for k in ranks:
        labels = np.empty((n_runs, X.shape[1]), dtype=np.int32)
        errors = []
        for run in range(n_runs):
            model = NMF(n_components=k, init="random", solver="cd", random_state=seed)
            seed += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
                W = model.fit_transform(X)
            labels[run] = np.argmax(model.components_, axis=0)
            errors.append(np.linalg.norm(X - W @ model.components_) / norm)
        matrix = _consensus_matrix(labels)
        cophenetic, _ = _cophenetic_and_clusters(matrix, k)
        rows.append((k, float(np.mean(errors)), cophenetic, _dispersion(matrix)))
    return rows


def fastnmf_consensus_survey(X, ranks, n_runs, random_state=0):
    """``select_rank(method="consensus")``, rows as in ``sklearn_consensus_survey``."""
    s = fastnmf.select_rank(X, ranks, method="consensus", n_runs=n_runs, random_state=random_state)
    return [
        (int(r["rank"]), _mean_relative_error(c), float(r["cophenetic"]), float(r["dispersion"]))
        for r, c in zip(s.table, s.consensus)
    ]


def _mean_relative_error(c):
    """Mean relative error of a consensus's runs, from their objectives ½‖X − WH‖²
    (unpenalised): each is the best run's error times √(objective / best objective)."""
    if c.best.objective <= 0:
        return 0.0
    return float(np.mean(c.best.relative_error * np.sqrt(c.objectives / c.best.objective)))


SURVEYS = {"fastnmf": fastnmf_consensus_survey, "sklearn": sklearn_consensus_survey}


class _Survey(_Heavy):
    """Timing settings for surveys of 90 fits (seconds to a minute each)."""

    repeat = (1, 2, 120.0)
    timeout = 1200


class ConsensusSurvey(_Survey):
    """Consensus rank survey, ranks 2..10 × 10 random restarts: fastnmf vs scikit-learn."""

    params = [["fastnmf", "sklearn"]]
    param_names = ["library"]

    def setup(self, library):
        self.X = survey_data()
        warm_jit(np.float64, solver="hals", init="random")

    def time_survey(self, library):
        SURVEYS[library](self.X, SURVEY_RANKS, SURVEY_RUNS)

    def track_mean_relative_error(self, library):
        """Mean over ranks and runs of ‖X − WH‖/‖X‖: the quality the time bought."""
        rows = SURVEYS[library](self.X, SURVEY_RANKS, SURVEY_RUNS)
        return float(np.mean([row[1] for row in rows]))

    track_mean_relative_error.unit = "relative error"


class CVSurvey(_Survey):
    """Cross-validated rank survey (10 splits, 5% held out), cold vs warm-started path."""

    params = [[False, True]]
    param_names = ["warm_start"]

    def setup(self, warm_start):
        self.X = survey_data()
        warm_jit(np.float64, solver="hals")
        mask = np.ones((60, 40), bool)
        mask[0, 0] = False
        fastnmf.nmf(np.random.default_rng(0).random((60, 40)), 3, mask=mask, max_iter=1)

    def _run(self, warm_start):
        return fastnmf.select_rank(
            self.X, SURVEY_RANKS, n_runs=SURVEY_RUNS, random_state=0, warm_start=warm_start
        )

    def time_cv_survey(self, warm_start):
        self._run(warm_start)

    def track_best_rank(self, warm_start):
        return self._run(warm_start).best_rank

    track_best_rank.unit = "rank"


def compare(runs=SURVEY_RUNS):
    """Print the measured numbers of this module once (``python -m benchmarks.bench_selection``)."""
    X = survey_data()
    warm_jit(np.float64, solver="hals", init="random")
    first, last = SURVEY_RANKS.start, SURVEY_RANKS.stop - 1
    print(f"survey: ranks {first}..{last}, {runs} runs each, X {X.shape}")
    seconds = {}
    for library, survey in SURVEYS.items():
        start = time.perf_counter()
        rows = survey(X, SURVEY_RANKS, runs)
        seconds[library] = time.perf_counter() - start
        print(f"consensus survey, {library:8s}: {seconds[library]:7.2f} s")
        for k, err, coph, disp in rows:
            print(f"    rank {k:2d}: mean relative error {err:.5f}, cophenetic {coph:.4f}, "
                  f"dispersion {disp:.4f}")
    print(f"speed-up: {seconds['sklearn'] / seconds['fastnmf']:.1f}x")
    for warm in (False, True):
        start = time.perf_counter()
        s = fastnmf.select_rank(X, SURVEY_RANKS, n_runs=runs, random_state=0, warm_start=warm)
        elapsed = time.perf_counter() - start
        seconds[warm] = elapsed
        print(f"cv survey, warm_start={warm!s:5s}: {elapsed:7.2f} s, best rank {s.best_rank}")
        print("    cv_error " + " ".join(f"{e:.4f}" for e in s.table["cv_error"]))
    print(f"warm-start saving: {1 - seconds[True] / seconds[False]:.0%}")


if __name__ == "__main__":  # pragma: no cover
    compare()
