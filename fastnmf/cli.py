"""The ``fastnmf`` command line (``python -m fastnmf`` is the same program).

Subcommands
-----------
``fastnmf demo``
    Factor the swimmer data set and report how many of its 17 parts were recovered.
``fastnmf fit FILE --rank K``
    Factor a matrix read from ``.npy``, ``.npz``, ``.csv``, ``.tsv`` or ``.mtx`` and save
    the factors to an ``.npz`` file.
``fastnmf rank FILE --ranks 2:12``
    Survey ranks by cross-validation or consensus (``fastnmf.select_rank``), print the
    table and the best rank, optionally plot it.

Errors in the input print one line ``fastnmf: error: <message>`` on stderr and exit with
status 1; usage errors keep argparse's format and exit with status 2.
"""

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

PROG = "fastnmf"

# The embedded demo: rank-17 HALS on the swimmer images. Their exact factorization is not
# unique (the torso is in every image, so it can be shared out among the positions of any
# limb), and an unpenalised fit lands on an arbitrary exact factorization in which most
# limbs carry a ghost of the torso. A little sparsity on H (with ridge on W to pin the
# scale) makes the clean parts the lowest objective; random restarts, the best kept,
# escape the local minima that lose a limb position. Measured on seeds 0-19 (ten
# restarts each): all 17 parts recovered for 19 seeds with l1_H = 0.01 (the other one
# finds 16); before half-steps kept dropped components, 18 with 0.01, 17 with 0.02, 15
# with 0.05 and 10 with 0.1 (the others find 13: one limb lost). NNDSVD inits never do.
DEMO_RANK = 17
DEMO_SOLVER = "hals"
DEMO_OPTIONS = dict(init="random", n_init=10, tol=1e-4, l1_H=0.01, l2_W=0.2)
DEMO_MAX_ITER = 2000
DEMO_SEED = 0
RECOVERY_COSINE = 0.9

READABLE = (".npy", ".npz", ".csv", ".tsv", ".mtx")


class CLIError(Exception):
    """An error to report to the user as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors raise instead of exiting the interpreter."""

    def exit(self, status=0, message=None):
        if message:
            self._print_message(message, sys.stderr)
        raise _ParserExit(status)


class _ParserExit(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


def _int(text):
    """argparse type: an integer (the library checks its bounds)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}") from None


def _seed(text):
    """argparse type: a non-negative integer seed."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be a non-negative integer, got {value}")
    return value


def _loss(text):
    """argparse type: a loss name, or a float beta."""
    try:
        return float(text)
    except ValueError:
        return text


