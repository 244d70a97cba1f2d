"""Plots for judging NMF runs and choosing the rank (matplotlib, the ``plot`` extra).

matplotlib is imported inside each function, so ``import fastnmf.plotting`` costs
nothing and fastnmf works without it; a function called without matplotlib raises an
ImportError that says how to install it. Every function returns the matplotlib
``Figure``, draws into ``ax=`` when given (a new figure otherwise, made with
``matplotlib.pyplot`` so that ``plt.show()`` displays it) and saves a PNG (or any format
matplotlib infers from the suffix) when ``path=`` is given.

- :func:`convergence`: relative error against time or iteration, several runs on one axis;
- :func:`consensus_map`: a consensus matrix reordered by its consensus clusters;
- :func:`rank_survey`: held-out error and cophenetic correlation against the rank;
- :func:`basis_images`: the components of image data (rows of H) as a grid of images.
"""

import math

import numpy as np

__all__ = ["convergence", "consensus_map", "rank_survey", "basis_images"]


def _pyplot():
    """``matplotlib.pyplot``, or an ImportError naming the extra to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "fastnmf.plotting needs matplotlib, which is not installed: "
            "pip install fastnmf[plot] (or pip install matplotlib)."
        ) from exc
    return plt


def _figure_and_axes(ax, figsize):
    plt = _pyplot()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _save(fig, path, dpi=100):
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def convergence(results, x="seconds", labels=None, *, ax=None, path=None):
    """Relative error of one or several runs against time or iteration (log y).

    Parameters
    ----------
    results : NMFResult or sequence of NMFResult
        Runs whose ``history`` to draw, one line each.
    x : {"seconds", "iteration"}
        The horizontal axis: wall time since the start of the run, or the iteration.
    labels : sequence of str, optional
        One legend entry per result; by default the solver (and loss, when not
        Frobenius) of each, numbered when several share one.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.
    path : str or path-like, optional
        Save the figure there (PNG by default).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import fastnmf, fastnmf.plotting
    >>> X, _, _ = fastnmf.datasets.low_rank(100, 80, 5, noise=0.01, random_state=0)
    >>> runs = [fastnmf.nmf(X, 5, solver=s) for s in ("hals", "mu")]
    >>> fig = fastnmf.plotting.convergence(runs, x="iteration")
    """
    if x not in ("seconds", "iteration"):
        raise ValueError(f"x={x!r} is not supported; choose 'seconds' or 'iteration'.")
    if hasattr(results, "history"):
        results = [results]
    results = list(results)
    if not results or not all(hasattr(r, "history") for r in results):
        raise TypeError("results must be an NMFResult or a non-empty sequence of NMFResult.")
    if labels is None:
        labels = _default_labels(results)
    elif len(labels) != len(results):
        raise ValueError(
            f"labels has {len(labels)} entries; expected {len(results)}, one per result."
        )
    fig, ax = _figure_and_axes(ax, (6, 4))
    for res, label in zip(results, labels):
        h = res.history
        y = np.asarray(h["relative_error"], dtype=float)
        xs = np.asarray(h[x], dtype=float)
        positive = y > 0  # an exact fit (0) has no place on a log axis
        ax.plot(xs[positive], y[positive], marker="." if len(y) < 50 else None, label=str(label))
    ax.set_yscale("log")
    ax.set_xlabel("seconds" if x == "seconds" else "iteration")
    ax.set_ylabel("relative error ‖X − WH‖ / ‖X‖")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _default_labels(results):
    names = []
    for res in results:
        name = str(res.solver)
        if res.loss not in ("frobenius", 2.0):
            name += f" / {res.loss}"
        names.append(name)
    counts = {}
    out = []
    for name in names:
        if names.count(name) > 1:
            counts[name] = counts.get(name, 0) + 1
            out.append(f"{name} #{counts[name]}")
        else:
            out.append(name)
    return out


def consensus_map(c, *, ax=None, path=None, cmap="viridis", max_items=2000):
    """The consensus matrix of a :func:`fastnmf.consensus` result, reordered so that
    each consensus cluster is one block on the diagonal.

    Items are sorted by consensus label, and within a cluster by their order in the
    average-linkage tree, so a stable clustering shows as bright square blocks on a dark
    background.

    Parameters
    ----------
    c : ConsensusResult
        With ``keep_matrix=False`` (``c.matrix`` is None) the matrix is rebuilt from
        ``c.run_labels``.
    ax : matplotlib.axes.Axes, optional
    path : str or path-like, optional
    cmap : str
        Colour map of the frequencies 0 to 1.
    max_items : int
        With more items than this, an evenly spaced subset of the reordered items is
        drawn (a picture cannot show more anyway).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not hasattr(c, "run_labels") or not hasattr(c, "labels"):
        raise TypeError("c must be a ConsensusResult returned by fastnmf.consensus.")
    _pyplot()
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    labels = np.asarray(c.labels)
    n = labels.size
    if c.matrix is not None and n <= max_items:
        items, matrix = np.arange(n), c.matrix
    else:
        items = np.arange(n) if n <= max_items else np.sort(
            np.random.default_rng(0).choice(n, size=max_items, replace=False)
        )
        matrix = c.matrix[np.ix_(items, items)] if c.matrix is not None else c.connectivity(items)
    sub = labels[items]
    if matrix.shape[0] > 1:
        d = squareform(1.0 - matrix, checks=False)
        np.maximum(d, 0.0, out=d)
        leaf_rank = np.empty(matrix.shape[0], dtype=np.int64)
        leaf_rank[leaves_list(linkage(d, method="average"))] = np.arange(matrix.shape[0])
    else:
        leaf_rank = np.zeros(1, dtype=np.int64)
    order = np.lexsort((leaf_rank, sub))
    fig, ax = _figure_and_axes(ax, (5.5, 4.5))
    image = ax.imshow(
        matrix[np.ix_(order, order)], vmin=0, vmax=1, cmap=cmap, interpolation="nearest"
    )
    fig.colorbar(image, ax=ax, label="fraction of runs clustered together")
    bounds = np.flatnonzero(np.diff(sub[order])) + 0.5
    for b in bounds:
        ax.axhline(b, color="white", linewidth=0.8)
        ax.axvline(b, color="white", linewidth=0.8)
    what = "columns" if c.axis == "columns" else "rows"
    ax.set_xlabel(f"{what} (sorted by consensus cluster)")
    ax.set_ylabel(what)
    ax.set_title(
        f"rank {c.rank}, {c.n_runs} runs: cophenetic {c.cophenetic:.3f}, "
        f"dispersion {c.dispersion:.3f}"
    )
    return _save(fig, path)


