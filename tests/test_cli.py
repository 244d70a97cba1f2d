"""Tests of the command line: ``fastnmf demo``, ``fastnmf fit`` and their error paths."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import fastnmf
import pytest
import scipy.sparse as sp

from fastnmf.cli import main, read_matrix, recovered_parts
from fastnmf.datasets import low_rank, swimmer

REPO = Path(__file__).resolve().parents[1]


def _single_error_line(err):
    """The stderr of a failed run: exactly one 'fastnmf: error:' line, no traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastnmf: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def exact():
    """An exactly rank-3 non-negative matrix."""
    X, _, _ = low_rank(30, 20, 3, random_state=0)
    return X


# --- demo -----------------------------------------------------------------------------------


def test_demo_recovers_the_swimmer_parts(capsys):
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    match = re.search(r"recovered (\d+) of 17 parts", out)
    assert match, out
    assert int(match.group(1)) >= 15
    assert "relative error" in out and "iterations" in out and "stopped by" in out
    assert "Traceback" not in err


def test_demo_options(capsys):
    argv = [
        "demo",
        "--rank",
        "17",
        "--solver",
        "hals",
        "--max-iter",
        "3",
        "--seed",
        "1",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert re.search(r"\b3 iterations", out)


def test_demo_bad_solver(capsys):
    assert main(["demo", "--solver", "nope"]) == 1
    assert "nope" in _single_error_line(capsys.readouterr().err)


def test_recovered_parts():
    _, parts = swimmer()
    assert recovered_parts(parts, parts).all()
    H = parts[:5] * 3.0
    H[0] += 0.01 * parts[5]  # still a torso
    np.testing.assert_array_equal(recovered_parts(H, parts), np.arange(17) < 5)
    assert not recovered_parts(np.zeros((17, 1024)), parts).any()


def test_python_dash_m(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # One thread: the in-process demo test already covers the default; this one checks
    # the entry point, and stays cheap on a busy machine.
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "fastnmf", "demo"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"recovered \d+ of 17 parts", proc.stdout)


# --- fit ------------------------------------------------------------------------------------


def _write(path, X):
    ext = path.suffix
    if ext == ".npy":
        np.save(path, X)
    elif ext == ".csv":
        np.savetxt(path, X, delimiter=",", fmt="%.17g")
    elif ext == ".tsv":
        np.savetxt(path, X, delimiter="\t", fmt="%.17g")
    elif ext == ".npz":
        np.savez(path, X=X, labels=np.arange(X.shape[0]))
    return path


@pytest.mark.parametrize("ext", [".npy", ".csv", ".tsv", ".npz"])
def test_fit_round_trip(tmp_path, capsys, exact, ext):
    path = _write(tmp_path / f"data{ext}", exact)
    argv = [
        str(path),
        "--rank",
        "3",
        "--tol",
        "1e-10",
        "--max-iter",
        "1000",
        "--seed",
        "0",
        "--threads",
        "1",
    ]
    assert main(["fit", *argv]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and "relative error" in out
    result = tmp_path / "data.nmf.npz"
    assert str(result) in out
    with np.load(result, allow_pickle=False) as f:
        W, H = f["W"], f["H"]
        assert W.shape == (30, 3) and H.shape == (3, 20)
        np.testing.assert_allclose(W @ H, exact, rtol=0, atol=1e-3 * np.abs(exact).max())
        assert f["relative_error"] < 1e-3
        assert str(f["solver"]) == "hals" and str(f["loss"]) == "frobenius"
        assert int(f["n_iter"]) >= 1 and float(f["seconds"]) >= 0
        assert str(f["stop_reason"]) in ("tol", "target_error", "max_iter")
        assert np.isfinite(float(f["objective"]))


def test_fit_single_array_npz_out_and_options(tmp_path, capsys, exact):
    path = tmp_path / "single.npz"
    np.savez(path, exact)  # stored as arr_0
    out_path = tmp_path / "sub" / "result.npz"
    out_path.parent.mkdir()
    argv = [
        "fit",
        str(path),
        "-k",
        "2",
        "--solver",
        "mu",
        "--loss",
        "kl",
        "--init",
        "random",
        "--max-iter",
        "5",
        "--tol",
        "0",
        "--seed",
        "3",
        "--out",
        str(out_path),
    ]
    assert main(argv) == 0
    with np.load(out_path, allow_pickle=False) as f:
        assert f["W"].shape == (30, 2) and f["H"].shape == (2, 20)
        assert str(f["solver"]) == "mu" and str(f["loss"]) == "kl"
        assert int(f["n_iter"]) == 5 and str(f["stop_reason"]) == "max_iter"


def test_read_matrix_csv_single_row(tmp_path):
    path = tmp_path / "row.csv"
    path.write_text("1,2,3\n")
    assert read_matrix(path).shape == (1, 3)


def test_fit_sparse_npz(tmp_path, capsys):
    X, _, _ = low_rank(30, 20, 2, sparse_density=0.5, random_state=0)
    path = tmp_path / "sparse.npz"
    sp.save_npz(path, X)
    assert sp.issparse(read_matrix(path))
    assert main(["fit", str(path), "--rank", "2", "--max-iter", "50"]) == 0
    with np.load(tmp_path / "sparse.nmf.npz") as f:
        W, H = f["W"], f["H"]
    assert W.shape == (30, 2) and H.shape == (2, 20)
    dense = fastnmf.nmf(X.toarray(), 2, max_iter=50)
    np.testing.assert_allclose(W @ H, dense.W @ dense.H, rtol=1e-6, atol=1e-9)


def test_fit_matrix_market(tmp_path, capsys, exact):
    import scipy.io

    path = tmp_path / "data.mtx"
    scipy.io.mmwrite(path, exact)  # dense array format
    assert main(["fit", str(path), "--rank", "3", "--max-iter", "5"]) == 0
    with np.load(tmp_path / "data.nmf.npz") as f:
        assert f["W"].shape == (30, 3)


# --- error paths ----------------------------------------------------------------------------


def _bad_inputs(tmp_path):
    yield "missing file", [str(tmp_path / "missing.npy"), "--rank", "2"], "missing.npy"
    unknown = tmp_path / "data.txt"
    unknown.write_text("1 2\n3 4\n")
    yield "unknown extension", [str(unknown), "--rank", "1"], "extension"
    text = tmp_path / "text.csv"
    text.write_text("a,b\n1,2\n")
    yield "non-numeric csv", [str(text), "--rank", "1"], "text.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    yield "empty csv", [str(empty), "--rank", "1"], "empty.csv"
    several = tmp_path / "several.npz"
    np.savez(several, a=np.ones((3, 3)), b=np.ones((3, 3)))
    yield "npz without X", [str(several), "--rank", "1"], "'X'"
    good = tmp_path / "good.npy"
    np.save(good, np.ones((4, 3)))
    yield "rank 0", [str(good), "--rank", "0"], "rank"
    yield "negative rank", [str(good), "--rank", "-2"], "rank"
    yield "rank too large", [str(good), "--rank", "5"], "rank"
    yield "unknown solver", [str(good), "--rank", "1", "--solver", "magic"], "magic"
    yield "unknown loss", [str(good), "--rank", "1", "--loss", "l7"], "l7"
    yield "unknown init", [str(good), "--rank", "1", "--init", "zeros"], "zeros"
    yield "hals with kl", [str(good), "--rank", "1", "--loss", "kl"], "mu"
    nowhere = str(tmp_path / "no" / "o.npz")
    yield "bad output dir", [str(good), "--rank", "1", "--out", nowhere], "o.npz"
    negative = tmp_path / "negative.npy"
    np.save(negative, -np.ones((4, 3)))
    yield "negative data", [str(negative), "--rank", "1"], "negative"
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones(5))
    yield "1-D data", [str(flat), "--rank", "1"], "2-D"
    obj = tmp_path / "object.npy"
    np.save(obj, np.array([[{}, 1]], dtype=object))
    yield "pickled npy", [str(obj), "--rank", "1"], "object.npy"
    yield "a directory", [str(tmp_path), "--rank", "1"], "directory"


def test_fit_errors(tmp_path, capsys):
    for label, argv, fragment in _bad_inputs(tmp_path):
        assert main(["fit", *argv]) == 1, label
        out, err = capsys.readouterr()
        line = _single_error_line(err)
        assert fragment in line, (label, line)
        assert out == "", label


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["fit"],
        ["fit", "x.npy"],
        ["fit", "x.npy", "--rank", "two"],
        ["fit", "x.npy", "--rank", "2", "--tol", "small"],
        ["fit", "x.npy", "--rank", "2", "--seed", "-5"],
        ["demo", "--seed", "x"],
        ["demo", "--seed", "-1"],
        ["demo", "--bogus"],
    ],
)
def test_usage_errors(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("usage: fastnmf")
    assert re.search(r"^fastnmf( \w+)?: error: ", err, re.MULTILINE)


def test_help(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["fit", "--help"]) == 0
    assert "--rank" in capsys.readouterr().out


# --- rank -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rank3_file(tmp_path_factory):
    """Planted rank-3 data with zero-mean noise, saved as .npy."""
    rng = np.random.default_rng(0)
    WH = rng.exponential(size=(50, 3)) @ rng.exponential(size=(3, 40))
    X = np.maximum(WH + 0.05 * WH.std() * rng.standard_normal(WH.shape), 0)
    path = tmp_path_factory.mktemp("rank") / "rank3.npy"
    np.save(path, X)
    return path


def _table_lines(out):
    return [line for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]


def test_rank_cv_prints_the_table_and_the_best_rank(capsys, rank3_file):
    assert main(["rank", str(rank3_file), "--ranks", "1:5", "--seed", "0", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert "method cv (3 splits per rank, holdout 0.05)" in lines[0]
    header = ["rank", "rel_error", "cv_error", "cv_std", "cophenetic", "dispersion", "seconds"]
    assert lines[1].split() == header
    rows = _table_lines(out)
    assert [int(r.split()[0]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(r.split()[4] == "-" for r in rows)  # no cophenetic for cv
    assert re.search(r"^best rank: 3 \(", lines[-1])


def test_rank_consensus_and_options(capsys, rank3_file):
    argv = ["rank", str(rank3_file), "--ranks", "2,3,4", "--method", "consensus", "--runs", "4",
            "--seed", "1", "--max-iter", "30"]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "method consensus (4 runs per rank)" in out
    rows = _table_lines(out)
    assert len(rows) == 3 and all(r.split()[2] == "-" and r.split()[4] != "-" for r in rows)
    assert re.search(r"^best rank: [234] \(", out.splitlines()[-1])


def test_rank_warm_start_step_and_plot(capsys, rank3_file, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "survey.png"
    argv = ["rank", str(rank3_file), "--ranks", "2:6:2", "--warm-start", "--runs", "2",
            "--holdout", "0.1", "--seed", "0", "--plot", str(plot)]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "warm-started" in out and "holdout 0.1" in out
    assert [int(r.split()[0]) for r in _table_lines(out)] == [2, 4, 6]
    assert f"plot -> {plot}" in out
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 2000


def test_demo_plot_writes_the_parts_image(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "parts.png"
    assert main(["demo", "--max-iter", "30", "--plot", str(plot)]) == 0
    out, _ = capsys.readouterr()
    assert f"-> {plot}" in out
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 2000


def test_plot_without_matplotlib_is_one_error_line(capsys, rank3_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["rank", str(rank3_file), "--ranks", "2:3", "--plot", str(tmp_path / "p.png")]) == 1
    line = _single_error_line(capsys.readouterr().err)
    assert "fastnmf[plot]" in line
    assert main(["demo", "--plot", str(tmp_path / "p.png")]) == 1
    assert "fastnmf[plot]" in _single_error_line(capsys.readouterr().err)


def test_rank_errors(capsys, rank3_file, tmp_path):
    cases = [
        (["--ranks", "2:60"], "min(m, n)=40"),
        (["--ranks", "0:3"], ">= 1"),
        (["--ranks", "2:4", "--holdout", "1.5"], "holdout"),
        (["--ranks", "2:4", "--method", "consensus", "--warm-start"], "warm_start"),
        (["--ranks", "2:4", "--runs", "0"], "n_runs"),
        (["--ranks", "2:4", "--solver", "magic"], "magic"),
        (["--ranks", "2:4", "--plot", str(tmp_path / "no" / "p.png")], "no such directory"),
    ]
    for extra, fragment in cases:
        assert main(["rank", str(rank3_file), *extra]) == 1, extra
        out, err = capsys.readouterr()
        assert fragment in _single_error_line(err), (extra, err)
        assert out == "", extra
    assert main(["rank", str(tmp_path / "missing.npy"), "--ranks", "2:3"]) == 1
    assert "missing.npy" in _single_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv",
    [
        ["rank", "x.npy"],
        ["rank", "x.npy", "--ranks", "5:2"],
        ["rank", "x.npy", "--ranks", "a:b"],
        ["rank", "x.npy", "--ranks", "1:2:3:4"],
        ["rank", "x.npy", "--ranks", "2:6:0"],
        ["rank", "x.npy", "--ranks", ","],
        ["rank", "x.npy", "--ranks", "2:4", "--method", "aic"],
    ],
)
def test_rank_usage_errors(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fastnmf rank") and "Traceback" not in err
