"""Batched non-negative least squares on the normal equations.

Every kernel solves, for each row ``i`` of ``YG`` (r, k),

    min_{x ≥ 0}  ½ xᵀ Q x − YG[i] · x,        Q = GtG (k, k), symmetric PSD,

and writes ``x`` into row ``i`` of ``F`` (r, k). ``active_set_rows`` and ``bpp_rows`` take
one Gram matrix per row instead, ``Q`` (r, k, k) with row ``i`` using ``Q[i]`` (masked NMF):
they scale each ``Q[i]`` in the parallel task that solves row ``i`` and run the same
per-row solvers (``_lawson_hanson``, ``_bpp_row`` built from BPP's exchange step).
Rows are independent: the parallel loops run over chunks of rows (or of rows sharing a
passive set: ``bpp`` and ``active_set`` share one factorisation of ``Q[P, P]`` among the
rows whose passive sets are equal, as in FCNNLS, Van Benthem & Keenan 2004) and each task
writes only its own rows, so the result does not depend on the number of threads.

Each public kernel is a thin serial function that widens the inputs to float64 in
Jacobi-scaled variables (``_prepare``: unit diagonal, so tolerances mean the same for
every column however scaled), calls a float64-only parallel engine, and writes the
solutions back in ``F``'s dtype (``_store``). So float32 and float64 both work, and the
heavy code compiles once.

Singular ``Q``. The Cholesky factorisation of a passive block treats a pivot
``d ≤ PIVOT_TOL · eps(dtype)`` (relative to the unit diagonal) as zero: that variable's
column of ``A`` lies in the span of the earlier ones, so holding it at 0 still gives a
minimiser of the unconstrained sub-problem. The exact methods therefore return an optimal
solution of rank-deficient problems too, and never divide by zero. Variables with
``Q_jj ≤ 0`` (zero columns of ``A``) are fixed at 0.

The factor ``L`` of ``Q[P, P]`` (P listed in ``idx[:p]``) is built row by row
(Cholesky–Banachiewicz): row ``i`` only needs rows ``< i``, so appending a variable costs
O(p²) and removing one only recomputes the rows after it. ``inv[i] = 1 / L[i, i]``, and
``inv[i] = 0`` marks a dropped (dependent) variable, which then takes no part in the solves.
"""

import numpy as np
from numba import njit, prange

from .._config import JIT, PARALLEL_JIT

PIVOT_TOL = 1000.0  # a Cholesky pivot ≤ PIVOT_TOL · eps(dtype) · Q_jj counts as zero
KKT_TOL = 1e-12  # sign tests: x_j < −KKT_TOL·max|x|, gradient < −KKT_TOL·max|c|
PBAR = 3  # Kim & Park (2011): full exchanges allowed without progress before the backup rule
CHUNK = 32  # rows per parallel task (workspaces are allocated once per task)
POLISH_ROUNDS = 20  # variables that may enter in the active-set polish of cd (_polish)
POLISH_FIRST = 16  # cd tries the polish after 16, 64, 256, … sweeps, and at the end
SAMPLE = 512  # bpp and active_set group rows by passive set if, of SAMPLE rows, at least one in
SHARE_MIN = 8  # SHARE_MIN shares its passive set with another (_sets_shared)
MAX_COND = 1e6  # bpp solves through Q⁻¹ (_complement_exchange) only below this bound on cond(Q)


# --------------------------------------------------------------------------- linear algebra


@njit(**JIT)
def _factor_row(Q, idx, i, j0, L, inv, tau):
    """Entries ``j0 … i`` of row ``i`` of the factor (entries before ``j0`` are done)."""
    qi = idx[i]
    for j in range(j0, i):
        s = Q[qi, idx[j]]
        for t in range(j):
            s -= L[i, t] * L[j, t]
        L[i, j] = s * inv[j]  # 0 below a dropped pivot
    d = Q[qi, qi]
    for t in range(i):
        d -= L[i, t] * L[i, t]
    if d > tau * Q[qi, qi]:
        L[i, i] = np.sqrt(d)
        inv[i] = 1.0 / L[i, i]
    else:  # column of A dependent on the earlier ones (or zero)
        L[i, i] = 0.0
        inv[i] = 0.0


@njit(**JIT)
def _factor_rows(Q, idx, start, p, L, inv, tau):
    """Rows ``start … p−1`` of the Cholesky factor of ``Q[idx[:p]][:, idx[:p]]``.

    Two rows at a time: their dot products with an earlier row share its loads (about
    1.6× faster than one row at a time for k ≈ 25).
    """
    i = start
    while i + 1 < p:
        a, b = idx[i], idx[i + 1]
        for j in range(i):
            s0 = Q[a, idx[j]]
            s1 = Q[b, idx[j]]
            for t in range(j):
                s0 -= L[i, t] * L[j, t]
                s1 -= L[i + 1, t] * L[j, t]
            L[i, j] = s0 * inv[j]
            L[i + 1, j] = s1 * inv[j]
        _factor_row(Q, idx, i, i, L, inv, tau)
        _factor_row(Q, idx, i + 1, i, L, inv, tau)
        i += 2
    if i < p:
        _factor_row(Q, idx, i, 0, L, inv, tau)


@njit(**JIT)
def _forward(L, inv, idx, c, start, p, u):
    """Entries ``start … p−1`` of ``u = L⁻¹ c[idx]``."""
    for i in range(start, p):
        s = c[idx[i]]
        for t in range(i):
            s -= L[i, t] * u[t]
        u[i] = s * inv[i]


@njit(**JIT)
def _backward(L, inv, p, u, s):
    """``s = L⁻ᵀ u`` (column-oriented, so that it reads rows of L)."""
    for i in range(p):
        s[i] = u[i]
    for i in range(p - 1, -1, -1):
        si = s[i] * inv[i]
        s[i] = si
        for t in range(i):
            s[t] -= L[i, t] * si


@njit(**JIT)
def _solve_many(L, inv, idx, p, YG, rows, U, S):
    """Forward (``U``) and full (``S``) solutions for all of ``rows`` at once, one column
    per row: the updates run along the rows, which vectorises (a small TRSM)."""
    n = rows.size
    for i in range(p):
        for a in range(n):
            U[i, a] = YG[rows[a], idx[i]]
        for t in range(i):
            lt = L[i, t]
            for a in range(n):
                U[i, a] -= lt * U[t, a]
        for a in range(n):
            U[i, a] *= inv[i]
    for i in range(p):
        for a in range(n):
            S[i, a] = U[i, a]
    for i in range(p - 1, -1, -1):
        for a in range(n):
            S[i, a] *= inv[i]
        for t in range(i):
            lt = L[i, t]
            for a in range(n):
                S[t, a] -= lt * S[i, a]


@njit(**JIT)
def _scale_gram(GtG, Q, d, usable, e):
    """Jacobi scaling of one Gram matrix, in float64.

    Parameters
    ----------
    GtG : (k, k) array
        Symmetric PSD, any float dtype.
    Q : (k, k) float64 array
        Receives ``GtG / (d dᵀ)`` (unit diagonal where ``usable``).
    d : (k,) float64 array
        Receives ``sqrt(GtG_jj)``, or 1 where ``GtG_jj ≤ 0``.
    usable : (k,) bool array
        Receives ``GtG_jj > 0``: the variables that may be > 0.
    e : (k,) float64 array or None
        If given, receives ``1 / d`` and ``Q`` is ``GtG · (e eᵀ)`` (within an ulp or two
        of the quotient): the per-row kernels scale r Gram matrices, and k² divisions
        per row made them ~10 % slower. ``None`` (the shared-Gram kernels, which scale
        once) keeps the exact quotient. Numba prunes the other branch at compile time.
    """
    k = Q.shape[0]
    for j in range(k):
        usable[j] = GtG[j, j] > 0
        d[j] = np.sqrt(np.float64(GtG[j, j])) if usable[j] else 1.0
    if e is not None:
        for j in range(k):
            e[j] = 1.0 / d[j]
        for i in range(k):
            for j in range(k):
                Q[i, j] = GtG[i, j] * (e[i] * e[j])
    else:
        for i in range(k):
            for j in range(k):
                Q[i, j] = GtG[i, j] / (d[i] * d[j])