def rank_survey(s, *, ax=None, path=None):
    """Held-out error (with ±1 standard deviation over splits) and the cophenetic
    correlation against the rank, on twin y axes, with the chosen rank marked.

    Parameters
    ----------
    s : RankSelection
        From :func:`fastnmf.select_rank`. Fields that are NaN (cophenetic for cv,
        held-out error for consensus) are not drawn; the training relative error is
        drawn dashed on the error axis.
    ax : matplotlib.axes.Axes, optional
        Axes for the error curves; the cophenetic axis is its twin.
    path : str or path-like, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not hasattr(s, "table") or not hasattr(s, "best_rank"):
        raise TypeError("s must be a RankSelection returned by fastnmf.select_rank.")
    t = s.table
    ranks = np.asarray(t["rank"])
    own_figure = ax is None
    fig, ax = _figure_and_axes(ax, (6.5, 4.5))
    handles = []
    cv = np.asarray(t["cv_error"], dtype=float)
    if np.isfinite(cv).any():
        std = np.nan_to_num(np.asarray(t["cv_error_std"], dtype=float), nan=0.0)
        lower = np.minimum(std, 0.999 * cv)  # keep the bars on the log axis
        handles.append(
            ax.errorbar(ranks, cv, yerr=np.vstack([lower, std]), marker="o", capsize=3,
                        color="C0", label="held-out error (±1 sd)")
        )
    if np.isfinite(t["relative_error"]).any():
        (line,) = ax.plot(ranks, t["relative_error"], linestyle="--", marker=".", color="C0",
                          alpha=0.6, label="training error")
        handles.append(line)
    ax.set_yscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("relative error")
    ax.set_xticks(ranks)
    if np.isfinite(t["cophenetic"]).any():
        twin = ax.twinx()
        (line,) = twin.plot(ranks, t["cophenetic"], marker="s", color="C1", label="cophenetic")
        handles.append(line)
        if np.isfinite(t["dispersion"]).any():
            (line,) = twin.plot(ranks, t["dispersion"], marker="^", linestyle=":", color="C2",
                                label="dispersion")
            handles.append(line)
        twin.set_ylabel("cophenetic correlation / dispersion")
    best = ax.axvline(s.best_rank, color="grey", linestyle=":", label=f"best rank {s.best_rank}")
    handles.append(best)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3,
              fontsize="small", frameon=False)
    unit = "splits" if s.method == "cv" else "runs"
    ax.set_title(f"rank survey ({s.method}, {s.n_runs} {unit} per rank)")
    if own_figure:
        fig.tight_layout()
    return _save(fig, path)


def basis_images(H_or_result, shape, n_cols=None, *, cmap="gray_r", titles=True, path=None):
    """The components of image data as a grid of images, one per row of H.

    Parameters
    ----------
    H_or_result : ndarray (k, n) or NMFResult
        Components, one image per row (``result.H`` for a result), each flattened in
        row-major order.
    shape : tuple of int
        Shape of one image, ``(height, width)``, with ``height * width == n``.
    n_cols : int, optional
        Images per row of the grid (default: about √k).
    cmap : str
        Colour map; each image is scaled to its own maximum.
    titles : bool
        Number the images.
    path : str or path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import fastnmf, fastnmf.plotting
    >>> X, parts = fastnmf.datasets.swimmer()
    >>> fig = fastnmf.plotting.basis_images(parts, (32, 32))
    """
    H = H_or_result.H if hasattr(H_or_result, "H") else H_or_result
    H = np.asarray(H, dtype=float)
    if H.ndim == 1:
        H = H[None, :]
    if H.ndim != 2 or H.shape[0] == 0:
        raise ValueError(f"H must be a 2-D array with one component per row, got shape {H.shape}.")
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple (height, width), got {shape!r}.") from None
    if len(shape) != 2 or shape[0] * shape[1] != H.shape[1]:
        raise ValueError(
            f"shape={shape} does not match the {H.shape[1]} entries of each component; "
            "pass the (height, width) of one image."
        )
    k = H.shape[0]
    if n_cols is None:
        n_cols = math.ceil(math.sqrt(k))
    if isinstance(n_cols, bool) or not isinstance(n_cols, (int, np.integer)) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}.")
    n_cols = min(int(n_cols), k)
    n_rows = math.ceil(k / n_cols)
    plt = _pyplot()
    scale = 1.6
    figsize = (scale * n_cols, scale * n_rows * shape[0] / shape[1] + 0.3)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i >= k:
            continue
        image = H[i].reshape(shape)
        top = image.max()
        ax.imshow(image, cmap=cmap, vmin=0, vmax=top if top > 0 else 1, interpolation="nearest")
        if titles:
            ax.set_title(str(i), fontsize="small")
    return _save(fig, path)