def _ranks(text):
    """argparse type: 'A:B' (inclusive), 'A:B:STEP' or a comma list 'A,B,C' of ranks."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            if step < 1 or stop < start:
                raise ValueError
            return list(range(start, stop + 1, step))
        values = [int(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid ranks {text!r}: use 'A:B' (A to B inclusive, A <= B), 'A:B:STEP' or "
            "a list like '2,4,8'"
        ) from None


def build_parser():
    """The argument parser of the ``fastnmf`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(
        prog=PROG,
        description="Fast non-negative matrix factorization (NMF).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="factor the swimmer images and report the parts found",
        description=(
            "Factor the 256 swimmer images (Donoho & Stodden 2003) and report how many "
            "of the 17 ground-truth parts (torso and 16 limb positions) were recovered: a "
            f"part counts when some row of H has cosine similarity > {RECOVERY_COSINE} "
            "with it."
        ),
    )
    demo.add_argument(
        "--rank", type=_int, default=DEMO_RANK, help=f"number of components (default {DEMO_RANK})"
    )
    demo.add_argument(
        "--solver",
        default=DEMO_SOLVER,
        help=f"NMF solver, one of fastnmf.SOLVERS (default {DEMO_SOLVER})",
    )
    demo.add_argument(
        "--max-iter",
        type=_int,
        default=DEMO_MAX_ITER,
        help=f"maximum outer iterations per run (default {DEMO_MAX_ITER})",
    )
    demo.add_argument(
        "--seed", type=_seed, default=DEMO_SEED, help=f"random seed (default {DEMO_SEED})"
    )
    demo.add_argument(
        "--threads",
        type=_int,
        default=None,
        help="threads for the kernels and BLAS (default: all cores)",
    )
    demo.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="write the components found (rows of H) as 32x32 images to this file "
        "(needs matplotlib: pip install fastnmf[plot])",
    )
    demo.set_defaults(run=run_demo)

    fit = commands.add_parser(
        "fit",
        help="factor a matrix read from a file and save W and H",
        description=(
            "Factor the matrix in FILE (.npy; .npz holding one array, or the array 'X', "
            "or a scipy.sparse matrix; .csv/.tsv of numbers without a header; Matrix "
            "Market .mtx) as X ~ W @ H and save the result to an .npz file."
        ),
    )
    fit.add_argument("file", metavar="FILE", help="the data matrix, samples x features")
    fit.add_argument("--rank", "-k", type=_int, required=True, help="number of components")
    fit.add_argument("--solver", default="hals", help="one of fastnmf.SOLVERS (default hals)")
    fit.add_argument(
        "--loss",
        type=_loss,
        default="frobenius",
        help="'frobenius', 'kl', 'itakura-saito' or a beta (default frobenius)",
    )
    fit.add_argument(
        "--init",
        default="nndsvda",
        help="'nndsvd', 'nndsvda', 'nndsvdar' or 'random' (default nndsvda)",
    )
    fit.add_argument(
        "--max-iter", type=_int, default=200, help="maximum outer iterations (default 200)"
    )
    fit.add_argument(
        "--tol",
        type=float,
        default=1e-4,
        help="relative objective decrease to stop at (default 1e-4)",
    )
    fit.add_argument("--seed", type=_seed, default=None, help="random seed")
    fit.add_argument(
        "--out",
        "-o",
        metavar="OUT.npz",
        default=None,
        help="output file (default: FILE's stem + .nmf.npz, next to FILE)",
    )
    fit.add_argument(
        "--threads",
        type=_int,
        default=None,
        help="threads for the kernels and BLAS (default: all cores)",
    )
    fit.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    fit.set_defaults(run=run_fit)

    rank = commands.add_parser(
        "rank",
        help="survey a range of ranks and print the best one",
        description=(
            "Survey the ranks of FILE (read as for 'fit') with fastnmf.select_rank: by "
            "cross-validation (hide a fraction of the entries, fit the rest, score the "
            "hidden ones; the same splits for every rank) or by consensus clustering "
            "over random restarts (cophenetic correlation, Brunet et al. 2004). Prints "
            "one line per rank and the best rank."
        ),
    )
    rank.add_argument("file", metavar="FILE", help="the data matrix, samples x features")
    rank.add_argument(
        "--ranks",
        type=_ranks,
        required=True,
        metavar="RANKS",
        help="ranks to try: 'A:B' (A to B inclusive), 'A:B:STEP', or a list '2,4,8'",
    )
    rank.add_argument(
        "--method", choices=("cv", "consensus"), default="cv", help="selection method (default cv)"
    )
    rank.add_argument(
        "--runs",
        type=_int,
        default=None,
        help="cv splits or consensus runs per rank (default 3 for cv, 30 for consensus)",
    )
    rank.add_argument(
        "--holdout",
        type=float,
        default=0.05,
        help="fraction of entries held out per cv split (default 0.05)",
    )
    rank.add_argument("--solver", default="hals", help="one of fastnmf.SOLVERS (default hals)")
    rank.add_argument(
        "--max-iter", type=_int, default=200, help="maximum outer iterations per fit (default 200)"
    )
    rank.add_argument(
        "--warm-start",
        action="store_true",
        help="cv: start each rank from the previous rank's factors plus a new component",
    )
    rank.add_argument("--seed", type=_seed, default=None, help="random seed")
    rank.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="write the survey plot to this file (needs matplotlib: pip install fastnmf[plot])",
    )
    rank.add_argument(
        "--threads",
        type=_int,
        default=None,
        help="threads for the kernels and BLAS (default: all cores)",
    )
    rank.set_defaults(run=run_rank)
    return parser


def main(argv=None):
    """Run the ``fastnmf`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the input or a computation failed (one line
        ``fastnmf: error: ...`` on stderr), 2 for usage errors.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _ParserExit as exc:
        return exc.status if isinstance(exc.status, int) else 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.run(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except (CLIError, ValueError, TypeError, OSError) as exc:
        _error(str(exc) or type(exc).__name__)
        return 1
    except Exception as exc:  # never a traceback on the command line
        _error(f"unexpected {type(exc).__name__}: {exc}")
        return 1


def _one_line(message):
    return " ".join(str(message).split())


def _error(message):
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)