@njit(**JIT)
def _prepare(GtG, YG, F, start_from_F):
    """Everything a kernel works on, in float64 and in scaled variables ``z = d·x`` with
    ``d = sqrt(diag Q)`` (Jacobi scaling: unit diagonal, so the sign tolerances and the
    pivot test mean the same for every column of A, however differently scaled).

    Returns the scaled ``Q``, the pivot threshold for the dtype, which variables may be
    > 0, the row indices, ``d``, the scaled ``YG`` and the solution array (scaled ``F``
    when the method starts from it). ``_store`` writes the solutions back.

    Working in float64 also means that every helper compiles once, not once per dtype.
    The parallel kernels allocate only through serial helpers like this one: with
    ``parallel=True`` Numba turns every ``np.zeros``/``np.arange`` into a parfor of its
    own, which costs compile time and buys nothing here.
    """
    r, k = YG.shape
    Q = np.empty((k, k))
    d = np.empty(k)
    usable = np.empty(k, dtype=np.bool_)
    _scale_gram(GtG, Q, d, usable, None)
    Y = np.empty((r, k))
    X = np.empty((r, k))
    for i in range(r):
        for j in range(k):
            Y[i, j] = YG[i, j] / d[j]
            if start_from_F:
                X[i, j] = F[i, j] * d[j]
    tau = PIVOT_TOL * np.finfo(GtG.dtype).eps
    return Q, tau, usable, np.arange(r), d, Y, X


@njit(**JIT)
def _store(X, d, F):
    """``F = X / d``: the solutions back in the original variables and dtype."""
    for i in range(F.shape[0]):
        for j in range(F.shape[1]):
            F[i, j] = X[i, j] / d[j]


@njit(**JIT)
def _load_row(YG, i, c):
    """``c = YG[i]``; returns ``max |c|``, the scale of the gradient tests."""
    cmax = 0.0
    for j in range(c.size):
        c[j] = YG[i, j]
        cmax = max(cmax, abs(c[j]))
    return cmax


@njit(**JIT)
def _first_nonpositive(s, p, keep):
    """Flag ``keep[t] = s[t] > 0``; return the first position that is not kept (or p)."""
    first = p
    for t in range(p - 1, -1, -1):
        keep[t] = s[t] > 0.0
        if not keep[t]:
            first = t
    return first


@njit(**JIT)
def _gradient(Q, x, c, j):
    """``(Qx − c)_j``."""
    y = -c[j]
    for t in range(x.size):
        y += Q[j, t] * x[t]
    return y


# --------------------------------------------------------------------------- Lawson–Hanson


@njit(**JIT)
def _remove(Q, c, idx, p, L, inv, u, keep, tau):
    """Drop the variables at positions where ``keep`` is False; return the new count.

    Rows of the factor before the first removed position are unchanged; the rest are
    recomputed.
    """
    first = p
    q = 0
    for t in range(p):
        if keep[t]:
            idx[q] = idx[t]
            q += 1
        elif first == p:
            first = t
    _factor_rows(Q, idx, first, q, L, inv, tau)
    _forward(L, inv, idx, c, first, q, u)
    return q


@njit(**JIT)
def _move_towards(Q, c, idx, p, L, inv, u, s, keep, tau, x, P):
    """Lawson–Hanson steps 6–11 from a feasible ``x`` (> 0 on P) and the solution ``s``
    on P: move towards ``s``, stopping where a variable reaches 0; drop it, re-solve,
    repeat until ``s`` is positive, which becomes ``x``. Returns the new size of P."""
    while True:
        alpha = 2.0
        leave = -1
        for t in range(p):
            if s[t] <= 0.0:
                j = idx[t]
                a = x[j] / (x[j] - s[t])
                if a < alpha:
                    alpha = a
                    leave = j
        if leave < 0:
            for t in range(p):
                x[idx[t]] = s[t]
            return p
        for t in range(p):
            j = idx[t]
            x[j] += alpha * (s[t] - x[j])
            keep[t] = x[j] > 0.0 and j != leave
            if not keep[t]:
                x[j] = 0.0
                P[j] = False
        p = _remove(Q, c, idx, p, L, inv, u, keep, tau)
        _backward(L, inv, p, u, s)


@njit(**JIT)
def _lawson_hanson(Q, c, cmax, usable, tau, P, x, idx, L, inv, u, s, keep, max_rounds, from_x):
    """Lawson & Hanson (1974, ch. 23, Algorithm NNLS) on the normal equations, one row.

    ``P`` (bool, k) is the warm-start passive set on entry and the final one on exit; ``x``
    receives the solution. The factor of ``Q[P, P]`` is kept up to date (variables in
    order of entry: appending one costs O(p²)). Warm start: solve on ``P`` and drop the
    variables that come out ≤ 0 until the solution is positive, a feasible start. With
    ``from_x``, ``x`` is a feasible point on entry and ``P`` must be its support: the
    start is then LH's own inner loop from ``x`` towards the solution on ``P``, which
    keeps more of ``P`` than dropping every variable that comes out ≤ 0.
    At most ``max_rounds`` variables enter (or are tried); returns whether the KKT
    conditions hold at the end (``x`` is then the optimum), else ``x`` is the last
    (feasible) iterate.
    """
    k = c.size
    if not from_x:
        x[:] = 0.0
    p = 0
    for j in range(k):
        if P[j] and usable[j]:
            idx[p] = j
            p += 1
        else:
            P[j] = False
            x[j] = 0.0
    _factor_rows(Q, idx, 0, p, L, inv, tau)
    _forward(L, inv, idx, c, 0, p, u)
    _backward(L, inv, p, u, s)
    if from_x:
        p = _move_towards(Q, c, idx, p, L, inv, u, s, keep, tau, x, P)
    else:
        while _first_nonpositive(s, p, keep) < p:  # also drops dependent variables
            p = _remove(Q, c, idx, p, L, inv, u, keep, tau)
            _backward(L, inv, p, u, s)
        P[:] = False
        for t in range(p):
            x[idx[t]] = s[t]
            P[idx[t]] = True
    return _lh_loop(Q, c, cmax, usable, tau, P, x, idx, p, L, inv, u, keep, s, max_rounds)


