"""fastnmf.estimators: scikit-learn compatibility, parity with scikit-learn, semantics."""

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import low_rank_matrix
from sklearn import decomposition as skd
from sklearn.base import clone
from sklearn.decomposition._nmf import _beta_divergence
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

import fastnmf
from fastnmf.estimators import NMF, MiniBatchNMF

ROOT = Path(__file__).resolve().parents[1]


def data(m=120, n=60, k=5, seed=0, noise=0.05):
    X, _, _ = low_rank_matrix(m, n, k, seed=seed, noise=noise)
    return X


def custom_init(X, k, seed=0):
    """Random non-negative factors on the scale of X: a common starting point."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(X.mean() / k)
    return scale * rng.random((X.shape[0], k)), scale * rng.random((k, X.shape[1]))


def sklearn_objective(X, W, H, beta, alpha_W, alpha_H, l1_ratio):
    """scikit-learn's documented objective (NMF docstring), with its own scaling code."""
    reg = skd.NMF(alpha_W=alpha_W, alpha_H=alpha_H, l1_ratio=l1_ratio)
    l1_W, l1_H, l2_W, l2_H = reg._compute_regularization(X)
    return (
        _beta_divergence(X, W, H, beta)
        + l1_W * W.sum()
        + l1_H * H.sum()
        + 0.5 * l2_W * (W**2).sum()
        + 0.5 * l2_H * (H**2).sum()
    )


# ------------------------------------------------------------ scikit-learn's checks


