"""Tests of fastnmf.plotting: every plot renders headless (Agg) into a non-empty PNG."""

import sys

import numpy as np
import pytest

import fastnmf
from fastnmf.datasets import low_rank, swimmer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 2000  # something was drawn


@pytest.fixture(scope="module")
def runs():
    X, _, _ = low_rank(50, 40, 4, noise=0.05, random_state=0)
    return X, [fastnmf.nmf(X, 4, solver=s, max_iter=30) for s in ("hals", "mu", "hals")]


@pytest.fixture(scope="module")
def consensus_result():
    rng = np.random.default_rng(0)
    H = np.kron(np.eye(3), np.ones((1, 10))) + 0.1 * rng.random((3, 30))
    X = rng.random((30, 3)) @ H
    return X, fastnmf.consensus(X, 3, n_runs=5, random_state=0)


def test_plotting_is_a_lazy_submodule():
    import fastnmf.plotting as plotting

    assert fastnmf.plotting is plotting
    assert set(plotting.__all__) == {"convergence", "consensus_map", "rank_survey", "basis_images"}


def test_convergence(plt, runs, tmp_path):
    _, results = runs
    path = tmp_path / "conv.png"
    fig = fastnmf.plotting.convergence(results, path=path)
    assert_png(path)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "seconds"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["hals #1", "mu", "hals #2"]
    assert len(ax.lines) == 3
    # one result, by iteration, into given axes, with labels
    fig2, ax2 = plt.subplots()
    out = fastnmf.plotting.convergence(results[0], x="iteration", labels=["mine"], ax=ax2)
    assert out is fig2 and ax2.get_xlabel() == "iteration"
    line = ax2.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), results[0].history["iteration"])


def test_convergence_errors(plt, runs):
    _, results = runs
    with pytest.raises(ValueError, match="x="):
        fastnmf.plotting.convergence(results, x="time")
    with pytest.raises(ValueError, match="labels"):
        fastnmf.plotting.convergence(results, labels=["a"])
    with pytest.raises(TypeError, match="NMFResult"):
        fastnmf.plotting.convergence([np.ones(3)])


def test_consensus_map(plt, consensus_result, tmp_path):
    _, c = consensus_result
    path = tmp_path / "cmap.png"
    fig = fastnmf.plotting.consensus_map(c, path=path)
    assert_png(path)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (30, 30)
    # a symmetric permutation of the matrix with each cluster one block on the diagonal
    image = np.asarray(image)
    np.testing.assert_array_equal(np.sort(image.ravel()), np.sort(c.matrix.ravel()))
    np.testing.assert_array_equal(np.diag(image), 1.0)
    sorted_labels = np.sort(c.labels)
    block = sorted_labels[:, None] == sorted_labels[None, :]
    assert image[block].mean() > 0.9 > 0.2 > image[~block].mean()


def test_consensus_map_without_matrix_and_subsampled(plt, consensus_result, tmp_path):
    X, _ = consensus_result
    c = fastnmf.consensus(X, 3, n_runs=5, random_state=0, keep_matrix=False)
    assert c.matrix is None
    fig = fastnmf.plotting.consensus_map(c, max_items=12, path=tmp_path / "sub.png")
    assert fig.axes[0].images[0].get_array().shape == (12, 12)
    assert_png(tmp_path / "sub.png")
    with pytest.raises(TypeError, match="ConsensusResult"):
        fastnmf.plotting.consensus_map(np.eye(3))


@pytest.mark.parametrize("method", ["cv", "consensus"])
def test_rank_survey(plt, method, tmp_path):
    X, _, _ = low_rank(40, 30, 3, noise=0.05, random_state=0)
    s = fastnmf.select_rank(X, range(2, 5), method=method, n_runs=2, random_state=0, max_iter=50)
    path = tmp_path / f"{method}.png"
    fig = s.plot(path=path)
    assert_png(path)
    assert len(fig.axes) == (1 if method == "cv" else 2)  # cophenetic on a twin axis
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"best rank {s.best_rank}" in texts
    assert ("held-out error (±1 sd)" in texts) == (method == "cv")
    assert ("cophenetic" in texts) == (method == "consensus")
    fig2, ax = plt.subplots()
    assert fastnmf.plotting.rank_survey(s, ax=ax) is fig2
    with pytest.raises(TypeError, match="RankSelection"):
        fastnmf.plotting.rank_survey(X)


def test_basis_images(plt, tmp_path):
    _, parts = swimmer()
    path = tmp_path / "parts.png"
    fig = fastnmf.plotting.basis_images(parts, (32, 32), n_cols=6, path=path)
    assert_png(path)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 17 and len(fig.axes) == 18  # 3 rows of 6, one left empty
    np.testing.assert_array_equal(shown[3].images[0].get_array(), parts[3].reshape(32, 32))
    # a result works too; a single component as a 1-D array too
    res = fastnmf.nmf(parts, 2, max_iter=5)
    assert len([a for a in fastnmf.plotting.basis_images(res, (32, 32)).axes if a.images]) == 2
    assert len(fastnmf.plotting.basis_images(parts[0], (32, 32)).axes) == 1


def test_basis_images_errors(plt):
    _, parts = swimmer()
    with pytest.raises(ValueError, match="shape"):
        fastnmf.plotting.basis_images(parts, (30, 30))
    with pytest.raises(TypeError, match="shape"):
        fastnmf.plotting.basis_images(parts, 1024)
    with pytest.raises(ValueError, match="n_cols"):
        fastnmf.plotting.basis_images(parts, (32, 32), n_cols=0)


def test_missing_matplotlib_names_the_extra(monkeypatch, runs):
    _, results = runs
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install fastnmf\[plot\]"):
        fastnmf.plotting.convergence(results)
    with pytest.raises(ImportError, match=r"fastnmf\[plot\]"):
        fastnmf.plotting.basis_images(np.ones((2, 4)), (2, 2))