@njit(inline="always", **JIT)
def _lh_loop(Q, c, cmax, usable, tau, P, x, idx, p, L, inv, u, keep, s, max_rounds):
    """Lawson–Hanson's main loop (steps 2–11) from a feasible ``x`` that is optimal on
    its passive set ``P`` = ``idx[:p]``, given the factor ``L``, ``inv`` of ``Q[P, P]``
    (variables in the order of ``idx``) and ``u[:p] = L⁻¹ c[idx[:p]]``. Arguments and
    result as in ``_lawson_hanson`` (which ends with this): whether the KKT conditions
    hold at the end. Inlined, so that ``_lawson_hanson`` costs no extra call per row."""
    k = c.size
    excluded = np.zeros(k, dtype=np.bool_)
    toly = KKT_TOL * cmax
    for _ in range(max_rounds):
        # Steps 2–5: the variable with the most negative gradient enters P.
        enter = -1
        wmax = toly
        for j in range(k):
            if not (P[j] or excluded[j]) and usable[j]:
                w = -_gradient(Q, x, c, j)
                if w > wmax:
                    wmax = w
                    enter = j
        if enter < 0:
            return True
        idx[p] = enter
        _factor_rows(Q, idx, p, p + 1, L, inv, tau)
        _forward(L, inv, idx, c, p, p + 1, u)
        _backward(L, inv, p + 1, u, s)
        if s[p] <= 0.0:
            # Rounding (or a column dependent on P) makes the entering variable come out
            # ≤ 0; LH reject it, else the method can cycle.
            excluded[enter] = True
            continue
        p += 1
        P[enter] = True
        p = _move_towards(Q, c, idx, p, L, inv, u, s, keep, tau, x, P)
        excluded[:] = False
    return False


@njit(**JIT)
def _lh_rounds(k):
    """The guard on the variables entering in Lawson–Hanson (it terminates; scipy's guard
    is 3k)."""
    return 3 * k + 10


@njit(**JIT)
def _lh_rows(Q, YG, F, passive, rows, usable, tau):
    """Lawson–Hanson for each of ``rows`` (one parallel task; workspaces shared)."""
    k = Q.shape[0]
    idx = np.empty(k, dtype=np.int64)
    L = np.empty((k, k))
    inv = np.empty(k)
    u = np.empty(k)
    s = np.empty(k)
    c = np.empty(k)
    x = np.empty(k)
    keep = np.empty(k, dtype=np.bool_)
    for i in rows:
        cmax = _load_row(YG, i, c)
        _lawson_hanson(
            Q, c, cmax, usable, tau, passive[i], x, idx, L, inv, u, s, keep, _lh_rounds(k), False
        )
        for j in range(k):
            F[i, j] = x[j]


# --------------------------------------------------------------------------- BPP


@njit(**JIT)
def _bpp_rounds(k):
    """Exchange rounds before BPP hands a row over to Lawson–Hanson (a safety net: only
    rounding on degenerate problems makes BPP cycle past the backup rule)."""
    return 4 * k + 30


@njit(**JIT)
def _passive_indices(P, idx, p_old):
    """``idx[:p]`` = the variables in the passive set ``P`` (bool, k), in order.

    Returns ``(p, first)``: ``first`` is the first position at which ``idx`` differs from
    its previous content ``idx[:p_old]`` (rows ``< first`` of a factor built row by row
    on the old list are still valid for the new one).
    """
    p = 0
    first = -1
    for j in range(P.size):
        if P[j]:
            if first < 0 and (p >= p_old or idx[p] != j):
                first = p
            idx[p] = j
            p += 1
    return p, first if first >= 0 else p


# The two BPP steps below are inlined into their callers (Numba IR inlining): as calls,
# once per row and round, they made the grouped ``bpp`` ~5 % slower at k = 10. For the
# same reason ``_bpp_exchange`` takes the 2-D ``passive`` and a row index, not a view.


@njit(inline="always", **JIT)
def _bpp_start_row(c, cmax, usable, P):
    """The state of one row before its first exchange.

    Restricts the warm start ``P`` to the usable variables. An empty passive set takes
    Kim & Park's first iteration here, which needs no solve: x = 0, y = −c, so every
    variable with ``c_j > 0`` becomes passive. Returns ``(ninf, done)``: the smallest
    number of infeasible variables so far (k + 1 if unknown) and whether x = 0 is already
    optimal (no ``c_j > 0``).
    """
    k = c.size
    empty = True
    for j in range(k):
        P[j] = P[j] and usable[j]
        empty = empty and not P[j]
    if not empty:
        return k + 1, False
    n_bad = 0
    for j in range(k):
        P[j] = usable[j] and c[j] > KKT_TOL * cmax
        n_bad += P[j]
    return n_bad, n_bad == 0


@njit(inline="always", **JIT)
def _bpp_exchange(Q, c, cmax, usable, passive, i, idx, p, s, x, flip, ninf, tries):
    """One step of Kim & Park's Algorithm 1 for one row, given the solution on P.

    Parameters
    ----------
    Q, c, cmax, usable
        The row's scaled problem (``cmax = max |c|``).
    passive, i : (r, k) bool array, int
        ``passive[i]`` is the passive set; it receives the next one unless the row is
        done.
    idx, p, s
        ``s[:p]``: the unconstrained solution on the variables ``idx[:p]`` (= P).
    x : (k,) float64 array
        Receives ``x_P = s``, 0 elsewhere (the solution when done; clip it at 0).
    flip : (k,) bool array
        Workspace.
    ninf, tries : int
        The exchange rule's state (``_exchange``).

    Returns
    -------
    done : bool
        Whether no variable is infeasible, i.e. ``x`` is optimal.
    ninf, tries : int
        The updated state.

    The gradient ``y = Qx − c`` off P is formed here from ``x``; ``_complement_exchange``
    is the same step when ``y`` comes out of the solve.
    """
    k = c.size
    x[:] = 0.0
    xmax = 0.0
    for t in range(p):
        x[idx[t]] = s[t]
        xmax = max(xmax, abs(s[t]))
    for j in range(k):
        if passive[i, j]:
            flip[j] = x[j] < -KKT_TOL * xmax
        elif usable[j]:
            y = _gradient(Q, x, c, j) if p > 0 else -c[j]
            flip[j] = y < -KKT_TOL * cmax
        else:
            flip[j] = False
    return _exchange(passive, i, flip, ninf, tries)


@njit(inline="always", **JIT)
def _exchange(passive, i, flip, ninf, tries):
    """Kim & Park's exchange rule, given the infeasible variables ``V`` (``flip``):
    V = {j ∈ P: x_j < 0} ∪ {j ∉ P: y_j < 0}. All of them are exchanged while |V| keeps
    falling (or for ``PBAR`` rounds without progress), else only the largest index in V
    (the backup rule, which guarantees termination). Returns ``(done, ninf, tries)``
    as ``_bpp_exchange``; ``ninf`` is the smallest |V| so far and ``tries`` the full
    exchanges left without progress.
    """
    n_bad = 0
    last = -1
    for j in range(flip.size):
        if flip[j]:
            n_bad += 1
            last = j
    if n_bad == 0:
        return True, ninf, tries
    if n_bad < ninf:
        ninf = n_bad
        tries = PBAR
    elif tries >= 1:
        tries -= 1
    else:  # backup rule: exchange only the largest infeasible index
        flip[:] = False
        flip[last] = True
    for j in range(flip.size):
        if flip[j]:
            passive[i, j] = not passive[i, j]
    return False, ninf, tries


