"""Slow, obviously correct references that the kernels are compared against."""

import numpy as np


def objective(X, W, H, beta=2.0, l1_W=0.0, l1_H=0.0, l2_W=0.0, l2_H=0.0, mask=None):
    """The penalised loss of API.md §9, from the dense WH, over the entries where
    ``mask`` (default: all) is True."""
    WH = W.astype(np.float64) @ H.astype(np.float64)
    mask = np.ones(WH.shape, bool) if mask is None else np.asarray(mask, bool)
    X, WH = np.asarray(X, dtype=np.float64)[mask], WH[mask]
    if beta == 2:
        loss = 0.5 * np.sum((X - WH) ** 2)
    elif beta == 1:
        pos = X > 0
        loss = np.sum(WH - X) + np.sum(X[pos] * np.log(X[pos] / WH[pos]))
    elif beta == 0:
        loss = np.sum(X / WH - np.log(X / WH) - 1)
    else:
        loss = np.sum((X**beta + (beta - 1) * WH**beta - beta * X * WH ** (beta - 1)) / (beta * (beta - 1)))
    return loss + l1_W * W.sum() + l1_H * H.sum() + 0.5 * (l2_W * np.sum(W**2) + l2_H * np.sum(H**2))


def hals_sweep(F, YG, GtG):
    """One HALS sweep, column by column as Cichocki & Phan write it."""
    F = F.astype(np.float64).copy()
    for t in range(F.shape[1]):
        if GtG[t, t] <= 0:
            F[:, t] = 0
            continue
        F[:, t] = np.maximum(0, F[:, t] + (YG[:, t] - F @ GtG[:, t]) / GtG[t, t])
    return F


def hals_sweeps_rows(F, YG, Q, sweeps, delta):
    """HALS sweeps of each row f of F against its Gram (``Q`` (1, k, k) shared or one per
    row), at most ``sweeps``, a row stopping once its squared change is ≤ ``delta``
    times its first (dead components, zeroed, do not count as change). Returns the rows
    and the number of sweeps each made."""
    F = F.astype(np.float64).copy()
    made = np.zeros(F.shape[0], dtype=int)
    for i in range(F.shape[0]):
        q = Q[0] if len(Q) == 1 else Q[i]
        alive = np.diagonal(q) > 0
        first = None
        for _ in range(sweeps):
            new = hals_sweep(F[i:i + 1], YG[i:i + 1], q)[0]
            change = np.sum((new - F[i])[alive] ** 2)
            F[i] = new
            made[i] += 1
            first = change if first is None else first
            if change <= delta * first:
                break
    return F, made


def frobenius_mu_rows(F, YG, Q, l1, l2, repeats, delta):
    """Lee–Seung updates ``f ← f ∘ yg / (f Q_i + l1 + l2 f)`` of each row f of F, at most
    ``repeats`` times, a row stopping once its squared change is ≤ ``delta`` times its
    first; ``Q`` is (1, k, k) or one Gram per row (r, k, k). No floor."""
    F = F.astype(np.float64).copy()
    for i in range(F.shape[0]):
        q = Q[0] if len(Q) == 1 else Q[i]
        first = None
        for _ in range(repeats):
            new = F[i] * np.maximum(YG[i], 0) / (F[i] @ q + l1 + l2 * F[i])
            change = np.sum((new - F[i]) ** 2)
            F[i] = new
            first = change if first is None else first
            if change <= delta * first:
                break
    return F


def beta_mu_step(X, W, H, beta):
    """One multiplicative update of W for D_β(X‖WH) (Févotte & Idier 2011, with γ(β))."""
    WH = W @ H
    gamma = 1 / (2 - beta) if beta < 1 else (1 / (beta - 1) if beta > 2 else 1.0)
    num = (X * WH ** (beta - 2)) @ H.T
    den = WH ** (beta - 1) @ H.T
    return W * (num / den) ** gamma


def projected_gradient_norm(X, W, H, mask=None, l1_W=0.0, l1_H=0.0, l2_W=0.0, l2_H=0.0):
    """‖P(∇f)‖ for f = ½‖M ∘ (X − WH)‖² + penalties at (W, H) (M: ``mask``, default all
    True; penalties ``l1‖F‖₁ + ½l2‖F‖²`` per factor)."""
    R = W @ H - X if mask is None else np.where(mask, W @ H - X, 0.0)
    gW = R @ H.T + l1_W + l2_W * W
    gH = W.T @ R + l1_H + l2_H * H
    pW = np.where(W > 0, gW, np.minimum(gW, 0))
    pH = np.where(H > 0, gH, np.minimum(gH, 0))
    return np.sqrt(np.sum(pW**2) + np.sum(pH**2))


def rank5_example(seed=0):
    """The 50×100 exactly rank-5 integer matrix ``xL @ xKer @ xR``, entries from 0..10."""
    rng = np.random.default_rng(seed)
    xL = rng.integers(0, 11, (50, 5))
    xKer = rng.integers(0, 11, (5, 5))
    xR = rng.integers(0, 11, (5, 100))
    return (xL @ xKer @ xR).astype(np.float64)
