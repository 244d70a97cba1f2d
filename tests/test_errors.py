"""Every error of API.md §8: the type, and a message that names the argument."""

import numpy as np
import pytest
import scipy.sparse

from fastnmf import nmf

X = np.random.default_rng(0).random((6, 5))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(X=-X), ValueError, r"X contains 30 negative entries \(first at \(0, 0\)\)"),
        (dict(X=np.where(X > 0.5, np.nan, X)), ValueError, "NaN or infinite"),
        (dict(X=np.where(X > 0.5, np.inf, X)), ValueError, "NaN or infinite"),
        (dict(X=np.ones(5)), ValueError, "2-D array"),
        (dict(X=np.ones((0, 3))), ValueError, "empty"),
        (dict(X=np.array([["a"]], dtype=object)), TypeError, "numbers"),
        (dict(X="abc"), TypeError, "X must be a numpy array"),
        (dict(X=np.ones((3, 3), dtype=complex)), TypeError, "real numeric dtype"),
        (dict(X=-scipy.sparse.csr_array(X)), ValueError, r"X contains 30 negative entries \(first at \(0, 0\)\)"),
        (dict(X=scipy.sparse.csr_array(np.where(X > 0.5, np.nan, X))), ValueError, "NaN or infinite"),
        (dict(mask=np.ones((5, 4), bool)), ValueError, r"mask has shape \(5, 4\); expected \(6, 5\)"),
        (dict(mask=np.full((6, 5), 0.5)), TypeError, "mask must be a boolean array"),
        (dict(mask=np.zeros((6, 5), bool)), ValueError, "mask observes no entry"),
        (dict(missing="zeros"), ValueError, "missing='zeros' .* X is dense"),
        (dict(missing="nan"), ValueError, "missing='nan' is not supported"),
        (dict(X=scipy.sparse.csr_array(X), missing="zeros", mask=np.ones((6, 5), bool)), ValueError, "either mask"),
        (dict(X=scipy.sparse.csr_array(np.where(X > 0.5, X, 0)), loss="itakura-saito", solver="mu"), ValueError, "zero entries"),
        (dict(rank=0), ValueError, "rank must be >= 1"),
        (dict(rank=2.5), TypeError, "rank must be an integer"),
        (dict(rank=True), TypeError, "rank must be an integer"),
        (dict(rank=6), ValueError, r"rank=6 exceeds min\(m, n\)=5.*init='random'"),
        (dict(solver="cd2"), ValueError, "solver='cd2' is not supported; choose one of 'hals', 'anls_bpp'"),
        (dict(loss="l2"), ValueError, "loss='l2' is not supported"),
        (dict(loss=float("nan")), ValueError, "loss=nan is not supported"),
        (dict(solver="hals", loss="kl"), ValueError, "solver='hals' supports only loss='frobenius'.*'mu'"),
        (dict(solver="mu", loss="itakura-saito", X=np.eye(3)), ValueError, "X has 6 zero entries"),
        (dict(init="svd"), ValueError, "init='svd' is not supported"),
        (dict(init=(np.ones((6, 2)),)), ValueError, "pair"),
        (dict(init=(np.ones((6, 3)), np.ones((2, 5)))), ValueError, r"init W0 has shape \(6, 3\); expected \(6, 2\)"),
        (dict(init=(np.ones((6, 2)), -np.ones((2, 5)))), ValueError, "init H0 contains 10 negative"),
        (dict(init=(np.full((6, 2), np.nan), np.ones((2, 5)))), ValueError, "init W0 contains 12 NaN"),
        (dict(tol=-1), ValueError, "tol must be a finite number >= 0"),
        (dict(tol="1e-4"), TypeError, "tol must be a real number"),
        (dict(target_error=-0.1), ValueError, "target_error"),
        (dict(max_iter=-1), ValueError, "max_iter must be >= 0"),
        (dict(max_iter=10.0), TypeError, "max_iter must be an integer"),
        (dict(max_time=0), ValueError, "max_time must be a finite number > 0"),
        (dict(l1_W=-1), ValueError, "l1_W must be a finite number >= 0"),
        (dict(l2_H=np.inf), ValueError, "l2_H must be a finite number >= 0"),
        (dict(n_init=0), ValueError, "n_init must be >= 1"),
        (dict(n_threads=0), ValueError, "n_threads must be >= 1"),
        (dict(random_state="seed"), TypeError, "random_state"),
        (dict(callback=3), TypeError, "callback must be callable"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, exc, match):
    args = dict(X=X, rank=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nmf(args.pop("X"), args.pop("rank"), **args)


def test_random_init_allows_rank_above_min_dimension():
    res = nmf(X, 7, init="random", random_state=0, max_iter=5)
    assert res.W.shape == (6, 7) and res.H.shape == (7, 5)