@njit(inline="always", **JIT)
def _complement_exchange(M, Mc, i, cmax, passive, idx, p, idz, z, s, x, flip, ninf, tries):
    """``_bpp_exchange`` with the solution on P taken from the multipliers of the zeros.

    With ``M = Q⁻¹``, the minimiser of ``½xᵀQx − cᵀx`` subject to ``x_Z = 0`` (Z = the
    ``z`` variables ``idz[:z]`` off P) satisfies ``Qx − c = y`` with ``y`` zero on P, so
    ``x = M(c + y)``, and ``x_Z = 0`` gives ``M_ZZ y_Z = −(Mc)_Z``. ``s[:z]`` holds that
    ``y_Z`` (the gradient off P that the exchange tests) and ``x_P = (Mc)_P + M_PZ y_Z``
    is formed here (``Mc`` is row ``i`` of ``M`` times ``c``). This needs a z×z
    factorisation instead of a p×p one: the cheaper side once most variables are
    passive, as they are in the late iterations of NMF.
    """
    k = flip.size
    x[:] = 0.0
    xmax = 0.0
    for t in range(p):
        j = idx[t]
        v = Mc[i, j]
        for q in range(z):
            v += M[j, idz[q]] * s[q]
        x[j] = v
        xmax = max(xmax, abs(v))
    for j in range(k):
        flip[j] = passive[i, j] and x[j] < -KKT_TOL * xmax
    for q in range(z):
        flip[idz[q]] = s[q] < -KKT_TOL * cmax
    return _exchange(passive, i, flip, ninf, tries)


@njit(**JIT)
def _inverse(Q, usable, tau):
    """``Q⁻¹`` for ``_complement_exchange``, or a 0×0 array when Q (scaled: unit diagonal)
    has an unusable variable or is too ill-conditioned for solves through its inverse.

    With a unit diagonal ``λ_max(Q) ≤ k`` and ``1/λ_min(Q) ≤ trace(Q⁻¹)``, so
    ``k · trace(Q⁻¹)`` bounds cond(Q); the rounding of ``x = Q⁻¹(c + y)`` grows with it.
    """
    k = Q.shape[0]
    none = np.empty((0, 0))
    for j in range(k):
        if not usable[j]:
            return none
    idx = np.arange(k)
    L = np.empty((k, k))
    inv = np.empty(k)
    _factor_rows(Q, idx, 0, k, L, inv, tau)
    for j in range(k):
        if inv[j] == 0.0:
            return none
    M = np.empty((k, k))
    e = np.zeros(k)
    u = np.empty(k)
    s = np.empty(k)
    for j in range(k):  # column j of Q⁻¹ solves Q m = e_j
        e[j] = 1.0
        _forward(L, inv, idx, e, 0, k, u)
        _backward(L, inv, k, u, s)
        e[j] = 0.0
        M[:, j] = s
    trace = 0.0
    for i in range(k):
        trace += M[i, i]
        for j in range(i):
            M[i, j] = M[j, i] = 0.5 * (M[i, j] + M[j, i])
    if k * trace > MAX_COND:
        return none
    return M


@njit(**JIT)
def _bpp_row(Q, c, cmax, usable, tau, passive, i, x, idx, L, inv, u, s, keep, flip):
    """Block principal pivoting (Kim & Park 2011, Algorithm 1) for one row on its own.

    The row's problem is ``Q``, ``c`` (scaled, ``cmax = max |c|``), ``usable``;
    ``passive[i]`` is the warm-start passive set and receives the final one; ``x``
    receives the solution; the rest are workspaces.
    Each exchange refactorises ``Q[P, P]`` from the first position where the sorted
    passive list changed (the rows before it still hold). After ``_bpp_rounds(k)``
    exchanges the row finishes with Lawson–Hanson from its last passive set, as in
    ``bpp``.
    """
    k = c.size
    P = passive[i]
    ninf, done = _bpp_start_row(c, cmax, usable, P)
    tries = PBAR
    x[:] = 0.0  # the solution if the start is already optimal
    p = 0  # nothing factorised yet for this row
    for _ in range(_bpp_rounds(k)):
        if done:
            break
        p, first = _passive_indices(P, idx, p)
        _factor_rows(Q, idx, first, p, L, inv, tau)
        _forward(L, inv, idx, c, first, p, u)
        _backward(L, inv, p, u, s)
        done, ninf, tries = _bpp_exchange(
            Q, c, cmax, usable, passive, i, idx, p, s, x, flip, ninf, tries
        )
    if done:
        for j in range(k):
            x[j] = max(x[j], 0.0)
    else:
        _lawson_hanson(Q, c, cmax, usable, tau, P, x, idx, L, inv, u, s, keep, _lh_rounds(k), False)


@njit(**JIT)
def _passive_hash(passive, i):
    """A hash of row ``i``'s passive set (equal sets, equal hashes)."""
    h = np.int64(1469598103934665603)
    for j in range(passive.shape[1]):
        if passive[i, j]:
            h = h * np.int64(1099511628211) + np.int64(j + 1)  # wraps modulo 2^64
    return h


@njit(**JIT)
def _group_rows(passive, rows, hashes, group):
    """Order ``rows`` so that equal passive sets are adjacent; cut groups and tasks.

    Returns ``(order, starts, tasks)``: the rows sorted by the hash of their passive set;
    ``order[starts[g]:starts[g+1]]`` is group g, at most ``CHUNK`` rows sharing one
    passive set; task q (one parallel iteration) is groups ``tasks[q] … tasks[q+1]−1``,
    about ``CHUNK`` rows. A hash collision only splits a group, never merges two sets.
    With ``group`` False, every row is a group of its own, in the given order.
    """
    n = rows.size
    k = passive.shape[1]
    keys = hashes[rows]
    perm = np.argsort(keys, kind="mergesort") if group else np.arange(n)
    order = rows[perm]
    starts = np.empty(n + 1, dtype=np.int64)
    tasks = np.empty(n + 1, dtype=np.int64)
    g = 0
    q = 0
    for a in range(n):
        new = a == 0 or a - starts[g - 1] >= CHUNK or keys[perm[a]] != keys[perm[a - 1]]
        new = new or not group
        if not new:
            for j in range(k):
                if passive[order[a], j] != passive[order[a - 1], j]:
                    new = True
                    break
        if new:
            if q == 0 or a - starts[tasks[q - 1]] >= CHUNK:
                tasks[q] = g
                q += 1
            starts[g] = a
            g += 1
    starts[g] = n
    tasks[q] = g
    return order, starts[: g + 1], tasks[: q + 1]


@njit(**JIT)
def _bpp_groups(Q, YG, F, passive, hashes, order, starts, g0, g1, usable, tau, ninf, tries, done, M, Mc):
    """One round of Kim & Park's Algorithm 1 for the rows of groups ``g0 … g1−1``.

    Per group, one factorisation for the shared passive set P: of ``Q[P, P]``, or, when
    ``M = Q⁻¹`` is given (k×k; 0×0 if not) and fewer variables are off P than on it, of
    ``M[Z, Z]`` for the zeros Z (``_complement_exchange``; ``Mc = YG M``). Per row, the
    solution and one exchange. A row with no infeasible variable is optimal: its
    solution goes to ``F`` and it is marked done; the others get their new passive set
    and its hash.
    """
    k = Q.shape[0]
    idx = np.empty(k, dtype=np.int64)
    idz = np.empty(k, dtype=np.int64)
    L = np.empty((k, k))
    inv = np.empty(k)
    u = np.empty(k)
    s = np.empty(k)
    c = np.empty(k)
    x = np.empty(k)
    flip = np.empty(k, dtype=np.bool_)
    U = np.empty((k, CHUNK))
    S = np.empty((k, CHUNK))
    for g in range(g0, g1):
        members = order[starts[g] : starts[g + 1]]
        P = passive[members[0]]
        p, _ = _passive_indices(P, idx, 0)
        z = k - p
        complement = M.shape[0] > 0 and z < p
        if complement:
            z = 0
            for j in range(k):
                if not P[j]:
                    idz[z] = j
                    z += 1
            _factor_rows(M, idz, 0, z, L, inv, tau)
        else:
            _factor_rows(Q, idx, 0, p, L, inv, tau)  # one factorisation for the group
        many = members.size >= 4 and not complement  # then solve for all members at once
        if many:
            _solve_many(L, inv, idx, p, YG, members, U, S)
        for a in range(members.size):
            i = members[a]
            cmax = _load_row(YG, i, c)
            if complement:
                for j in range(k):
                    c[j] = -Mc[i, j]
                _forward(L, inv, idz, c, 0, z, u)
                _backward(L, inv, z, u, s)
                row_done, ninf[i], tries[i] = _complement_exchange(
                    M, Mc, i, cmax, passive, idx, p, idz, z, s, x, flip, ninf[i], tries[i]
                )
            else:
                if many:
                    for t in range(p):
                        s[t] = S[t, a]
                else:
                    _forward(L, inv, idx, c, 0, p, u)
                    _backward(L, inv, p, u, s)
                row_done, ninf[i], tries[i] = _bpp_exchange(
                    Q, c, cmax, usable, passive, i, idx, p, s, x, flip, ninf[i], tries[i]
                )
            if row_done:
                done[i] = True
                for j in range(k):
                    F[i, j] = max(x[j], 0.0)
            else:
                hashes[i] = _passive_hash(passive, i)


