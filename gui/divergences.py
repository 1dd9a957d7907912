"""The Distances tab's numbers, without Qt: divergence curves of a case, their jumps, and fixed axes.

Everything comes from the case's description in ``engine.wasserstein.distances``; this module only
samples it over the slider's range for drawing.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.wasserstein.distances import CASES, Case

__all__ = ["divergence_curves", "isolated_points", "view_limits", "DIV_LABELS", "CURVE_POINTS"]

DIV_LABELS = {"tv": "TV", "kl": "KL", "js": "JS", "w": "W"}
CURVE_POINTS = 401


def divergence_curves(name: str, n: int = CURVE_POINTS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The exact TV, KL, JS and W of case ``name`` over its slider range (KL may hold inf)."""
    lo, hi = CASES[name].slider_range
    xs = np.linspace(lo, hi, n)
    xs[np.abs(xs) < 1e-12] = 0.0  # θ = 0 exactly, where the parallel lines' divergences jump
    exact = CASES[name].exact
    rows = [exact(float(x)) for x in xs]
    return xs, {k: np.array([getattr(r, k) for r in rows], dtype=np.float64) for k in DIV_LABELS}


def isolated_points(y: np.ndarray, tol: float) -> np.ndarray:
    """Indices where y differs from both neighbours by more than ``tol`` while they agree: a jump at one point."""
    idx = []
    for i in range(1, len(y) - 1):
        a, b, c = y[i - 1], y[i], y[i + 1]
        if abs(a - c) <= tol and abs(b - a) > tol and abs(b - c) > tol:
            idx.append(i)
    return np.array(idx, dtype=int)


def view_limits(case: Case, lo: float, hi: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Fixed axes for a case over its whole parameter range, so moving the slider moves the samples."""
    gen = torch.Generator().manual_seed(0)
    pts = []
    for param in (lo, hi, case.default_param if lo <= case.default_param <= hi else lo):
        p, q = case.sample(4000, float(param), gen)
        pts += [p.numpy(), q.numpy()]
    allpts = np.concatenate(pts)
    lims = []
    for d in range(allpts.shape[1]):
        a, b = np.quantile(allpts[:, d], [0.002, 0.998])
        pad = max(0.1 * (b - a), 0.25)
        lims.append((float(a - pad), float(b + pad)))
    if len(lims) == 1:
        lims.append((0.0, 1.0))
    return lims[0], lims[1]