def _version():
    from . import __version__

    return __version__


# --- demo ---------------------------------------------------------------------------------


def recovered_parts(H, parts, threshold=RECOVERY_COSINE):
    """Which ground-truth parts some row of ``H`` matches.

    Parameters
    ----------
    H : ndarray of shape (k, n)
        Components, one per row.
    parts : ndarray of shape (p, n)
        Ground-truth parts, one per row.
    threshold : float, default=0.9
        A part is recovered when its cosine similarity with some row of ``H`` exceeds this.

    Returns
    -------
    ndarray of shape (p,), bool
        True for the recovered parts. With disjoint parts and ``threshold >= 1/sqrt(2)``
        no row of ``H`` can match two parts.
    """
    H = np.asarray(H, dtype=np.float64)
    parts = np.asarray(parts, dtype=np.float64)
    h_norms = np.linalg.norm(H, axis=1)
    p_norms = np.linalg.norm(parts, axis=1)
    h_norms[h_norms == 0] = 1.0
    p_norms[p_norms == 0] = 1.0
    cosine = (parts / p_norms[:, None]) @ (H / h_norms[:, None]).T
    return cosine.max(axis=1, initial=-1.0) > threshold


def run_demo(args):
    """``fastnmf demo``: factor the swimmer set and report the recovered parts."""
    from .datasets import swimmer
    from .nmf import nmf

    if args.plot is not None:
        _require_matplotlib(args.plot)
    X, parts = swimmer()
    print(
        f"swimmer: {X.shape[0]} images of 32x32 pixels, {parts.shape[0]} ground-truth parts "
        "(torso and 4 limbs x 4 positions)"
    )
    res = nmf(
        X,
        args.rank,
        solver=args.solver,
        max_iter=args.max_iter,
        random_state=args.seed,
        n_threads=args.threads,
        **DEMO_OPTIONS,
    )
    found = recovered_parts(res.H, parts)
    settings = ", ".join(f"{key}={value!r}" for key, value in DEMO_OPTIONS.items())
    print(f"nmf(X, {res.rank}, solver={res.solver!r}, {settings}, random_state={args.seed})")
    print(
        f"relative error {res.relative_error:.3g}, {res.seconds:.3f} s, {res.n_iter} "
        f"iterations (best of {DEMO_OPTIONS['n_init']} runs), stopped by {res.stop_reason}"
    )
    print(
        f"recovered {int(found.sum())} of {parts.shape[0]} parts "
        f"(cosine similarity > {RECOVERY_COSINE})"
    )
    if args.plot is not None:
        from .plotting import basis_images

        _write_figure(basis_images(res, (32, 32)), args.plot)
        print(f"components (rows of H) as 32x32 images -> {os.fspath(args.plot)}")
    return 0