@njit(**JIT)
def _bpp_state(r, k, complement):
    """The per-row state of ``_bpp``: hashes of the passive sets, the exchange rule's
    smallest |V| so far and full exchanges left, done flags, and room for ``YG Q⁻¹``
    (r×k if ``complement``, else 0×k)."""
    hashes = np.empty(r, dtype=np.int64)
    ninf = np.empty(r, dtype=np.int64)
    tries = np.full(r, PBAR, dtype=np.int64)
    done = np.empty(r, dtype=np.bool_)
    Mc = np.empty((r if complement else 0, k))
    return hashes, ninf, tries, done, Mc


@njit(**JIT)
def _bpp_start(Y, X, passive, usable, M, Mc, hashes, ninf, done, start, stop):
    """The state of rows ``start … stop−1`` before the first round (``_bpp_start_row``),
    and their rows of ``Mc = Y M`` if there is room for them (M symmetric)."""
    k = Y.shape[1]
    for i in range(start, stop):
        cmax = 0.0
        for j in range(k):
            cmax = max(cmax, abs(Y[i, j]))
        ninf[i], done[i] = _bpp_start_row(Y[i], cmax, usable, passive[i])
        if done[i]:
            X[i, :] = 0.0
        hashes[i] = _passive_hash(passive, i)
        if Mc.shape[0] > 0:  # by hand: a BLAS call here would leave its threads spinning
            for j in range(k):
                v = 0.0
                for t in range(k):
                    v += M[j, t] * Y[i, t]
                Mc[i, j] = v


@njit(**JIT)
def _undone(rows, done):
    """The rows not done, in their order (in place)."""
    n = 0
    for a in range(rows.size):
        if not done[rows[a]]:
            rows[n] = rows[a]
            n += 1
    return rows[:n]


