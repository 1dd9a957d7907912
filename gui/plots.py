"""Live training plots: losses, the Wasserstein estimate, the gradient-penalty norm, and quality (PSNR).

The panel keeps its own copy of the numbers in growing numpy arrays (amortised doubling);
it holds no training state. Curves are created once and fed with ``setData``; a throttle
redraws at most 10 times a second and only what changed, and pyqtgraph's peak
downsampling with clip-to-view keeps a 100k-step run smooth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from engine.config import Config
from engine.training.reports import EvalReport, ProgressReport

from .util import Throttle

__all__ = ["TrainingPlots", "Series", "ema"]

BACKGROUND = "#16181d"
FOREGROUND = "#9aa3b2"
GRID_ALPHA = 0.12
# Live curves use cosmetic 1-px pens: Qt strokes wider antialiased pens on noisy data 10–100× slower
# (578 ms vs 2.4 ms for 6 curves of 250 noisy points), and that time blocks the GUI thread.
PEN_WIDTH = 1.0


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


@dataclass(frozen=True)
class CurveSpec:
    key: str
    label: str
    color: str
    parts: tuple[str, ...]          # metrics summed into this curve
    plot: str                       # which plot it belongs to
    dashed: bool = False
    markers: bool = False
    smooth: bool = True
    toggle: bool = False            # has a checkbox


CURVES = (
    CurveSpec("G_A", "G_A (A→B adv.)", "#5b9cff", ("G_A",), "loss", toggle=True),
    CurveSpec("G_B", "G_B (B→A adv.)", "#b18cff", ("G_B",), "loss", toggle=True),
    CurveSpec("D_A", "D_A", "#ff8a5c", ("D_A",), "loss", toggle=True),
    CurveSpec("D_B", "D_B", "#ffc857", ("D_B",), "loss", toggle=True),
    CurveSpec("cycle", "cycle (A+B)", "#43d19e", ("cycle_A", "cycle_B"), "loss", toggle=True),
    CurveSpec("identity", "identity (A+B)", "#8f99a8", ("idt_A", "idt_B"), "loss", toggle=True),
    CurveSpec("w_B", "W A→B (w_B)", "#5b9cff", ("w_B",), "w"),
    CurveSpec("w_A", "W B→A (w_A)", "#ff8a5c", ("w_A",), "w"),
    CurveSpec("w_B_val", "W A→B held-out", "#5b9cff", ("w_B_val",), "w", dashed=True, markers=True, smooth=False),
    CurveSpec("w_A_val", "W B→A held-out", "#ff8a5c", ("w_A_val",), "w", dashed=True, markers=True, smooth=False),
    CurveSpec("gp_B", "‖∇D_B‖", "#5b9cff", ("gp_grad_norm_B",), "gp"),
    CurveSpec("gp_A", "‖∇D_A‖", "#ff8a5c", ("gp_grad_norm_A",), "gp"),
    CurveSpec("gp_B_val", "‖∇D_B‖ held-out", "#5b9cff", ("gp_grad_norm_B_val",), "gp", dashed=True, markers=True,
              smooth=False),
    CurveSpec("gp_A_val", "‖∇D_A‖ held-out", "#ff8a5c", ("gp_grad_norm_A_val",), "gp", dashed=True, markers=True,
              smooth=False),
    CurveSpec("psnr_AtoB", "A→B vs truth", "#43d19e", ("psnr_AtoB",), "quality", markers=True, smooth=False),
    CurveSpec("psnr_BtoA", "B→A vs truth", "#b18cff", ("psnr_BtoA",), "quality", markers=True, smooth=False),
    CurveSpec("psnr_identity", "do nothing (baseline)", "#8f99a8", ("psnr_identity",), "quality", dashed=True,
              smooth=False),
)
_A2B, _B2A, _GREY = "#5b9cff", "#ff8a5c", "#8f99a8"


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


def _key(color: str, text: str) -> str:
    return f"<span style='color:{color}'>■ {text}</span>"


# The small plots carry their key in the title (a legend would cover their data).
PLOT_TITLES = {
    "loss": "Losses",
    "w": f"Wasserstein estimate &nbsp; {_key(_A2B, 'A→B')} &nbsp;{_key(_B2A, 'B→A')} &nbsp;"
         f"<span style='color:{_GREY}'>- - held-out</span>",
    "gp": f"Critic gradient norm, target 1 &nbsp; {_key(_A2B, 'D_B')} &nbsp;{_key(_B2A, 'D_A')}",
    "quality": f"PSNR against ground truth (dB) &nbsp; {_key('#43d19e', 'A→B')} &nbsp;{_key('#b18cff', 'B→A')} "
               f"&nbsp;<span style='color:{_GREY}'>- - do nothing</span>",
}
LEGENDS = ("loss",)


def _style_plot(pw: pg.PlotWidget, title: str, ylabel: str) -> pg.PlotItem:
    pw.setBackground(BACKGROUND)
    item = pw.getPlotItem()
    item.setTitle(title, color="#d7dce4", size="10pt")
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setLabel("left", ylabel, color=FOREGROUND)
    item.setLabel("bottom", "step", color=FOREGROUND)
    for axis in ("left", "bottom"):
        ax = item.getAxis(axis)
        # The axes draw the grid across the plot, so every curve update repainted their text too;
        # cached, they are re-rendered only when the range changes (rarely: see sticky_range).
        ax.setCacheMode(ax.CacheMode.DeviceCoordinateCache)
        ax.enableAutoSIPrefix(False)
        ax.setPen(pg.mkPen("#3a404b"))
        ax.setTextPen(pg.mkPen(FOREGROUND))
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    pw.setMinimumHeight(120)
    return item


class TrainingPlots(QWidget):
    """Losses, W estimate (Wasserstein objectives), gradient-penalty norm (wgan-gp) and PSNR (with ground truth)."""

    def __init__(self, config: Config, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPlots")
        self._config = config
        self._axis = "step"
        self._alpha = 0.6
        self._series: dict[str, Series] = {}
        self._dirty: set[str] = set()
        self._throttle = Throttle(self._redraw, 10.0, self)
        # Plots whose view follows the data (sticky_range) until the user pans or zooms; pyqtgraph's
        # "A" button hands the view back to us.
        self._follow: dict[str, bool] = {}
        self._ranges: dict[str, tuple[tuple[float, float], tuple[float, float]] | None] = {}

        # --- toolbar ---
        bar = QHBoxLayout()
        bar.setSpacing(10)
        bar.addWidget(QLabel("Smoothing"))
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("smoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(int(self._alpha * 100))
        self.smoothing.setFixedWidth(110)
        self.smoothing.setToolTip("Exponential moving average of the plotted curves (0: raw values).")
        self.smoothing_label = QLabel(f"{self._alpha:.2f}")
        self.smoothing_label.setMinimumWidth(30)
        bar.addWidget(self.smoothing)
        bar.addWidget(self.smoothing_label)
        bar.addSpacing(8)
        bar.addWidget(QLabel("x-axis"))
        self.axis_box = QComboBox()
        self.axis_box.setObjectName("axisBox")
        self.axis_box.addItem("step", "step")
        self.axis_box.addItem("time (s)", "time")
        bar.addWidget(self.axis_box)
        bar.addSpacing(8)
        self.toggles: dict[str, QCheckBox] = {}
        for spec in CURVES:
            if spec.toggle:
                cb = QCheckBox(spec.key)
                cb.setChecked(True)
                cb.setToolTip(f"Show {spec.label}")
                cb.setStyleSheet(f"QCheckBox {{ color: {spec.color}; }}")
                cb.toggled.connect(lambda on, k=spec.key: self._on_toggle_toggled(k, on))
                self.toggles[spec.key] = cb
                bar.addWidget(cb)
        bar.addStretch(1)

        # --- plots ---
        self.plot_widgets: dict[str, pg.PlotWidget] = {}
        self._items: dict[str, pg.PlotItem] = {}
        for key, ylabel in (("loss", "loss"), ("w", "W"), ("gp", "‖∇‖"), ("quality", "dB")):
            pw = pg.PlotWidget()
            pw.setObjectName(f"plot_{key}")
            self._items[key] = _style_plot(pw, PLOT_TITLES[key], ylabel)
            self.plot_widgets[key] = pw
            vb = self._items[key].getViewBox()
            vb.disableAutoRange()
            self._follow[key] = True
            self._ranges[key] = None
            vb.sigRangeChangedManually.connect(lambda *_a, k=key: self._on_view_range_changed_manually(k))
            vb.sigStateChanged.connect(lambda _vb, k=key: self._on_view_state_changed(k))
        self._items["gp"].addLine(y=1.0, pen=pg.mkPen("#5d6573", width=1, style=Qt.PenStyle.DotLine))
        self.curves: dict[str, pg.PlotDataItem] = {}
        for key in LEGENDS:
            self._items[key].addLegend(offset=(-6, 6), brush=pg.mkBrush(22, 24, 29, 210), pen=pg.mkPen("#2c313a"),
                                       labelTextColor="#c9d0da", labelTextSize="8pt", colCount=3)
        for spec in CURVES:
            pen = pg.mkPen(spec.color, width=PEN_WIDTH,
                           style=Qt.PenStyle.DashLine if spec.dashed else Qt.PenStyle.SolidLine)
            kw = dict(symbol="o", symbolSize=5, symbolBrush=spec.color, symbolPen=None) if spec.markers else {}
            curve = self._items[spec.plot].plot(name=spec.label, pen=pen, **kw)
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.curves[spec.key] = curve
            self._series[spec.key] = Series()
            self._series[spec.key].set_alpha(self._alpha)

        self.w_note = QLabel()
        self.w_note.setObjectName("plotNote")
        self.w_note.setWordWrap(True)
        self.w_note.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # Losses on the left; W (with the GP norm under it) and quality on the right, each
        # shown only when it has something to say.
        self._w_box = QWidget()
        w_lay = QVBoxLayout(self._w_box)
        w_lay.setContentsMargins(0, 0, 0, 0)
        w_lay.setSpacing(2)
        w_lay.addWidget(self.plot_widgets["w"], 3)
        w_lay.addWidget(self.plot_widgets["gp"], 2)
        self.plot_widgets["gp"].setMinimumHeight(100)
        self._right = QSplitter(Qt.Orientation.Vertical)
        self._right.setChildrenCollapsible(False)
        self._right.addWidget(self._w_box)
        self._right.addWidget(self.plot_widgets["quality"])
        self._right.setStretchFactor(0, 5)
        self._right.setStretchFactor(1, 3)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.plot_widgets["loss"])
        self.splitter.addWidget(self._right)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addLayout(bar)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.w_note)

        self.smoothing.valueChanged.connect(self._on_smoothing_value_changed)
        self.axis_box.currentIndexChanged.connect(self._on_axis_box_changed)
        self.set_config(config)
        self._update_visibility()

    # --- feeding ---------------------------------------------------------------------------
    def reset(self, config: Config) -> None:
        """Forget all points (a new run)."""
        for s in self._series.values():
            s.truncate_after(-math.inf)
        self._dirty.update(self._series)
        self.set_config(config)
        self._throttle.mark()

    def set_config(self, config: Config) -> None:
        """The objective decides whether a W estimate exists; the numbers already plotted stay."""
        self._config = config
        self._update_visibility()

    def add_progress(self, report: ProgressReport) -> None:
        self._add(report.step, report.elapsed_s, report.metrics, val=False)

    def add_eval(self, report: EvalReport) -> None:
        self._add(report.step, report.elapsed_s, report.metrics, val=True)

    def load_rows(self, rows: Iterable[Mapping]) -> None:
        """Rebuild from a run folder's metrics.jsonl rows ({"type": "progress"|"eval", "step", "time", …})."""
        for row in rows:
            kind = row.get("type")
            if kind in ("progress", "eval"):
                metrics = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                self._add(int(row.get("step", 0)), float(row.get("time", 0.0)), metrics, val=kind == "eval")

    def truncate_after(self, step: int) -> None:
        """Drop points after ``step`` (a run resumed from an earlier checkpoint rewrites them)."""
        for key, s in self._series.items():
            n = len(s)
            s.truncate_after(step)
            if len(s) != n:
                self._dirty.add(key)
        self._throttle.mark()

    def _add(self, step: int, t: float, metrics: Mapping[str, float], *, val: bool) -> None:
        for spec in CURVES:
            parts = spec.parts
            if all(p in metrics for p in parts):
                self._series[spec.key].append(step, t, float(sum(metrics[p] for p in parts)))
                self._dirty.add(spec.key)
        self._update_visibility()
        self._throttle.mark()

    # --- queries (tests, smoke mode) -------------------------------------------------------
    def point_count(self, key: str) -> int:
        return len(self._series[key])

    def shown_count(self, key: str) -> int:
        """Points the curve actually holds (after the last redraw)."""
        x, _ = self.curves[key].getOriginalDataset()
        return 0 if x is None else len(x)

    def flush(self) -> None:
        self._throttle.flush()

    # --- drawing ---------------------------------------------------------------------------
    def _redraw(self) -> None:
        plots = set()
        for key in self._dirty:
            s = self._series[key]
            spec = _SPEC[key]
            y = s.smoothed() if spec.smooth else s.raw()
            self.curves[key].setData(s.x(self._axis), y, connect="finite")
            plots.add(spec.plot)
        self._dirty.clear()
        for plot in plots:
            self._follow_data(plot)

    def _follow_data(self, plot: str) -> None:
        """Keep the view on the data without moving it at every redraw (see ``sticky_range``)."""
        if not self._follow[plot]:
            return
        xlo = ylo = math.inf
        xhi = yhi = -math.inf
        for spec in CURVES:
            if spec.plot != plot or not self.curves[spec.key].isVisible() or not len(self._series[spec.key]):
                continue
            s = self._series[spec.key]
            x = s.x(self._axis)
            y = s.smoothed() if spec.smooth else s.raw()
            finite = y[np.isfinite(y)]
            xlo, xhi = min(xlo, float(x[0])), max(xhi, float(x[-1]))
            if len(finite):
                ylo, yhi = min(ylo, float(finite.min())), max(yhi, float(finite.max()))
        cur = self._ranges[plot]
        xr = sticky_range(xlo, xhi, cur[0] if cur else None, ahead=0.2, pad=0.0, shrink=0.6)
        yr = sticky_range(ylo, yhi, cur[1] if cur else None)
        if xr is None and yr is None:
            return
        new = (xr or cur[0], yr or (cur[1] if cur else (0.0, 1.0)))
        self._ranges[plot] = new
        # Programmatic: not a manual range change, and auto-range stays off (no state echo to act on).
        self._items[plot].getViewBox().setRange(xRange=new[0], yRange=new[1], padding=0)

    def _on_view_range_changed_manually(self, plot: str) -> None:
        self._follow[plot] = False  # the user panned or zoomed: leave the view alone

    def _on_view_state_changed(self, plot: str) -> None:
        vb = self._items[plot].getViewBox()
        if any(vb.autoRangeEnabled()):  # pyqtgraph's "A" button: follow the data again, our way
            vb.disableAutoRange()
            self._follow[plot] = True
            self._ranges[plot] = None
            self._dirty.update(s.key for s in CURVES if s.plot == plot)
            self._throttle.mark()

    def _update_visibility(self) -> None:
        wass = self._config.is_wasserstein or len(self._series["w_A"]) > 0
        quality = len(self._series["psnr_AtoB"]) > 0
        self._w_box.setVisible(wass)
        self.plot_widgets["gp"].setVisible(wass and (self._config.objective.gan_mode == "wgan-gp"
                                                     or len(self._series["gp_A"]) > 0))
        self.plot_widgets["quality"].setVisible(quality)
        if (wass or quality) and self._right.isHidden():
            self._right.show()
            width = max(self.splitter.width(), 2)
            self.splitter.setSizes([width // 2, width - width // 2])  # appearing: half the width, not a sliver
        elif not (wass or quality):
            self._right.hide()
        mode = self._config.objective.gan_mode
        self.w_note.setVisible(not wass)
        if not wass:
            self.w_note.setText(f"No Wasserstein estimate: the {mode} losses are not a distance between the "
                                "real and the translated images. Choose wgan-gp (or wgan-clip) under "
                                "Objective to watch W fall live.")

    def _on_toggle_toggled(self, key: str, on: bool) -> None:
        self.curves[key].setVisible(on)

    def _on_smoothing_value_changed(self, value: int) -> None:
        self._alpha = value / 100.0
        self.smoothing_label.setText(f"{self._alpha:.2f}")
        for key, s in self._series.items():
            s.set_alpha(self._alpha)
            if _SPEC[key].smooth:
                self._dirty.add(key)
        self._throttle.mark()

    def _on_axis_box_changed(self, _index: int) -> None:
        self._axis = self.axis_box.currentData()
        for item in self._items.values():
            item.setLabel("bottom", "step" if self._axis == "step" else "elapsed (s)", color=FOREGROUND)
        self._dirty.update(self._series)
        self._throttle.mark()


_SPEC = {s.key: s for s in CURVES}