def _require_matplotlib(path):
    """Fail before any work when --plot is asked for without matplotlib, or into a
    directory that does not exist."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise CLIError(f"cannot write {os.fspath(path)!r}: no such directory {os.fspath(parent)!r}")
    try:
        import matplotlib
    except ImportError:
        raise CLIError(
            "--plot needs matplotlib, which is not installed: pip install fastnmf[plot]"
        ) from None
    matplotlib.use("Agg")  # files only: never open a window


def _write_figure(fig, path):
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or _one_line(exc)
        raise CLIError(f"cannot write {os.fspath(path)!r}: {reason}") from exc
    finally:
        plt.close(fig)


# --- fit ----------------------------------------------------------------------------------


def read_matrix(path):
    """Read a data matrix from a file, choosing the reader by its extension.

    Parameters
    ----------
    path : str or path-like
        ``.npy``; ``.npz`` (a dense array: the only one in the file or the one named
        ``X``; or a matrix saved by ``scipy.sparse.save_npz``); ``.csv`` / ``.tsv`` (numbers
        only, no header); ``.mtx`` (Matrix Market).

    Returns
    -------
    ndarray or scipy.sparse matrix

    Raises
    ------
    CLIError
        If the extension is not supported or the file cannot be read or parsed.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if path.is_dir():
        raise CLIError(f"cannot read {str(path)!r}: it is a directory")
    if ext not in READABLE:
        raise CLIError(
            f"cannot read {str(path)!r}: unsupported file extension {ext or '(none)'!r}; "
            f"use one of {', '.join(READABLE)}"
        )
    if not path.exists():
        raise CLIError(f"cannot read {str(path)!r}: no such file")
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext in (".csv", ".tsv"):
            delimiter = "," if ext == ".csv" else "\t"
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # an empty file is an error, not a warning
                return np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=np.float64)
        if ext == ".mtx":
            import scipy.io

            return scipy.io.mmread(path)
        return _read_npz(path)
    except CLIError:
        raise
    except Exception as exc:
        reason = _one_line(exc) or type(exc).__name__
        raise CLIError(f"cannot read {str(path)!r}: {reason}") from exc


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if {"format", "shape"} <= set(keys) and ("data" in keys):
            import scipy.sparse as sp

            return sp.load_npz(path)
        if not keys:
            raise CLIError(f"cannot read {str(path)!r}: the archive holds no arrays")
        if len(keys) == 1:
            return archive[keys[0]]
        if "X" in keys:
            return archive["X"]
        raise CLIError(
            f"cannot read {str(path)!r}: it holds several arrays ({', '.join(keys)}); "
            "name the data matrix 'X'"
        )


def _default_out(path):
    path = Path(path)
    return path.with_name(path.stem + ".nmf.npz")


def run_fit(args):
    """``fastnmf fit``: factor the matrix in a file and save the result."""
    X = read_matrix(args.file)

    from .nmf import nmf

    out = Path(args.out) if args.out is not None else _default_out(args.file)
    res = nmf(
        X,
        args.rank,
        solver=args.solver,
        loss=args.loss,
        init=args.init,
        tol=args.tol,
        max_iter=args.max_iter,
        random_state=args.seed,
        progress=args.progress,
        n_threads=args.threads,
    )
    try:
        with open(out, "wb") as handle:
            np.savez(
                handle,
                W=res.W,
                H=res.H,
                relative_error=res.relative_error,
                objective=res.objective,
                n_iter=res.n_iter,
                seconds=res.seconds,
                solver=str(res.solver),
                loss=str(res.loss),
                rank=res.rank,
                stop_reason=str(res.stop_reason),
                converged=bool(res.converged),
                history=np.asarray(res.history),
            )
    except OSError as exc:
        raise CLIError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from exc
    m, n = X.shape
    print(
        f"{args.file}: {m}x{n}, rank {res.rank}, {res.solver}/{res.loss}: relative error "
        f"{res.relative_error:.4g}, {res.n_iter} iterations ({res.stop_reason}), "
        f"{res.seconds:.3f} s -> {os.fspath(out)}"
    )
    return 0


# --- rank ---------------------------------------------------------------------------------


def run_rank(args):
    """``fastnmf rank``: survey ranks with select_rank, print the table and the best rank."""
    if args.plot is not None:
        _require_matplotlib(args.plot)
    X = read_matrix(args.file)

    from .selection import select_rank

    runs = args.runs if args.runs is not None else (3 if args.method == "cv" else 30)
    kwargs = dict(
        method=args.method,
        n_runs=runs,
        random_state=args.seed,
        warm_start=args.warm_start,
        solver=args.solver,
        max_iter=args.max_iter,
        n_threads=args.threads,
    )
    if args.method == "cv":
        kwargs["holdout"] = args.holdout
    s = select_rank(X, args.ranks, **kwargs)
    m, n = X.shape
    unit = "splits" if args.method == "cv" else "runs"
    extra = f", holdout {args.holdout:g}" if args.method == "cv" else ""
    warm = ", warm-started" if s.warm_start else ""
    print(
        f"{args.file}: {m}x{n}, method {s.method} ({runs} {unit} per rank{extra}{warm}), "
        f"solver {args.solver}"
    )
    print(s.format_table())
    print(f"best rank: {s.best_rank} ({s.rule})")
    if args.plot is not None:
        _write_figure(s.plot(), args.plot)
        print(f"plot -> {os.fspath(args.plot)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