@njit(**PARALLEL_JIT)
def _bpp(Q, Y, X, passive, usable, tau, rows, M):
    """The parallel part of ``bpp``, in float64 (compiled once for all dtypes)."""
    r, k = Y.shape
    hashes, ninf, tries, done, Mc = _bpp_state(r, k, M.shape[0] > 0)
    for b in prange((r + CHUNK - 1) // CHUNK):
        _bpp_start(Y, X, passive, usable, M, Mc, hashes, ninf, done, b * CHUNK, min(r, (b + 1) * CHUNK))
    rows = _undone(rows, done)
    max_rounds = _bpp_rounds(k)
    for round_ in range(max_rounds + 1):
        if rows.size == 0:
            break
        # Group equal passive sets (Algorithm 2) when a sample finds enough of them;
        # else sorting costs more than it saves and each row is its own group.
        order, starts, tasks = _group_rows(passive, rows, hashes, _sets_shared(passive, rows))
        for q in prange(tasks.size - 1):
            g0, g1 = tasks[q], tasks[q + 1]
            if round_ < max_rounds:
                _bpp_groups(
                    Q, Y, X, passive, hashes, order, starts, g0, g1, usable, tau, ninf, tries, done, M, Mc
                )
            else:  # safety net
                _lh_rows(Q, Y, X, passive, order[starts[g0] : starts[g1]], usable, tau)
        rows = _undone(rows, done)


@njit(**JIT)
def bpp(GtG, YG, F, passive):
    """Block principal pivoting (Kim & Park 2011) for every row of ``YG``.

    Algorithm 2 of the paper (column grouping): all rows iterate together; each round the
    rows still infeasible are grouped by passive set, when a sample finds enough equal
    sets (``_sets_shared``), and each group shares one Cholesky factorisation
    (``_bpp_groups``, Algorithm 1 per row): of ``Q[P, P]``, or, when most variables are
    passive and Q is well conditioned, of ``Q⁻¹[Z, Z]`` for the few zeros Z
    (``_complement_exchange``). ``passive`` (r, k) bool is the warm start (all False:
    Kim & Park's cold start x = 0) and receives the final passive sets. Rows still
    infeasible after ``4k + 30`` rounds (only through rounding on degenerate
    problems) finish with Lawson–Hanson from their last passive set.
    """
    Q, tau, usable, rows, d, Y, X = _prepare(GtG, YG, F, False)
    M = _inverse(Q, usable, tau)
    _bpp(Q, Y, X, passive, usable, tau, rows, M)
    _store(X, d, F)


# --------------------------------------------------------------------------- Lawson–Hanson, grouped


@njit(**JIT)
def _sets_shared(passive, rows):
    """Whether grouping ``rows`` by passive set may pay: at least one in ``SHARE_MIN`` of
    an evenly spaced sample of ``SAMPLE`` of them (all if fewer) shares its passive set
    with another row of the sample (hashes compared). Costs ~20 µs; sorting all rows by
    their sets (``_group_rows``) costs ~0.1 µs per row, up to a tenth of a row's solve.
    Deterministic: the sample depends only on ``rows``."""
    n = rows.size
    if n < 2:
        return False
    m = min(n, SAMPLE)
    keys = np.empty(m, dtype=np.int64)
    for a in range(m):
        keys[a] = _passive_hash(passive, rows[a * n // m])
    keys.sort()
    shared = 0
    for a in range(m):
        if (a > 0 and keys[a] == keys[a - 1]) or (a + 1 < m and keys[a] == keys[a + 1]):
            shared += 1
    return shared * SHARE_MIN >= m


@njit(**JIT)
def _as_start(passive, usable, hashes, rows):
    """Restrict the warm starts of ``rows`` to the usable variables; hash them."""
    for i in rows:
        for j in range(passive.shape[1]):
            passive[i, j] = passive[i, j] and usable[j]
        hashes[i] = _passive_hash(passive, i)


@njit(**JIT)
def _as_state(r):
    """The hashes of the passive sets and the done flags of ``r`` rows."""
    return np.empty(r, dtype=np.int64), np.zeros(r, dtype=np.bool_)


@njit(**JIT)
def _as_groups(Q, YG, X, passive, hashes, order, starts, g0, g1, usable, tau, done):
    """One round of ``active_set`` for the rows of groups ``g0 … g1−1``.

    A group of one row runs ``_lawson_hanson`` from its passive set. A larger group
    shares one factorisation of ``Q[P, P]`` for its passive set P and the solutions on P
    of all its rows at once (``_solve_many``). Per row, one step of LH's warm start: if
    the solution ``s`` has entries ≤ 0, those variables leave the row's passive set (new
    hash; the row is grouped again next round); else ``x = s`` is feasible and the row
    runs LH's main loop (``_lh_loop``) to the end on its own, starting from a copy of the
    group's factor. Solutions go to ``X``; finished rows are marked done.
    """
    k = Q.shape[0]
    max_rounds = _lh_rounds(k)
    idx = np.empty(k, dtype=np.int64)  # the group's factor
    L = np.empty((k, k))
    inv = np.empty(k)
    U = np.empty((k, CHUNK))
    S = np.empty((k, CHUNK))
    jdx = np.empty(k, dtype=np.int64)  # the row's factor
    M = np.empty((k, k))
    minv = np.empty(k)
    u = np.empty(k)
    s = np.empty(k)
    c = np.empty(k)
    x = np.empty(k)
    keep = np.empty(k, dtype=np.bool_)
    for g in range(g0, g1):
        members = order[starts[g] : starts[g + 1]]
        if members.size == 1:
            i = members[0]
            cmax = _load_row(YG, i, c)
            _lawson_hanson(
                Q, c, cmax, usable, tau, passive[i], x, jdx, M, minv, u, s, keep, max_rounds, False
            )
            for j in range(k):
                X[i, j] = x[j]
            done[i] = True
            continue
        p, _ = _passive_indices(passive[members[0]], idx, 0)
        _factor_rows(Q, idx, 0, p, L, inv, tau)  # one factorisation for the group
        many = members.size >= 4  # then solve for all members at once
        if many:
            _solve_many(L, inv, idx, p, YG, members, U, S)
        for a in range(members.size):
            i = members[a]
            cmax = _load_row(YG, i, c)
            if many:
                for t in range(p):
                    u[t] = U[t, a]
                    s[t] = S[t, a]
            else:
                _forward(L, inv, idx, c, 0, p, u)
                _backward(L, inv, p, u, s)
            if _first_nonpositive(s, p, keep) < p:  # also drops dependent variables
                for t in range(p):
                    if not keep[t]:
                        passive[i, idx[t]] = False
                hashes[i] = _passive_hash(passive, i)
                continue
            for t in range(p):
                jdx[t] = idx[t]
                minv[t] = inv[t]
                for q in range(t + 1):
                    M[t, q] = L[t, q]
            x[:] = 0.0
            for t in range(p):
                x[idx[t]] = s[t]
            _lh_loop(
                Q, c, cmax, usable, tau, passive[i], x, jdx, p, M, minv, u, keep, s, max_rounds
            )
            for j in range(k):
                X[i, j] = x[j]
            done[i] = True


@njit(**PARALLEL_JIT)
def _active_set(Q, Y, X, passive, usable, tau, rows):
    """The parallel part of ``active_set``, in float64 (compiled once for all dtypes)."""
    if not _sets_shared(passive, rows):  # distinct warm starts: LH row by row
        for b in prange((rows.size + CHUNK - 1) // CHUNK):
            _lh_rows(Q, Y, X, passive, rows[b * CHUNK : (b + 1) * CHUNK], usable, tau)
        return
    hashes, done = _as_state(passive.shape[0])
    for b in prange((rows.size + CHUNK - 1) // CHUNK):
        _as_start(passive, usable, hashes, rows[b * CHUNK : (b + 1) * CHUNK])
    while rows.size > 0:
        # Group equal passive sets while a sample finds some; then each row on its own.
        order, starts, tasks = _group_rows(passive, rows, hashes, _sets_shared(passive, rows))
        for q in prange(tasks.size - 1):
            g0, g1 = tasks[q], tasks[q + 1]
            _as_groups(Q, Y, X, passive, hashes, order, starts, g0, g1, usable, tau, done)
        rows = _undone(rows, done)


@njit(**JIT)
def active_set(GtG, YG, F, passive):
    """Lawson–Hanson active set for every row of ``YG``; warm start from ``passive``.

    ``passive`` (r, k) bool is the starting passive set of each row and is overwritten
    with the final one. ``F`` (r, k) receives the solutions.

    Combinatorial over rows (Van Benthem & Keenan 2004, FCNNLS) in LH's warm start,
    the one stage where the per-row method factorises a whole passive set from
    scratch: the rows iterate together, and each round the rows whose passive sets are
    equal share one Cholesky factorisation of ``Q[P, P]``, solved for all of them at once
    (``_as_groups``; grouping as in ``bpp``). A row's variables that come out ≤ 0 leave
    its set (the row is regrouped next round); once its solution is positive the row
    runs LH's main loop on its own from a copy of the group's factor. Every row follows
    LH's iterates, and the warm start cannot cycle (each round shrinks the set of every
    row still in it); the main loop keeps ``_lawson_hanson``'s guard of ``3k + 10``
    entering variables.

    When to group (``_sets_shared``, before each round): only if, in an evenly spaced
    sample of ``SAMPLE`` rows, at least one in ``SHARE_MIN`` shares its passive set with
    another row of the sample. Otherwise each row runs ``_lawson_hanson`` on its own, as
    before (distinct warm starts, e.g. FAST supports or ANLS's previous passive sets:
    sorting would cost ~0.1 µs per row and save nothing). Measured (2 cores, k = 20,
    5000 rows): equal speed from distinct sets, 25–30 % faster from a shared full set
    (e.g. ANLS's first half-step, warm-started from an all-positive factor).

    The main loop is not grouped. Its steps append (or remove) one variable, which the
    per-row factor update does without refactorising (appending costs O(p²)), so a
    shared factorisation saves little there, while regrouping the rows every step costs
    a sort of them: FCNNLS's grouping at every step was measured 1.4× slower from empty
    passive sets and 2.1× slower with 5000 rows drawn from 8 supports (its most
    favourable case), and was dropped.
    """
    Q, tau, usable, rows, d, Y, X = _prepare(GtG, YG, F, False)
    _active_set(Q, Y, X, passive, usable, tau, rows)
    _store(X, d, F)


# --------------------------------------------------------------------------- one Gram per row


@njit(**JIT)
def _prepare_rows(Q, YG, F, passive):
    """What the per-row kernels work on: ``Q`` and ``YG`` in float64 (no copy when they
    are already float64 and C-contiguous), an output array, the pivot threshold for the
    dtype and the row indices. The scaling is per row, in the parallel tasks.
    """
    r, k = YG.shape
    if Q.shape != (r, k, k) or F.shape != (r, k) or passive.shape != (r, k):
        raise ValueError("per-row NNLS: Q must be (r, k, k) and F, passive (r, k) for YG (r, k)")
    G = np.ascontiguousarray(np.asarray(Q, np.float64))
    Y = np.ascontiguousarray(np.asarray(YG, np.float64))
    tau = PIVOT_TOL * np.finfo(Q.dtype).eps
    return G, Y, np.empty((r, k)), tau, np.arange(r)


@njit(**JIT)
def _store_rows(X, F):
    """``F = X`` in ``F``'s dtype."""
    for i in range(F.shape[0]):
        for j in range(F.shape[1]):
            F[i, j] = X[i, j]


@njit(**JIT)
def _rows_task(G, YG, X, passive, rows, tau, use_bpp):
    """Lawson–Hanson (``use_bpp`` False) or BPP for each of ``rows``, row ``i`` with its
    own Gram matrix ``G[i]`` (one parallel task; workspaces shared).

    Per row: the Jacobi scaling of ``G[i]`` into a workspace (``_scale_gram``, as
    ``_prepare`` does for a shared Gram, here with reciprocals ``e = 1/d``), the solve in
    scaled variables by the same per-row solver as the shared-Gram kernels, and
    ``X[i] = x / d``. ``use_bpp`` is a compile-time constant of each engine, so each
    compiles only its own solver.
    """
    k = YG.shape[1]
    Q = np.empty((k, k))
    d = np.empty(k)
    e = np.empty(k)
    usable = np.empty(k, dtype=np.bool_)
    idx = np.empty(k, dtype=np.int64)
    L = np.empty((k, k))
    inv = np.empty(k)
    u = np.empty(k)
    s = np.empty(k)
    c = np.empty(k)
    x = np.empty(k)
    keep = np.empty(k, dtype=np.bool_)
    flip = np.empty(k, dtype=np.bool_)
    for i in rows:
        _scale_gram(G[i], Q, d, usable, e)
        cmax = 0.0
        for j in range(k):
            c[j] = YG[i, j] * e[j]
            cmax = max(cmax, abs(c[j]))
        if use_bpp:
            _bpp_row(Q, c, cmax, usable, tau, passive, i, x, idx, L, inv, u, s, keep, flip)
        else:
            rounds = _lh_rounds(k)
            _lawson_hanson(
                Q, c, cmax, usable, tau, passive[i], x, idx, L, inv, u, s, keep, rounds, False
            )
        for j in range(k):
            X[i, j] = x[j] * e[j]


@njit(**PARALLEL_JIT)
def _active_set_rows(G, Y, X, passive, tau, rows):
    """The parallel part of ``active_set_rows``, in float64 (compiled once for all dtypes)."""
    for b in prange((rows.size + CHUNK - 1) // CHUNK):
        _rows_task(G, Y, X, passive, rows[b * CHUNK : (b + 1) * CHUNK], tau, False)


@njit(**PARALLEL_JIT)
def _bpp_rows(G, Y, X, passive, tau, rows):
    """The parallel part of ``bpp_rows``, in float64 (compiled once for all dtypes)."""
    for b in prange((rows.size + CHUNK - 1) // CHUNK):
        _rows_task(G, Y, X, passive, rows[b * CHUNK : (b + 1) * CHUNK], tau, True)


@njit(**JIT)
def active_set_rows(Q, YG, F, passive):
    """Lawson–Hanson active set for every row of ``YG``, each with its own Gram matrix.

    Row ``i`` solves ``min_{x ≥ 0} ½ xᵀ Q[i] x − YG[i] · x`` (e.g. masked NMF, where
    each row sees a different subset of the data); otherwise as ``active_set``.

    Parameters
    ----------
    Q : (r, k, k) float32 or float64 array
        C-contiguous; ``Q[i]`` symmetric PSD, possibly singular. Variables with
        ``Q[i][j, j] ≤ 0`` are fixed at 0 in row ``i``.
    YG : (r, k) array
        The linear terms, of ``Q``'s dtype.
    F : (r, k) array
        Receives the solutions, of ``Q``'s dtype.
    passive : (r, k) bool array
        The warm-start passive set of each row; overwritten with the final one.
    """
    G, Y, X, tau, rows = _prepare_rows(Q, YG, F, passive)
    _active_set_rows(G, Y, X, passive, tau, rows)
    _store_rows(X, F)


@njit(**JIT)
def bpp_rows(Q, YG, F, passive):
    """Block principal pivoting (Kim & Park 2011) for every row of ``YG``, each with its
    own Gram matrix.

    Row ``i`` solves ``min_{x ≥ 0} ½ xᵀ Q[i] x − YG[i] · x``. Rows no longer share a
    factorisation, so there is no column grouping: each row runs Algorithm 1 on its own
    (``_bpp_row``, the same exchange rule as ``bpp``) and finishes with Lawson–Hanson if
    still infeasible after ``4k + 30`` exchanges. ``passive`` all False is Kim & Park's
    cold start x = 0.

    Parameters
    ----------
    Q : (r, k, k) float32 or float64 array
        C-contiguous; ``Q[i]`` symmetric PSD, possibly singular. Variables with
        ``Q[i][j, j] ≤ 0`` are fixed at 0 in row ``i``.
    YG : (r, k) array
        The linear terms, of ``Q``'s dtype.
    F : (r, k) array
        Receives the solutions, of ``Q``'s dtype.
    passive : (r, k) bool array
        The warm-start passive set of each row; overwritten with the final one.
    """
    G, Y, X, tau, rows = _prepare_rows(Q, YG, F, passive)
    _bpp_rows(G, Y, X, passive, tau, rows)
    _store_rows(X, F)


# --------------------------------------------------------------------------- coordinate descent


@njit(**JIT)
def _fast_rows(Q, YG, F, rows, usable, tau, full, L_full, inv_full):
    """The FAST start (see ``fast``) for each of ``rows``, from the shared full factor."""
    k = Q.shape[0]
    idx = np.empty(k, dtype=np.int64)
    L = np.empty((k, k))
    inv = np.empty(k)
    u = np.empty(k)
    s = np.empty(k)
    c = np.empty(k)
    keep = np.empty(k, dtype=np.bool_)
    U = np.empty((k, rows.size))
    S = np.empty((k, rows.size))
    n_full = full.size
    _solve_many(L_full, inv_full, full, n_full, YG, rows, U, S)
    for a in range(rows.size):
        i = rows[a]
        p = n_full
        for t in range(p):
            idx[t] = full[t]
            s[t] = S[t, a]
        first = _first_nonpositive(s, p, keep)
        if first < p:
            _load_row(YG, i, c)
            for t in range(p):
                u[t] = U[t, a]
            # _remove keeps the rows of the factor before the first removed variable
            for t in range(first):
                L[t, : t + 1] = L_full[t, : t + 1]
                inv[t] = inv_full[t]
            while first < p:
                p = _remove(Q, c, idx, p, L, inv, u, keep, tau)
                _backward(L, inv, p, u, s)
                first = _first_nonpositive(s, p, keep)
        for j in range(k):
            F[i, j] = 0.0
        for t in range(p):
            F[i, idx[t]] = s[t]


@njit(**JIT)
def _full_factor(Q, usable, tau):
    """The usable variables and the factor of ``Q`` restricted to them."""
    k = Q.shape[0]
    full = np.empty(k, dtype=np.int64)
    n = 0
    for j in range(k):
        if usable[j]:
            full[n] = j
            n += 1
    L = np.empty((k, k))
    inv = np.empty(k)
    _factor_rows(Q, full, 0, n, L, inv, tau)
    return full[:n], L, inv


@njit(**PARALLEL_JIT)
def _fast(Q, Y, X, usable, tau, rows):
    """The parallel part of ``fast``, in float64 (compiled once for all dtypes)."""
    full, L_full, inv_full = _full_factor(Q, usable, tau)
    for b in prange((rows.size + CHUNK - 1) // CHUNK):
        _fast_rows(Q, Y, X, rows[b * CHUNK : (b + 1) * CHUNK], usable, tau, full, L_full, inv_full)


@njit(**JIT)
def fast(GtG, YG, F):
    """The FAST approximation that RcppML starts coordinate descent from (``fast_nnls``).

    Per row: the unconstrained solution over all usable variables, then the variables
    that come out ≤ 0 are removed and the rest re-solved until all are positive (the
    warm start of Lawson–Hanson from the full passive set). Feasible always, exact when
    the guessed passive set is the optimal one. The factor of the full set is shared.
    """
    Q, tau, usable, rows, d, Y, X = _prepare(GtG, YG, F, False)
    _fast(Q, Y, X, usable, tau, rows)
    _store(X, d, F)


@njit(**JIT)
def _dot(a, b):
    """``a · b``."""
    t = 0.0
    for j in range(a.size):
        t += a[j] * b[j]
    return t


@njit(**JIT)
def _kkt_holds(x, w, usable, toly):
    """Whether ``x`` (≥ 0) with negative gradient ``w = c − Qx`` satisfies the KKT
    conditions to ``toly``: ``|w_j| ≤ toly`` where ``x_j > 0``, ``w_j ≤ toly`` where 0."""
    for j in range(x.size):
        if usable[j] and (w[j] > toly or (x[j] > 0.0 and w[j] < -toly)):
            return False
    return True


@njit(**JIT)
def _half_objective(Q, c, x, g):
    """``½ xᵀQx − cᵀx``, with ``g = Qx − c`` filled in on the way (all k entries)."""
    k = c.size
    f = 0.0
    for j in range(k):
        g[j] = _gradient(Q, x, c, j)
        f += 0.5 * x[j] * (g[j] - c[j])
    return f


@njit(**JIT)
def _polish(Q, c, cmax, usable, tau, x, w, z, y, P, idx, L, inv, u, s, keep):
    """The exact polish of CD's iterate ``x`` (negative gradient ``w = c − Qx``) into ``z``.

    Returns ``(use_z, settled)``: whether ``z`` should replace ``x``, and whether the
    result (``z`` if used, else ``x``) satisfies the KKT conditions, i.e. is the optimum.

    This is an active-set refinement seeded from coordinate descent's support. CD here
    is the sequential coordinate-wise NNLS of Franc, Hlaváč & Navara (2005), as in
    RcppML, which pairs it with the FAST active-set guess (CD + FAST: a cheap support
    guess combined with exact solves); here the exact solves refine what CD found. CD
    identifies the support long before it converges on it (it needs ~cond(A)² sweeps to
    resolve near-dependent columns), so the unconstrained minimiser on that support
    (Cholesky with zero pivots dropped) is usually the optimum. Lawson–Hanson from
    ``x``: its inner loop moves towards that minimiser (dropping the variables that
    reach 0), then at most ``POLISH_ROUNDS`` variables enter. It stops at the optimum
    when the KKT conditions hold; unsettled, its iterate is still no worse than ``x``
    (LH only decreases the objective). ``z`` is used unless its objective is above
    ``x``'s (a guard against rounding on near-dependent columns).
    """
    k = c.size
    if _kkt_holds(x, w, usable, KKT_TOL * cmax):
        return False, True  # x is already optimal (e.g. the FAST start was exact)
    f_x = -0.5 * _dot(x, c) - 0.5 * _dot(x, w)  # ½xᵀQx − cᵀx with w = c − Qx
    for j in range(k):
        z[j] = x[j]
        P[j] = x[j] > 0.0
    settled = _lawson_hanson(
        Q, c, cmax, usable, tau, P, z, idx, L, inv, u, s, keep, POLISH_ROUNDS, True
    )
    f_z = _half_objective(Q, c, z, y)
    if f_z <= f_x + 1e-12 * max(abs(f_z), abs(f_x)):
        return True, settled
    return False, False


@njit(**JIT)
def _cd_rows(Q, YG, F, rows, usable, tau, tol, max_iter, sweeps):
    """Coordinate descent and its polish (see ``cd``) for each of ``rows``."""
    k = Q.shape[0]
    c = np.empty(k)
    x = np.empty(k)
    w = np.empty(k)
    z = np.empty(k)
    y = np.empty(k)
    idx = np.empty(k, dtype=np.int64)
    L = np.empty((k, k))
    inv = np.empty(k)
    u = np.empty(k)
    s = np.empty(k)
    keep = np.empty(k, dtype=np.bool_)
    P = np.empty(k, dtype=np.bool_)
    for i in rows:
        cmax = _load_row(YG, i, c)
        for j in range(k):
            x[j] = max(F[i, j], 0.0) if usable[j] else 0.0
        for j in range(k):
            w[j] = -_gradient(Q, x, c, j)
        use_z = False
        settled = max_iter == 0  # no sweeps asked for: the start comes back as it is
        next_try = POLISH_FIRST
        for it in range(max_iter):
            change = 0.0
            xmax = 0.0
            for j in range(k):
                if not usable[j]:
                    continue
                new = max(x[j] + w[j] / Q[j, j], 0.0)
                d = new - x[j]
                if d != 0.0:
                    x[j] = new
                    for t in range(k):  # Q is symmetric: row j is column j
                        w[t] -= Q[j, t] * d
                    change = max(change, abs(d))
                xmax = max(xmax, new)
            sweeps[i] = it + 1
            if change <= tol * xmax:
                break
            if it + 1 == next_try and it + 1 < max_iter:
                # CD is slow (ill-conditioned): try the polish now and then, and stop
                # as soon as it finds the optimum; else sweep on from CD's own iterate.
                next_try *= 4
                use_z, settled = _polish(
                    Q, c, cmax, usable, tau, x, w, z, y, P, idx, L, inv, u, s, keep
                )
                if settled:
                    break
        if not settled:
            use_z, settled = _polish(
                Q, c, cmax, usable, tau, x, w, z, y, P, idx, L, inv, u, s, keep
            )
        for j in range(k):
            F[i, j] = z[j] if use_z else x[j]


@njit(**PARALLEL_JIT)
def _cd(Q, Y, X, usable, tau, tol, max_iter, rows, sweeps):
    """The parallel part of ``cd``, in float64 (compiled once for all dtypes)."""
    for b in prange((rows.size + CHUNK - 1) // CHUNK):
        _cd_rows(Q, Y, X, rows[b * CHUNK : (b + 1) * CHUNK], usable, tau, tol, max_iter, sweeps)


@njit(**JIT)
def cd(GtG, YG, F, tol, max_iter):
    """Coordinate descent (as in RcppML's ``nnls``) from the given ``F``, row by row,
    then an exact polish on the support it found.

    Each sweep sets ``x_j ← max(0, x_j + w_j / Q_jj)`` for j = 0 … k−1, keeping the
    negative gradient ``w = c − Qx`` up to date. A row stops when the largest change in
    a sweep is at most ``tol`` times its largest entry, or after ``max_iter`` sweeps.
    Plain CD needs about cond(A)² sweeps on ill-conditioned problems, so the sweeps are
    followed by a polish (``_polish``): Lawson–Hanson started from CD's iterate (exact
    solves on its support) for at most ``POLISH_ROUNDS`` entering variables; it reaches
    the optimum whenever CD's support is within that many changes of the optimal one,
    and its result replaces CD's unless its objective is higher. A row still sweeping
    after 16, 64, 256, … sweeps tries the polish then and stops if that finds the
    optimum. ``max_iter = 0`` returns the (clipped) start unchanged. Returns the
    largest number of sweeps any row made.
    """
    Q, tau, usable, rows, d, Y, X = _prepare(GtG, YG, F, True)
    sweeps = np.zeros(rows.size, dtype=np.int64)
    _cd(Q, Y, X, usable, tau, tol, max_iter, rows, sweeps)
    _store(X, d, F)
    return sweeps.max() if rows.size > 0 else 0