@parametrize_with_checks([NMF(), MiniBatchNMF()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# Output and feature-name checks that parametrize_with_checks does not yield; those that
# need pandas raise SkipTest (a pytest skip) without it.
OUTPUT_CHECKS = (
    "check_set_output_transform",
    "check_set_output_transform_pandas",
    "check_global_output_transform_pandas",
    "check_dataframe_column_names_consistency",
    "check_transformer_get_feature_names_out",
    "check_transformer_get_feature_names_out_pandas",
    "check_get_feature_names_out_error",
)


@pytest.mark.parametrize("name", OUTPUT_CHECKS)
@pytest.mark.parametrize("Estimator", [NMF, MiniBatchNMF])
def test_output_and_feature_name_checks(Estimator, name):
    import sklearn.utils.estimator_checks as checks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        getattr(checks, name)(Estimator.__name__, Estimator())


@pytest.mark.parametrize("Estimator", [NMF, MiniBatchNMF])
def test_param_validation(Estimator):
    # not among check_estimator's checks: every parameter needs a constraint
    check_param_validation(Estimator.__name__, Estimator())


# ------------------------------------------------------------ parity with scikit-learn


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_parity_with_sklearn_at_the_same_init(solver):
    # noise well above the solvers' tolerance, so both reach the noise floor
    X = data(noise=0.5)
    W0, H0 = custom_init(X, 5)
    kw = dict(n_components=5, init="custom", solver=solver, tol=1e-6, max_iter=2000)
    ours = NMF(**kw).fit(X, W=W0, H=H0)
    theirs = skd.NMF(**kw).fit(X, W=W0, H=H0)
    assert ours.components_.shape == theirs.components_.shape == (5, 60)
    assert ours.n_components_ == theirs.n_components_ == 5
    assert ours.n_features_in_ == theirs.n_features_in_ == 60
    assert ours.n_iter_ >= 1 and isinstance(ours.n_iter_, int)
    assert ours.reconstruction_err_ == pytest.approx(theirs.reconstruction_err_, rel=0.03)
    assert ours.reconstruction_err_ <= theirs.reconstruction_err_ * 1.001


@pytest.mark.parametrize("init", [None, "nndsvd", "nndsvda", "nndsvdar", "random"])
def test_parity_with_sklearn_by_init_name(init):
    X = data(noise=0.5)
    ours = NMF(5, init=init, random_state=0, max_iter=500).fit(X)
    theirs = skd.NMF(5, init=init, random_state=0, max_iter=500).fit(X)
    assert ours.reconstruction_err_ == pytest.approx(theirs.reconstruction_err_, rel=0.01)


def test_reconstruction_err_is_sklearns_definition():
    X = data() + 0.01
    for beta_loss, solver in [("frobenius", "cd"), ("kullback-leibler", "mu"), ("itakura-saito", "mu"), (1.5, "mu")]:
        model = NMF(4, solver=solver, beta_loss=beta_loss, max_iter=50, tol=0, alpha_W=1e-3, l1_ratio=0.5)
        W = model.fit_transform(X)
        expected = _beta_divergence(X, W, model.components_, beta_loss, square_root=True)
        assert model.reconstruction_err_ == pytest.approx(expected, rel=1e-6)


def test_mu_kl_parity_with_sklearn():
    X = data() + 0.01
    W0, H0 = custom_init(X, 5)
    kw = dict(n_components=5, init="custom", solver="mu", beta_loss="kullback-leibler", tol=0, max_iter=300)
    ours = NMF(**kw).fit(X, W=W0, H=H0)
    theirs = skd.NMF(**kw).fit(X, W=W0, H=H0)
    assert ours.reconstruction_err_ == pytest.approx(theirs.reconstruction_err_, rel=0.02)


# ------------------------------------------------------------ penalties


@pytest.mark.parametrize("alpha_W,alpha_H,l1_ratio", [(0.01, "same", 0.0), (0.02, 0.005, 1.0), (0.01, 0.03, 0.4)])
@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
def test_penalties_give_sklearns_objective(alpha_W, alpha_H, l1_ratio, beta_loss):
    X = data() + 0.01
    W, H = custom_init(X, 5, seed=3)
    model = NMF(5, beta_loss=beta_loss, alpha_W=alpha_W, alpha_H=alpha_H, l1_ratio=l1_ratio)
    loss = "frobenius" if beta_loss == "frobenius" else "kl"
    res = fastnmf.nmf(X, 5, solver="mu", loss=loss, init=(W, H), max_iter=0, **model._penalties(X.shape))
    expected = sklearn_objective(X, W, H, beta_loss, alpha_W, alpha_H, l1_ratio)
    assert res.objective == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_same_alpha_same_model_as_sklearn(solver):
    X = data()
    W0, H0 = custom_init(X, 5)
    kw = dict(n_components=5, init="custom", solver=solver, tol=1e-8, max_iter=3000)
    kw.update(alpha_W=0.05, alpha_H=0.02, l1_ratio=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = NMF(**kw)
        W_ours = ours.fit_transform(X, W=W0, H=H0)
        theirs = skd.NMF(**kw)
        W_theirs = theirs.fit_transform(X, W=W0, H=H0)
    args = (2, 0.05, 0.02, 0.5)
    f_ours = sklearn_objective(X, W_ours, ours.components_, *args)
    f_theirs = sklearn_objective(X, W_theirs, theirs.components_, *args)
    assert f_ours == pytest.approx(f_theirs, rel=0.02)
    assert f_ours <= f_theirs * 1.001
    # and the penalty acts: an L1 penalty on both factors gives a sparser W
    plain = NMF(5, random_state=0).fit_transform(X)
    strong = NMF(5, alpha_W=0.2, l1_ratio=1.0, random_state=0).fit_transform(X)
    assert (strong == 0).mean() > (plain == 0).mean() + 0.2


def test_transform_solves_the_penalised_problem_exactly():
    X = data()
    model = NMF(5, alpha_W=0.02, alpha_H=0.01, l1_ratio=0.3, random_state=0).fit(X)
    X_new = data(seed=7)
    W = model.transform(X_new)
    H = model.components_
    l1, l2 = 60 * 0.02 * 0.3, 60 * 0.02 * 0.7
    grad = W @ (H @ H.T) - X_new @ H.T + l1 + l2 * W
    projected = np.where(W > 0, grad, np.minimum(grad, 0))
    assert np.abs(projected).max() < 1e-9 * np.abs(X_new @ H.T).max()


# ------------------------------------------------------------ transform


@pytest.mark.parametrize("solver", ["cd", "anls_bpp", "anls_as"])
def test_fit_transform_agrees_with_fit_then_transform(solver):
    X = data(noise=0.02)
    model = NMF(5, solver=solver, tol=1e-12, max_iter=5000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W_fit = model.fit_transform(X)
    W_transform = model.transform(X)
    assert np.linalg.norm(W_fit - W_transform) <= 1e-6 * np.linalg.norm(W_fit)


def test_fit_transform_agrees_with_transform_at_default_tol():
    X = data()
    model = NMF(5, random_state=0)
    W = model.fit_transform(X)
    assert np.linalg.norm(W - model.transform(X)) <= 1e-2 * np.linalg.norm(W)


def test_transform_of_new_rows_is_rowwise():
    X = data()
    model = NMF(5, random_state=0).fit(X)
    X_new = data(seed=5)
    W = model.transform(X_new)
    assert np.allclose(model.transform(X_new[:7]), W[:7], rtol=1e-10, atol=1e-12)
    assert np.allclose(model.transform(X_new[::-1]), W[::-1], rtol=1e-10, atol=1e-12)


def test_transform_kl_by_multiplicative_updates():
    X = data() + 0.01
    model = NMF(5, solver="mu", beta_loss="kullback-leibler", tol=1e-8, max_iter=3000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W_fit = model.fit_transform(X)
    W = model.transform(X)
    assert np.all(W >= 0) and np.isfinite(W).all()
    # W-only updates from a flat start reach the fit's divergence on the same components
    H = model.components_
    assert _beta_divergence(X, W, H, 1) <= 1.01 * _beta_divergence(X, W_fit, H, 1)


def test_inverse_transform():
    X = data()
    model = NMF(5, random_state=0)
    W = model.fit_transform(X)
    assert np.allclose(model.inverse_transform(W), W @ model.components_)
    assert np.allclose(model.inverse_transform(sp.csr_array(W)), W @ model.components_)


def test_transform_accepts_sparse_and_matches_dense():
    X = data()
    model = NMF(5, random_state=0).fit(X)
    X_new = data(seed=2)
    X_new[X_new < np.median(X_new)] = 0
    for fmt in ("csr", "csc"):
        W_sparse = model.transform(sp.csr_matrix(X_new).asformat(fmt))
        assert np.allclose(W_sparse, model.transform(X_new), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("Estimator", [NMF, MiniBatchNMF])
def test_fit_on_sparse_matches_dense(Estimator):
    X = data()
    X[X < np.median(X)] = 0
    kw = dict(n_components=5, random_state=0, tol=1e-6, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = Estimator(**kw).fit(X)
        sparse = Estimator(**kw).fit(sp.csr_matrix(X))
    assert sparse.reconstruction_err_ == pytest.approx(dense.reconstruction_err_, rel=1e-3)


# ------------------------------------------------------------ parameters and attributes


def test_solver_aliases_and_every_solver_fits():
    X = data()
    cd = NMF(5, solver="cd", random_state=0).fit(X)
    hals = NMF(5, solver="hals", random_state=0).fit(X)
    assert np.array_equal(cd.components_, hals.components_)
    mu = NMF(5, solver="mu", random_state=0, max_iter=50, tol=0).fit(X)
    res = fastnmf.nmf(X, 5, solver="mu", max_iter=50, tol=0, random_state=0)
    assert np.allclose(mu.components_, res.H)
    for solver in fastnmf.SOLVERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = NMF(5, solver=solver, random_state=0, max_iter=300)
            W = model.fit_transform(X)
        assert W.shape == (120, 5) and model.components_.shape == (5, 60)
        assert np.isfinite(model.reconstruction_err_)
        assert model.reconstruction_err_ < 0.2 * np.linalg.norm(X), solver


def test_unsupported_solver_loss_pair_names_the_fix():
    with pytest.raises(ValueError, match="mu"):
        NMF(3, solver="cd", beta_loss="kullback-leibler").fit(data())


def test_estimator_equals_nmf():
    X = data()
    model = NMF(5, solver="anls_bpp", random_state=0, alpha_W=0.01, l1_ratio=0.5, n_init=2)
    W = model.fit_transform(X)
    res = fastnmf.nmf(X, 5, solver="anls_bpp", random_state=0, n_init=2, **model._penalties(X.shape))
    assert np.array_equal(W, res.W) and np.array_equal(model.components_, res.H)
    assert model.n_iter_ == res.n_iter


def test_n_components_and_init_rules():
    X = data(m=30, n=12)
    assert NMF(random_state=0).fit(X).n_components_ == 12  # "auto": all features
    assert NMF(None, random_state=0).fit(X).n_components_ == 12
    W0, H0 = custom_init(X, 4)
    assert NMF(init="custom").fit(X, W=W0, H=H0).n_components_ == 4  # from H
    # more components than min(n_samples, n_features): init=None falls back to random
    wide = NMF(20, random_state=0, max_iter=20, tol=0).fit(X)
    assert wide.components_.shape == (20, 12)
    with pytest.raises(ValueError, match="rank"):
        NMF(20, init="nndsvda").fit(X)
    with pytest.raises(ValueError, match="W=W0, H=H0"):
        NMF(4, init="custom").fit(X)
    with pytest.raises(ValueError, match="shape"):
        NMF(4, init="custom").fit(X, W=W0, H=H0[:3])
    with pytest.warns(RuntimeWarning, match="ignored"):
        NMF(4, random_state=0).fit(X, W=W0, H=H0)


def test_float32_is_kept():
    X = data().astype(np.float32)
    for Estimator in (NMF, MiniBatchNMF):
        model = Estimator(5, random_state=0)
        W = model.fit_transform(X)
        assert W.dtype == np.float32 and model.components_.dtype == np.float32
        assert model.transform(X).dtype == np.float32


def test_convergence_warning_on_max_iter():
    X = data()
    with pytest.warns(ConvergenceWarning, match="Maximum number of iterations 2"):
        NMF(5, max_iter=2, random_state=0).fit(X)
    with pytest.warns(ConvergenceWarning, match="Maximum number of iterations 1"):
        MiniBatchNMF(5, max_iter=1, batch_size=30, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        NMF(5, max_iter=2, tol=0, random_state=0).fit(X)  # tol=0 asks for max_iter: no warning
        NMF(5, max_iter=1000, random_state=0).fit(X)


def test_verbose_and_shuffle():
    X = data()
    with pytest.warns(UserWarning, match="shuffle"):
        NMF(5, shuffle=True, random_state=0).fit(X)


def test_verbose_prints(capsys):
    NMF(5, verbose=1, max_iter=3, tol=0, random_state=0).fit(data())
    assert capsys.readouterr().out.count("iteration") == 3


def test_n_threads_gives_the_same_result():
    X = data()
    one = NMF(5, n_threads=1, random_state=0).fit(X)
    two = NMF(5, n_threads=2, random_state=0).fit(X)
    assert np.array_equal(one.components_, two.components_)


def test_get_feature_names_out():
    model = NMF(3, random_state=0).fit(data())
    assert list(model.get_feature_names_out()) == ["nmf0", "nmf1", "nmf2"]
    mb = MiniBatchNMF(2, random_state=0).fit(data())
    assert list(mb.get_feature_names_out()) == ["minibatchnmf0", "minibatchnmf1"]


@pytest.mark.parametrize("Estimator", [NMF, MiniBatchNMF])
def test_inputs_are_never_modified(Estimator):
    X = data()
    W0, H0 = custom_init(X, 5)
    for a in (X, W0, H0):
        a.flags.writeable = False  # any write would raise
    copies = [a.copy() for a in (X, W0, H0)]
    model = Estimator(5, init="custom")
    model.fit_transform(X, W=W0, H=H0)
    model.transform(X)
    model.inverse_transform(model.transform(X))
    if Estimator is MiniBatchNMF:
        fresh = MiniBatchNMF(5, init="custom")
        fresh.partial_fit(X, W=W0, H=H0)
        fresh.partial_fit(X)
    for a, b in zip((X, W0, H0), copies):
        assert np.array_equal(a, b)


# ------------------------------------------------------------ composition and persistence


def test_clone_and_pickle_round_trip():
    X = data()
    model = NMF(5, solver="anls_bpp", alpha_W=0.01, random_state=0, n_threads=1)
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "components_")
    model.fit(X)
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.components_, model.components_)
    assert np.array_equal(restored.transform(X), model.transform(X))


def test_pickle_loads_in_a_fresh_process(tmp_path):
    X = data()
    models = [NMF(5, random_state=0).fit(X), MiniBatchNMF(5, random_state=0).fit(X)]
    path = tmp_path / "models.pkl"
    np.save(tmp_path / "X.npy", X)
    path.write_bytes(pickle.dumps(models))
    script = (
        "import pickle, sys, numpy as np\n"
        f"models = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"np.save({str(tmp_path / 'W.npy')!r}, np.stack([m.transform(X) for m in models]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env)
    W = np.load(tmp_path / "W.npy")
    for got, model in zip(W, models):
        assert np.array_equal(got, model.transform(X))


def test_pipeline():
    X = data()
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    pipe = make_pipeline(NMF(5, random_state=0), LogisticRegression())
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.7
    assert pipe.named_steps["nmf"].components_.shape == (5, 60)


def test_grid_search_over_n_components():
    X = data(m=150)

    def neg_reconstruction_error(estimator, X_test, y=None):
        return -np.linalg.norm(X_test - estimator.inverse_transform(estimator.transform(X_test)))

    grid = {"n_components": [2, 5, 8]}
    search = GridSearchCV(NMF(random_state=0, max_iter=500), grid, scoring=neg_reconstruction_error, cv=3)
    search.fit(X)
    assert search.best_params_["n_components"] in (5, 8)  # X is rank 5 + noise
    assert list(search.cv_results_["param_n_components"]) == [2, 5, 8]


def test_set_output_pandas():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(data(), columns=[f"f{i}" for i in range(60)])
    for model in (NMF(3, random_state=0), MiniBatchNMF(3, random_state=0)):
        model.set_output(transform="pandas")
        out = model.fit_transform(X)
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(model.get_feature_names_out())
        assert list(model.feature_names_in_) == list(X.columns)
        assert isinstance(model.transform(X), pd.DataFrame)


# ------------------------------------------------------------ MiniBatchNMF


def stream_data():
    X, _, _ = fastnmf.datasets.low_rank(3000, 100, 5, noise=0.1, random_state=0)
    return X


def test_minibatch_partial_fit_stream_reaches_full_batch_error():
    X = stream_data()
    full = NMF(5, random_state=0).fit(X)
    model = MiniBatchNMF(5, random_state=0)
    for _ in range(3):  # three passes over a stream of 100-row chunks
        for start in range(0, X.shape[0], 100):
            model.partial_fit(X[start : start + 100])
    assert model.n_steps_ == 90
    error = np.linalg.norm(X - model.transform(X) @ model.components_)
    assert error <= 1.02 * full.reconstruction_err_
    # scikit-learn's MiniBatchNMF on the same stream, for reference: clearly worse
    theirs = skd.MiniBatchNMF(5, random_state=0)
    for _ in range(3):
        for start in range(0, X.shape[0], 100):
            theirs.partial_fit(X[start : start + 100])
    assert error < np.linalg.norm(X - theirs.transform(X) @ theirs.components_)


def test_minibatch_fit_attributes_and_error():
    X = stream_data()
    full = NMF(5, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MiniBatchNMF(5, batch_size=100, max_iter=30, max_no_improvement=None, tol=0, random_state=0)
        W = model.fit_transform(X)
    assert model.n_steps_ == 900 and model.n_iter_ == 30
    assert W.shape == (3000, 5) and model.components_.shape == (5, 100)
    assert model.reconstruction_err_ == pytest.approx(np.linalg.norm(X - W @ model.components_), rel=1e-9)
    assert model.reconstruction_err_ <= 1.03 * full.reconstruction_err_
    # Frobenius fit_transform is the exact projection on the final components
    assert np.allclose(W, model.transform(X), rtol=1e-12, atol=1e-12)


def test_minibatch_early_stopping():
    X = stream_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MiniBatchNMF(5, batch_size=500, random_state=0).fit(X)
    assert model.n_steps_ < model.max_iter * 6  # stopped on the smoothed cost
    assert model.n_iter_ == int(np.ceil(model.n_steps_ / 6))
    assert model.reconstruction_err_ <= 1.01 * NMF(5, random_state=0).fit(X).reconstruction_err_


@pytest.mark.parametrize("beta_loss", ["kullback-leibler", "itakura-saito", 1.5])
@pytest.mark.parametrize("fresh_restarts", [False, True])
def test_minibatch_other_losses(beta_loss, fresh_restarts):
    X = stream_data()[:400] + 0.01
    kw = dict(n_components=5, batch_size=100, beta_loss=beta_loss, max_iter=10, random_state=0)
    kw.update(fresh_restarts=fresh_restarts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MiniBatchNMF(**kw)
        W = ours.fit_transform(X)
        theirs = skd.MiniBatchNMF(**kw).fit(X)
    assert np.isfinite(W).all() and np.all(W >= 0)
    assert ours.reconstruction_err_ == pytest.approx(
        _beta_divergence(X, W, ours.components_, beta_loss, square_root=True), rel=1e-6
    )
    assert ours.reconstruction_err_ <= 1.1 * theirs.reconstruction_err_
    assert ours.transform(X).shape == (400, 5)


def test_minibatch_penalties_act():
    X = stream_data()[:1000]
    plain = MiniBatchNMF(5, batch_size=200, random_state=0).fit_transform(X)
    sparse_W = MiniBatchNMF(5, batch_size=200, alpha_W=0.5, l1_ratio=1.0, random_state=0).fit_transform(X)
    assert (sparse_W == 0).mean() > (plain == 0).mean() + 0.2


def test_minibatch_partial_fit_after_fit_continues():
    X = stream_data()
    model = MiniBatchNMF(5, batch_size=500, random_state=0).fit(X[:1500])
    steps = model.n_steps_
    model.partial_fit(X[1500:2000])
    assert model.n_steps_ == steps + 1
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:10, :50])
