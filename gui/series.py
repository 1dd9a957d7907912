"""The numbers behind the live plots, without Qt: growing series, their smoothing, and view ranges.

``Series`` keeps (step, elapsed seconds, value) points in arrays that double when full, and an
exponential moving average (``ema``) computed only for the points added since it was last read.
``sticky_range`` picks a view range that holds still while the data stays inside it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ema", "Series", "sticky_range"]


def ema(x: np.ndarray, alpha: float, prev: float | None = None) -> np.ndarray:
    """Exponential moving average s_i = α·s_{i−1} + (1−α)·x_i, vectorised in blocks.

    ``prev`` is s_{−1} (None: start at the first value). Non-finite inputs are skipped (the
    average carries over them) and come out as NaN, so gaps stay visible.
    """
    x = np.asarray(x, dtype=np.float64)
    if alpha <= 0 or len(x) == 0:
        return x.copy()
    finite = np.isfinite(x)
    if not finite.all():
        idx = np.maximum.accumulate(np.where(finite, np.arange(len(x)), -1))
        fill = prev if prev is not None and math.isfinite(prev) else 0.0
        x = np.where(idx >= 0, x[np.maximum(idx, 0)], fill)
    if prev is None or not math.isfinite(prev):
        prev = float(x[0])
    # Within a block, s_i = α^{i+1}·prev + (1−α)·α^i·Σ_{j≤i} α^{−j}·x_j; blocks keep α^{−j} finite.
    k_max = 256 if alpha >= 0.1 else max(8, int(250 / -math.log10(alpha)))
    pw = alpha ** np.arange(k_max, dtype=np.float64)
    out = np.empty_like(x)
    for start in range(0, len(x), k_max):
        blk = x[start:start + k_max]
        p = pw[:len(blk)]
        s = alpha * p * prev + (1 - alpha) * p * np.cumsum(blk / p)
        out[start:start + len(blk)] = s
        prev = float(s[-1])
    out[~finite] = np.nan
    return out


class Series:
    """Points (step, elapsed seconds, value) in arrays that double when full, plus a smoothed copy."""

    def __init__(self, capacity: int = 256):
        self._buf = np.empty((4, capacity), dtype=np.float64)  # step, time, raw, smoothed
        self.n = 0
        self._smoothed_upto = 0
        self.alpha = 0.0

    def __len__(self) -> int:
        return self.n

    def append(self, step: float, t: float, value: float) -> None:
        if self.n == self._buf.shape[1]:
            grown = np.empty((4, 2 * self.n), dtype=np.float64)
            grown[:, :self.n] = self._buf[:, :self.n]
            self._buf = grown
        self._buf[:3, self.n] = (step, t, value if math.isfinite(value) else np.nan)
        self.n += 1

    def truncate_after(self, step: float) -> None:
        keep = int(np.searchsorted(self._buf[0, :self.n], step, side="right"))
        self.n = keep
        self._smoothed_upto = min(self._smoothed_upto, keep)

    def set_alpha(self, alpha: float) -> None:
        if alpha != self.alpha:
            self.alpha = alpha
            self._smoothed_upto = 0

    def x(self, axis: str) -> np.ndarray:
        return self._buf[0 if axis == "step" else 1, :self.n]

    def raw(self) -> np.ndarray:
        return self._buf[2, :self.n]

    def smoothed(self) -> np.ndarray:
        """The smoothed values; only the points added since the last call are computed."""
        k = self._smoothed_upto
        if k < self.n:
            prev = None
            if k > 0:
                prev = self._buf[3, k - 1]
                prev = None if not math.isfinite(prev) else prev
            self._buf[3, k:self.n] = ema(self._buf[2, k:self.n], self.alpha, prev)
            self._smoothed_upto = self.n
        return self._buf[3, :self.n]


def sticky_range(lo: float, hi: float, current: tuple[float, float] | None, *, ahead: float = 0.0,
                 pad: float = 0.06, shrink: float = 0.5) -> tuple[float, float] | None:
    """A view range for data in [lo, hi] that holds still while the data stays inside it.

    Returns the new range, or None to keep ``current``. A new range is chosen only when the
    data leaves the current one or fills less than ``shrink`` of it; it is padded by ``pad``
    of the span, and by ``ahead`` of it above ``hi`` (room for the steps to come). Keeping
    the range still matters: every change makes pyqtgraph re-lay and re-paint both axes
    (text), which was most of the GUI thread's time during training.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    if current is not None:
        c0, c1 = current
        if c0 <= lo and hi <= c1 and (hi - lo) >= shrink * (c1 - c0):
            return None
    span = hi - lo
    if span <= 0:
        span = max(abs(hi) * 0.1, 1.0)
        lo, hi = lo - span / 2, hi + span / 2
    return lo - pad * span, hi + (pad + ahead) * span
