"""Tests of rank selection: ``consensus`` and ``select_rank`` (fastnmf.selection)."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import squareform

import fastnmf
from fastnmf.selection import (
    TABLE_DTYPE,
    ConsensusResult,
    RankSelection,
    _best_by_cophenetic,
    _best_by_cv,
    _empty_table,
    check_ranks,
    consensus_bytes,
)


def planted_clusters(m=40, per=15, k=3, seed=0, sub=0.6, noise=0.02):
    """Columns in ``k`` groups of ``per``, shuffled. A group's columns mix its main
    direction with a weaker secondary one of its own, so a rank above ``k`` has a group
    to split, differently from run to run."""
    rng = np.random.default_rng(seed)
    W = rng.exponential(size=(m, 2 * k))
    H = np.zeros((2 * k, k * per))
    for c in range(k):
        cols = slice(c * per, (c + 1) * per)
        H[c, cols] = rng.uniform(0.5, 1.5, per)
        H[k + c, cols] = sub * rng.random(per) * H[c, cols]
    X = W @ H + noise * rng.random((m, k * per))
    perm = rng.permutation(k * per)
    return X[:, perm], np.repeat(np.arange(k), per)[perm]


def planted_low_rank(m=60, n=50, k=4, noise=0.1, seed=0):
    """Planted rank-k data with zero-mean noise (clipped at 0, rarely active), so that the
    planted rank is the one that predicts held-out entries best."""
    rng = np.random.default_rng(seed)
    W = rng.exponential(size=(m, k))
    H = rng.exponential(size=(k, n))
    W[rng.random(W.shape) < 0.3] = 0
    H[rng.random(H.shape) < 0.3] = 0
    WH = W @ H
    return np.maximum(WH + noise * WH.std() * rng.standard_normal((m, n)), 0)


def same_partition(a, b):
    """True when labelings ``a`` and ``b`` are equal up to renaming the clusters."""
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.fixture(scope="module")
def clusters():
    return planted_clusters()


@pytest.fixture(scope="module")
def c3(clusters):
    X, _ = clusters
    return fastnmf.consensus(X, 3, n_runs=10, random_state=0)


# --- consensus ------------------------------------------------------------------------------


def test_planted_clusters_are_recovered(clusters, c3):
    _, truth = clusters
    assert isinstance(c3, ConsensusResult)
    assert c3.cophenetic > 0.95
    assert c3.dispersion > 0.9
    assert same_partition(c3.labels, truth)
    assert c3.labels.shape == truth.shape and set(c3.labels.tolist()) == {0, 1, 2}
    assert c3.labels[0] == 0  # numbered in order of first appearance
    assert c3.n_runs == 10 and c3.rank == 3 and c3.axis == "columns" and c3.sample is None


def test_consensus_matrix_and_statistics_match_their_definitions(c3):
    C, L = c3.matrix, c3.run_labels
    n = L.shape[1]
    assert C.shape == (n, n) and C.dtype == np.float64
    brute = np.mean([(l[:, None] == l[None, :]) for l in L], axis=0)
    np.testing.assert_allclose(C, brute, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.diag(C), 1.0)
    np.testing.assert_allclose(c3.connectivity(), C)
    np.testing.assert_allclose(c3.connectivity([3, 1]), C[np.ix_([3, 1], [3, 1])])
    # Kim & Park (2007)
    assert c3.dispersion == pytest.approx(np.mean(4 * (C - 0.5) ** 2), abs=1e-12)
    # Brunet et al. (2004): scipy's own cophenetic correlation of 1 - C, average linkage
    d = squareform(1 - C, checks=False)
    expected = cophenet(linkage(d, "average"), d)[0]
    assert c3.cophenetic == pytest.approx(expected, abs=1e-10)
    # The best run is the one with the lowest objective.
    assert c3.objectives.shape == (10,)
    assert c3.best.objective == pytest.approx(c3.objectives.min())
    assert c3.best.rank == 3 and c3.best.H.shape == (3, n)


def test_unstable_rank_has_lower_cophenetic(clusters, c3):
    X, _ = clusters
    c5 = fastnmf.consensus(X, 5, n_runs=10, random_state=0)
    assert c5.dispersion < c3.dispersion - 0.05
    assert c5.cophenetic < c3.cophenetic


def test_rows_axis_clusters_rows(clusters, c3):
    X, truth = clusters
    c = fastnmf.consensus(X.T, 3, n_runs=10, axis="rows", random_state=0)
    assert c.matrix.shape == (X.shape[1], X.shape[1])
    assert c.cophenetic > 0.95 and same_partition(c.labels, truth)


def test_sparse_input_gives_the_dense_result(clusters, c3):
    X, _ = clusters
    c = fastnmf.consensus(sp.csr_array(X), 3, n_runs=10, random_state=0)
    np.testing.assert_array_equal(c.labels, c3.labels)
    assert c.cophenetic == pytest.approx(c3.cophenetic, abs=1e-9)


def test_same_seed_same_result(clusters, c3):
    X, _ = clusters
    again = fastnmf.consensus(X, 3, n_runs=10, random_state=0)
    np.testing.assert_array_equal(again.run_labels, c3.run_labels)
    np.testing.assert_array_equal(again.matrix, c3.matrix)


def test_keep_matrix_false_small_n_equals_full(clusters, c3):
    X, _ = clusters
    c = fastnmf.consensus(X, 3, n_runs=10, random_state=0, keep_matrix=False)
    assert c.matrix is None and c.sample is None
    assert c.cophenetic == c3.cophenetic and c.dispersion == c3.dispersion
    np.testing.assert_array_equal(c.labels, c3.labels)


def test_keep_matrix_false_samples_large_n(clusters):
    X, truth = clusters
    c = fastnmf.consensus(X, 3, n_runs=10, random_state=0, keep_matrix=False, sample_size=20)
    assert c.matrix is None
    assert c.sample.shape == (20,) and np.all(np.diff(c.sample) > 0)
    assert c.cophenetic > 0.95
    assert same_partition(c.labels, truth)  # items outside the sample are labelled too


def test_memory_guard_raises_before_any_run(clusters):
    X, _ = clusters
    calls = []
    with pytest.raises(ValueError, match="keep_matrix=False"):
        fastnmf.consensus(X, 3, max_memory=10_000, callback=lambda info: calls.append(1))
    with pytest.raises(ValueError, match="sample_size"):
        fastnmf.consensus(X, 3, keep_matrix=False, sample_size=30, max_memory=10_000,
                          callback=lambda info: calls.append(1))
    assert calls == []
    # the default limit bites near n = 10^4
    assert consensus_bytes(11_000, 30, 10) > 2 * 2**30 > consensus_bytes(10_000, 30, 10)


def test_consensus_with_mask_ignores_unobserved(clusters):
    X, truth = clusters
    rng = np.random.default_rng(1)
    mask = rng.random(X.shape) > 0.1
    Xn = np.where(mask, X, np.nan)
    c = fastnmf.consensus(Xn, 3, n_runs=6, mask=mask, random_state=0)
    assert c.cophenetic > 0.95 and same_partition(c.labels, truth)


def test_consensus_rank_one_and_one_run(clusters):
    X, _ = clusters
    c = fastnmf.consensus(X, 1, n_runs=3, random_state=0)
    assert c.cophenetic == 1.0 and c.dispersion == 1.0
    np.testing.assert_array_equal(c.labels, 0)
    c = fastnmf.consensus(X, 3, n_runs=1, random_state=0)
    assert c.dispersion == 1.0 and c.cophenetic == 1.0


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        (dict(axis="diagonal"), ValueError, "axis"),
        (dict(n_runs=0), ValueError, "n_runs"),
        (dict(n_runs=2.5), TypeError, "n_runs"),
        (dict(keep_matrix="yes"), TypeError, "keep_matrix"),
        (dict(init="nndsvd"), TypeError, "random init"),
        (dict(n_init=3), TypeError, "n_init"),
        (dict(bogus=1), TypeError, "bogus"),
        (dict(solver="magic"), ValueError, "magic"),
        (dict(max_memory=0), ValueError, "max_memory"),
        (dict(sample_size=1), ValueError, "sample_size"),
    ],
)
def test_consensus_argument_errors(clusters, kwargs, exc, fragment):
    X, _ = clusters
    with pytest.raises(exc, match=fragment):
        fastnmf.consensus(X, 3, **kwargs)


def test_consensus_data_errors():
    with pytest.raises(ValueError, match="negative"):
        fastnmf.consensus(-np.ones((5, 4)), 2)
    with pytest.raises(TypeError, match="rank"):
        fastnmf.consensus(np.ones((5, 4)), 2.0)
    with pytest.raises(ValueError, match="rank"):
        fastnmf.consensus(np.ones((5, 4)), 0)


# --- select_rank: cv ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noisy():
    return planted_low_rank()


@pytest.fixture(scope="module")
def survey(noisy):
    return fastnmf.select_rank(noisy, range(2, 7), random_state=0)


def test_cv_picks_the_planted_rank(survey):
    assert isinstance(survey, RankSelection)
    assert survey.best_rank == 4
    assert survey.method == "cv" and survey.n_runs == 3 and not survey.warm_start
    t = survey.table
    assert t.dtype == TABLE_DTYPE
    assert t.dtype.names == ("rank", "relative_error", "cv_error", "cv_error_std",
                             "cophenetic", "dispersion", "seconds")
    np.testing.assert_array_equal(t["rank"], [2, 3, 4, 5, 6])
    assert np.isnan(t["cophenetic"]).all() and np.isnan(t["dispersion"]).all()
    assert (t["seconds"] > 0).all() and (t["cv_error_std"] >= 0).all()
    assert np.argmin(t["cv_error"]) == 2
    # training error keeps falling with the rank; held-out error does not
    assert (np.diff(t["relative_error"]) < 0).all()
    assert survey.cv_errors.shape == (5, 3)
    np.testing.assert_allclose(t["cv_error"], survey.cv_errors.mean(axis=1))
    np.testing.assert_allclose(t["cv_error_std"], survey.cv_errors.std(axis=1, ddof=1))
    assert "best rank: 4" in str(survey)


def test_cv_on_sparse_input_gives_the_dense_table(noisy, survey):
    s = fastnmf.select_rank(sp.csr_array(noisy), range(2, 7), random_state=0)
    assert s.best_rank == survey.best_rank
    np.testing.assert_allclose(s.table["cv_error"], survey.table["cv_error"], rtol=1e-3)


def test_warm_started_path_gives_the_same_table(noisy, survey):
    warm = fastnmf.select_rank(noisy, range(2, 7), random_state=0, warm_start=True)
    assert warm.warm_start and warm.best_rank == survey.best_rank
    np.testing.assert_allclose(warm.table["cv_error"], survey.table["cv_error"], rtol=0.05)
    np.testing.assert_allclose(warm.table["relative_error"], survey.table["relative_error"], rtol=0.02)


def _count_sketches(monkeypatch):
    """A list that grows by one with each range sketch computed (at its first pass)."""
    from fastnmf import _init

    first_passes = []
    done = _init.power_iterations_done
    monkeypatch.setattr(_init, "power_iterations_done",
                        lambda power, *a: (power == 0 and first_passes.append(1)) or done(power, *a))
    return first_passes


@pytest.mark.parametrize("warm_start, init, sketches", [(False, "nndsvda", 2), (True, "nndsvda", 2),
                                                       (False, "random", 0)])
def test_cv_survey_draws_one_range_sketch_per_split(monkeypatch, warm_start, init, sketches):
    """The SVD inits of every rank of a split share the sketch of the widest rank
    (``_init.share_sketch``); the warm-started path needs one for its first rank only."""
    X = planted_low_rank(600, 500, 3)  # large enough for the randomized SVD
    first_passes = _count_sketches(monkeypatch)
    s = fastnmf.select_rank(X, [2, 3, 4], n_runs=2, random_state=0, warm_start=warm_start, init=init)
    assert len(first_passes) == sketches
    monkeypatch.setattr(fastnmf.selection, "share_sketch", lambda *a: None)  # one sketch per rank
    apart = fastnmf.select_rank(X, [2, 3, 4], n_runs=2, random_state=0, warm_start=warm_start, init=init)
    np.testing.assert_allclose(s.table["cv_error"], apart.table["cv_error"], rtol=1e-2)


def test_cv_same_seed_same_table(noisy, survey):
    again = fastnmf.select_rank(noisy, range(2, 7), random_state=0)
    for name in TABLE_DTYPE.names[:-1]:  # all but seconds
        np.testing.assert_array_equal(again.table[name], survey.table[name])


def test_cv_one_split_and_unsorted_duplicate_ranks(noisy):
    s = fastnmf.select_rank(noisy, [4, 3, 4], n_runs=1, random_state=0, max_iter=50)
    np.testing.assert_array_equal(s.table["rank"], [3, 4])
    assert np.isnan(s.table["cv_error_std"]).all()
    assert s.best_rank == 4 and "one split" in s.rule


def test_cv_with_mask_holds_out_observed_entries_only(noisy):
    rng = np.random.default_rng(3)
    mask = rng.random(noisy.shape) > 0.2
    X = np.where(mask, noisy, np.nan)  # unobserved entries are never read
    s = fastnmf.select_rank(X, range(3, 6), mask=mask, random_state=0)
    assert np.isfinite(s.table["cv_error"]).all()
    assert s.best_rank == 4
    s = fastnmf.select_rank(X, [4], mask=sp.csr_array(mask), random_state=0, n_runs=2)
    assert np.isfinite(s.table["cv_error"]).all()


def test_cv_missing_zeros_holds_out_stored_entries():
    X = sp.random_array((60, 40), density=0.5, random_state=0, format="csr")
    s = fastnmf.select_rank(X, [1, 2], missing="zeros", random_state=0, n_runs=2, max_iter=30)
    assert np.isfinite(s.table["cv_error"]).all()
    with pytest.raises(ValueError, match="sparse"):
        fastnmf.select_rank(X.toarray(), [1, 2], missing="zeros")


def test_cv_splitter_hides_the_requested_fraction(noisy):
    from fastnmf.selection import _Splitter

    splitter = _Splitter(noisy, None, None, 0.1, 2.0)
    data, (rows, cols, values) = splitter.split(np.random.default_rng(0))
    assert 0.05 < len(rows) / noisy.size < 0.15
    np.testing.assert_array_equal(values, noisy[rows, cols])
    assert data.n_observed == noisy.size - len(rows)


def test_to_pandas(survey, monkeypatch):
    pd = pytest.importorskip("pandas")
    df = survey.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(TABLE_DTYPE.names) and len(df) == 5
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        survey.to_pandas()


# --- select_rank: consensus -----------------------------------------------------------------


def test_consensus_survey_picks_the_planted_clusters(clusters):
    X, _ = clusters
    s = fastnmf.select_rank(X, range(2, 6), method="consensus", n_runs=10, random_state=0)
    assert s.method == "consensus" and s.best_rank == 3
    t = s.table
    assert np.isnan(t["cv_error"]).all() and np.isnan(t["cv_error_std"]).all()
    assert np.isfinite(t["cophenetic"]).all() and np.isfinite(t["dispersion"]).all()
    assert len(s.consensus) == 4 and all(c.matrix is None for c in s.consensus)
    assert s.consensus[1].cophenetic == pytest.approx(t["cophenetic"][1])
    assert "Brunet" in s.rule


@pytest.mark.parametrize("solver, sketches", [("hals", 1), ("mu", 0)])
def test_consensus_survey_shares_one_warm_start_sketch(monkeypatch, solver, sketches):
    """The warm starts of every rank share the sketch of the widest rank that pays
    (``warm.share_warm_sketch``); ``mu`` does not start on a sketch."""
    X = planted_low_rank(600, 500, 3)
    first_passes = _count_sketches(monkeypatch)
    s = fastnmf.select_rank(X, [2, 3, 4], method="consensus", n_runs=4, random_state=0, solver=solver)
    assert len(first_passes) == sketches
    monkeypatch.setattr(fastnmf.selection, "share_warm_sketch", lambda *a: None)  # one sketch per rank
    apart = fastnmf.select_rank(X, [2, 3, 4], method="consensus", n_runs=4, random_state=0, solver=solver)
    np.testing.assert_allclose(s.table["relative_error"], apart.table["relative_error"], rtol=1e-2)


def test_consensus_survey_rejects_warm_start(clusters):
    X, _ = clusters
    with pytest.raises(ValueError, match="warm_start"):
        fastnmf.select_rank(X, [2, 3], method="consensus", warm_start=True)
    with pytest.raises(TypeError, match="init"):
        fastnmf.select_rank(X, [2, 3], method="consensus", init="nndsvd")


# --- rules and validation -------------------------------------------------------------------


def _table(ranks, **fields):
    t = _empty_table(np.array(ranks))
    for name, values in fields.items():
        t[name] = values
    return t


def test_cophenetic_rule():
    # the smallest rank at which it starts to fall
    assert _best_by_cophenetic(_table([2, 3, 4, 5], cophenetic=[0.97, 0.99, 0.80, 0.78]))[0] == 3
    assert _best_by_cophenetic(_table([2, 3, 4, 5], cophenetic=[1.0, 1.0, 0.998, 0.99]))[0] == 3
    assert _best_by_cophenetic(_table([2, 3, 4, 5], cophenetic=[0.99, 0.98, 0.99, 0.7]))[0] == 2
    # never falls: the largest rank
    assert _best_by_cophenetic(_table([2, 3, 4], cophenetic=[0.90, 0.95, 0.95]))[0] == 4
    # rank 1 (trivially 1) is left out unless alone
    assert _best_by_cophenetic(_table([1, 2, 3], cophenetic=[1.0, 0.99, 0.7]))[0] == 2
    assert _best_by_cophenetic(_table([1], cophenetic=[1.0]))[0] == 1


def test_cv_rule_is_one_standard_error():
    t = _table([2, 3, 4, 5], cv_error=[0.5, 0.105, 0.100, 0.2], cv_error_std=[0.1, 0.01, 0.01, 0.1])
    assert _best_by_cv(t, 4)[0] == 3  # 0.105 <= 0.100 + 0.01 / 2
    assert _best_by_cv(t, 1)[0] == 4  # one split: the argmin
    t["cv_error"][1] = 0.2
    assert _best_by_cv(t, 4)[0] == 4


def test_check_ranks():
    np.testing.assert_array_equal(check_ranks(range(2, 5), (10, 6)), [2, 3, 4])
    np.testing.assert_array_equal(check_ranks(np.array([5, 2, 2]), (10, 6)), [2, 5])
    for bad, exc, fragment in [
        (3, TypeError, "iterable"),
        ("2:5", TypeError, "iterable"),
        ([], ValueError, "empty"),
        ([0, 2], ValueError, ">= 1"),
        ([2.0], TypeError, "integers"),
        ([True], TypeError, "integers"),
        ([2, 7], ValueError, "min\\(m, n\\)=6"),
    ]:
        with pytest.raises(exc, match=fragment):
            check_ranks(bad, (10, 6))


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        (dict(method="aic"), ValueError, "method"),
        (dict(holdout=0.0), ValueError, "holdout"),
        (dict(holdout=1.0), ValueError, "holdout"),
        (dict(holdout="5%"), TypeError, "holdout"),
        (dict(n_runs=0), ValueError, "n_runs"),
        (dict(warm_start=1), TypeError, "warm_start"),
        (dict(random_state=-1), ValueError, "random_state"),
        (dict(bogus=1), TypeError, "bogus"),
        (dict(loss="kl"), ValueError, "mu"),
        (dict(init=(np.ones((60, 2)), np.ones((2, 50)))), ValueError, "init"),
        (dict(init="svd"), ValueError, "init"),
    ],
)
def test_select_rank_argument_errors(noisy, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        fastnmf.select_rank(noisy, [2, 3], **kwargs)


def test_select_rank_data_errors():
    X = np.ones((6, 5))
    X[2, 3] = -1.0
    with pytest.raises(ValueError, match="negative"):
        fastnmf.select_rank(X, [1, 2])
    with pytest.raises(ValueError, match="min\\(m, n\\)=5"):
        fastnmf.select_rank(np.ones((6, 5)), [2, 6])
    with pytest.raises(ValueError, match="2-D"):
        fastnmf.select_rank(np.ones(5), [1])
    with pytest.raises(ValueError, match="at least 2"):
        fastnmf.select_rank(np.ones((1, 1)), [1])
