"""Live training plots: losses, the W monitor, the gradient-penalty norm, and quality (PSNR).

The W plot is there for every objective: the monitor's held-out estimate of W1 per direction
(``engine.wasserstein.monitor``) with its 95 % interval as a band, the identity's and the
estimator's floor levels as dashed lines, a star on the best checkpoint's evaluation, and the
remaining share of the way in its title. Wasserstein objectives add their training critic's
own estimate on a right-hand axis (its scale is its own: weight clipping reports K·W, K ≪ 1).

The panel keeps its own copy of the numbers in growing numpy arrays (amortised doubling);
it holds no training state. Curves, lines and markers are created once and fed with
``setData``/``setValue``; a throttle redraws at most 10 times a second and only what changed,
and pyqtgraph's peak downsampling with clip-to-view keeps a 100k-step run smooth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from engine.config import Config
from engine.training.reports import EvalReport, ProgressReport
from engine.wasserstein.monitor import Reading

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
    plot: str                       # which plot it belongs to ("critic": the W plot's right-hand axis)
    dashed: bool = False
    markers: bool = False
    smooth: bool = True
    toggle: bool = False            # has a checkbox
    band: bool = False              # an edge of a confidence band: a faint line, filled to its partner
    faint: bool = False             # drawn dimmed (a noisy per-step curve behind the held-out points)


_A2B, _B2A, _GREY = "#5b9cff", "#ff8a5c", "#8f99a8"
_BEST = "#ffd166"     # the best checkpoint's star
_CAUTION = "#e3b341"  # an estimate not to be trusted
WAYS = (("AtoB", "A→B", _A2B), ("BtoA", "B→A", _B2A))  # the monitor's directions: key, name, colour
LEVELS = (("start", "identity"), ("floor", "floor"))  # w_mon_<level>_<way>: the dashed reference lines


def _monitor_curves() -> tuple[CurveSpec, ...]:
    out: list[CurveSpec] = []
    for way, name, color in WAYS:
        out += [CurveSpec(f"mon_{way}", f"W {name} (monitor)", color, (f"w_mon_{way}",), "w", markers=True, smooth=False),
                CurveSpec(f"mon_lo_{way}", f"W {name} 95 % low", color, (f"w_mon_lo_{way}",), "w", smooth=False, band=True),
                CurveSpec(f"mon_hi_{way}", f"W {name} 95 % high", color, (f"w_mon_hi_{way}",), "w", smooth=False,
                          band=True)]
    return tuple(out)


CURVES = (
    CurveSpec("G_A", "G_A (A→B adv.)", "#5b9cff", ("G_A",), "loss", toggle=True),
    CurveSpec("G_B", "G_B (B→A adv.)", "#b18cff", ("G_B",), "loss", toggle=True),
    CurveSpec("D_A", "D_A", "#ff8a5c", ("D_A",), "loss", toggle=True),
    CurveSpec("D_B", "D_B", "#ffc857", ("D_B",), "loss", toggle=True),
    CurveSpec("cycle", "cycle (A+B)", "#43d19e", ("cycle_A", "cycle_B"), "loss", toggle=True),
    CurveSpec("identity", "identity (A+B)", "#8f99a8", ("idt_A", "idt_B"), "loss", toggle=True),
    *_monitor_curves(),
    # The training critic's own estimate (Wasserstein objectives): per step, and on held-out images.
    CurveSpec("w_B", "training critic A→B (w_B)", _A2B, ("w_B",), "critic", faint=True),
    CurveSpec("w_A", "training critic B→A (w_A)", _B2A, ("w_A",), "critic", faint=True),
    CurveSpec("w_B_val", "training critic A→B held-out", _A2B, ("w_B_val",), "critic", dashed=True, markers=True,
              smooth=False),
    CurveSpec("w_A_val", "training critic B→A held-out", _B2A, ("w_A_val",), "critic", dashed=True, markers=True,
              smooth=False),
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
# The plot whose x range (and view) a plot shares: the critic's axis lives in the W plot.
_HOST = {"critic": "w"}


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


def _dim(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


# Every plot carries its key in its title: a legend would cover the data.
PLOT_TITLES = {
    "loss": "Losses &nbsp; " + " &nbsp;".join(_key(s.color, s.key) for s in CURVES if s.plot == "loss"),
    "gp": f"Critic gradient norm, target 1 &nbsp; {_key(_A2B, 'D_B')} &nbsp;{_key(_B2A, 'D_A')}",
    "quality": f"PSNR against ground truth (dB) &nbsp; {_key('#43d19e', 'A→B')} &nbsp;{_key('#b18cff', 'B→A')} "
               f"&nbsp;<span style='color:{_GREY}'>- - do nothing</span>",
}


def _pct(x: float) -> str:
    """A share of the way as a person reads it: 0.183 → "18 %" (below 0, within the floor's noise: "0 %")."""
    return f"{max(0.0, x) * 100:.0f} %" if math.isfinite(x) else "—"


def monitor_title(metrics: Mapping[str, float], best_step: float | None, *, monitor_on: bool = True,
                  critic: bool = False) -> str:
    """The W plot's title (rich text): the remaining share of the way per direction from the latest
    evaluation's monitor readings, a caution where an estimate cannot be trusted, then its key."""
    ways = [w for w in WAYS if f"w_mon_{w[0]}" in metrics]
    if not ways:
        head = ("W monitor · off (Schedule → W monitor)" if not monitor_on else
                "W monitor · no reading yet: one comes with each held-out evaluation")
    else:
        parts = ["W monitor"]
        for i, (way, name, color) in enumerate(ways):
            left = _pct(metrics.get(f"w_mon_remaining_{way}", math.nan))
            parts.append(f"{_key(color, name)} {left}" + (" of the way left" if i == 0 else ""))
        head = " · ".join(parts)
    cautions = []
    for way, name, _ in ways:
        doubt = Reading.from_metrics(metrics, way).doubt()  # the engine's one rule
        if doubt:
            cautions.append(f"{name} not trustworthy ({doubt})")
    key = [f"<span style='color:{_GREY}'>band: 95 % · - - identity, floor</span>"]
    if best_step is not None and math.isfinite(best_step):
        key.append(f"<span style='color:{_BEST}'>★</span><span style='color:{_GREY}'> best: step "
                   f"{int(best_step):,}</span>")
    if critic:
        key.append(f"<span style='color:{_GREY}'>right: training critic</span>")
    lines = [head]
    if cautions:
        lines.append(f"<span style='color:{_CAUTION}; font-size:8pt'>⚠ " + "; ".join(cautions) + "</span>")
    lines.append("<span style='font-size:8pt'>" + " · ".join(key) + "</span>")
    return "<br>".join(lines)


def _style_axis(ax: pg.AxisItem) -> None:
    # The axes draw the grid across the plot, so every curve update repainted their text too;
    # cached, they are re-rendered only when the range changes (rarely: see sticky_range).
    ax.setCacheMode(ax.CacheMode.DeviceCoordinateCache)
    ax.enableAutoSIPrefix(False)
    ax.setPen(pg.mkPen("#3a404b"))
    ax.setTextPen(pg.mkPen(FOREGROUND))


def _style_plot(pw: pg.PlotWidget, title: str, ylabel: str) -> pg.PlotItem:
    pw.setBackground(BACKGROUND)
    item = pw.getPlotItem()
    item.setTitle(title, color="#d7dce4", size="10pt")
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setLabel("left", ylabel, color=FOREGROUND)
    item.setLabel("bottom", "step", color=FOREGROUND)
    for axis in ("left", "bottom"):
        _style_axis(item.getAxis(axis))
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    pw.setMinimumHeight(120)
    return item


class TrainingPlots(QWidget):
    """Losses, the W monitor (every objective; the training critic's estimate too for Wasserstein
    objectives), gradient-penalty norm (wgan-gp) and PSNR (with ground truth)."""

    def __init__(self, config: Config, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPlots")
        self._config = config
        self._axis = "step"
        self._alpha = 0.6
        self._series: dict[str, Series] = {}
        self._dirty: set[str] = set()
        self._throttle = Throttle(self._redraw, 10.0, self)
        # The W plot's own state: the latest evaluation's monitor readings and the best checkpoint's step.
        self._monitor: dict[str, float] = {}
        self._best_step: float | None = None
        self._monitor_dirty = True
        self._title = ""
        self._critic_shown: bool | None = None
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
        self._views: dict[str, pg.ViewBox] = {}
        for key, ylabel in (("loss", "loss"), ("w", "W₁ (patches)"), ("gp", "‖∇‖"), ("quality", "dB")):
            pw = pg.PlotWidget()
            pw.setObjectName(f"plot_{key}")
            self._items[key] = _style_plot(pw, PLOT_TITLES.get(key, ""), ylabel)
            self.plot_widgets[key] = pw
            vb = self._items[key].getViewBox()
            self._views[key] = vb
            vb.disableAutoRange()
            vb.sigRangeChangedManually.connect(lambda *_a, k=key: self._on_view_range_changed_manually(k))
            vb.sigStateChanged.connect(lambda _vb, k=key: self._on_view_state_changed(k))
        self._items["gp"].addLine(y=1.0, pen=pg.mkPen("#5d6573", width=1, style=Qt.PenStyle.DotLine))
        self._add_critic_view()
        for key in self._views:
            self._follow[key] = True
            self._ranges[key] = None

        self.curves: dict[str, pg.PlotDataItem] = {}
        for spec in CURVES:
            color = _dim(spec.color, 90 if spec.band else 110 if spec.faint else 255)
            pen = pg.mkPen(color, width=PEN_WIDTH,
                           style=Qt.PenStyle.DashLine if spec.dashed else Qt.PenStyle.SolidLine)
            kw = dict(symbol="o", symbolSize=5, symbolBrush=spec.color, symbolPen=None) if spec.markers else {}
            curve = pg.PlotDataItem(name=spec.label, pen=pen, **kw)
            if spec.plot in self._items:
                self._items[spec.plot].addItem(curve)
            else:
                self._views[spec.plot].addItem(curve)
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.curves[spec.key] = curve
            self._series[spec.key] = Series()
            self._series[spec.key].set_alpha(self._alpha)
        self._add_monitor_items()
        # The W plot's title is a word-wrapping label over it: it has up to three lines, and a
        # pyqtgraph title would hold the plot at least as wide as its longest one.
        self._items["w"].setTitle(None)
        self.w_title = QLabel()
        self.w_title.setObjectName("wPlotTitle")
        self.w_title.setTextFormat(Qt.TextFormat.RichText)
        self.w_title.setWordWrap(True)
        self.w_title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.w_title.setStyleSheet(f"QLabel {{ background: {BACKGROUND}; color: #d7dce4; font-size: 10pt; "
                                   "padding: 5px 8px 2px 8px; }")

        # Losses on the left; W (with the GP norm under it) and quality on the right.
        w_plot = QWidget()
        w_plot_lay = QVBoxLayout(w_plot)
        w_plot_lay.setContentsMargins(0, 0, 0, 0)
        w_plot_lay.setSpacing(0)
        w_plot_lay.addWidget(self.w_title)
        w_plot_lay.addWidget(self.plot_widgets["w"], 1)
        self._w_box = QWidget()
        w_lay = QVBoxLayout(self._w_box)
        w_lay.setContentsMargins(0, 0, 0, 0)
        w_lay.setSpacing(2)
        w_lay.addWidget(w_plot, 3)
        w_lay.addWidget(self.plot_widgets["gp"], 2)
        self.plot_widgets["w"].setMinimumHeight(150)
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

        self.smoothing.valueChanged.connect(self._on_smoothing_value_changed)
        self.axis_box.currentIndexChanged.connect(self._on_axis_box_changed)
        self.set_config(config)
        self._redraw_monitor()

    def _add_critic_view(self) -> None:
        """The training critic's axis on the W plot's right: a view of its own with the x axis linked.

        It sits under the monitor's view (z), so the mouse pans and zooms the monitor's; its y range
        always follows its data.
        """
        item = self._items["w"]
        view = pg.ViewBox(enableMenu=False)
        view.setMouseEnabled(False, False)
        view.setZValue(-1)
        item.scene().addItem(view)
        view.setXLink(item.getViewBox())
        right = item.getAxis("right")
        right.linkToView(view)
        _style_axis(right)
        item.setLabel("right", "training critic", color=FOREGROUND)
        item.hideAxis("right")
        view.hide()
        self._views["critic"] = view
        item.getViewBox().sigResized.connect(self._on_w_view_resized)

    def _add_monitor_items(self) -> None:
        """The W plot's bands (between the 95 % curves), reference levels and the best checkpoint's star."""
        item = self._items["w"]
        self.bands: dict[str, pg.FillBetweenItem] = {}
        self.level_lines: dict[tuple[str, str], pg.InfiniteLine] = {}
        for i, (way, _name, color) in enumerate(WAYS):
            # Between the inner curve items: they re-emit sigPlotChanged when clip-to-view or downsampling
            # recomputes what they show (a view change), which the PlotDataItems do not.
            band = pg.FillBetweenItem(self.curves[f"mon_lo_{way}"].curve, self.curves[f"mon_hi_{way}"].curve,
                                      brush=pg.mkBrush(_dim(color, 48)))
            item.addItem(band)
            self.bands[way] = band
            for level, text in LEVELS:
                above = level == "start"
                line = pg.InfiniteLine(
                    angle=0, movable=False, pen=pg.mkPen(_dim(color, 200 if above else 140), width=1,
                                                         style=Qt.PenStyle.DashLine),
                    label=text, labelOpts={"position": 0.985 - 0.12 * i, "color": _dim(color, 220),
                                           "anchors": [(1, 1), (1, 1)] if above else [(1, 0), (1, 0)]})
                line.hide()
                item.addItem(line, ignoreBounds=True)
                self.level_lines[(way, level)] = line
        self.best_marker = pg.ScatterPlotItem(symbol="star", size=17, pen=pg.mkPen("#16181d", width=1),
                                              brush=pg.mkBrush(_BEST))
        self.best_marker.setZValue(20)
        item.addItem(self.best_marker)

    # --- feeding ---------------------------------------------------------------------------
    def reset(self, config: Config) -> None:
        """Forget all points (a new run)."""
        for s in self._series.values():
            s.truncate_after(-math.inf)
        self._dirty.update(self._series)
        self._monitor, self._best_step, self._monitor_dirty = {}, None, True
        self.set_config(config)
        self._throttle.mark()

    def set_config(self, config: Config) -> None:
        """The objective decides whether a training critic's estimate exists; the numbers already plotted stay."""
        self._config = config
        self._monitor_dirty = True
        self._update_visibility()
        self._throttle.mark()

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
        if self._best_step is not None and self._best_step > step:
            self._best_step = None  # its point is gone; the run's next evaluation names the best again
            self._monitor_dirty = True
        self._throttle.mark()

    def _add(self, step: int, t: float, metrics: Mapping[str, float], *, val: bool) -> None:
        for spec in CURVES:
            parts = spec.parts
            if all(p in metrics for p in parts):
                self._series[spec.key].append(step, t, float(sum(metrics[p] for p in parts)))
                self._dirty.add(spec.key)
        if val and any(f"w_mon_{way}" in metrics for way, _, _ in WAYS):
            self._monitor = {k: float(v) for k, v in metrics.items() if k.startswith("w_mon_")}
            self._monitor_dirty = True
        if val and "w_mon_best_step" in metrics:
            self._best_step = float(metrics["w_mon_best_step"])
            self._monitor_dirty = True
        self._update_visibility()
        self._throttle.mark()

    # --- queries (tests, smoke mode) -------------------------------------------------------
    def point_count(self, key: str) -> int:
        return len(self._series[key])

    def shown_count(self, key: str) -> int:
        """Points the curve actually holds (after the last redraw)."""
        x, _ = self.curves[key].getOriginalDataset()
        return 0 if x is None else len(x)

    def title(self, plot: str) -> str:
        """A plot's title as shown (rich text)."""
        return self.w_title.text() if plot == "w" else self._items[plot].titleLabel.text

    @property
    def best_step(self) -> int | None:
        """The step of the best checkpoint (checkpoints/best.pt) so far, as the evaluations said."""
        return None if self._best_step is None else int(self._best_step)

    @property
    def critic_shown(self) -> bool:
        """Whether the W plot shows the training critic's estimate (its right-hand axis)."""
        return bool(self._critic_shown)

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
        plots |= {_HOST[p] for p in plots if p in _HOST}
        if self._monitor_dirty or "w" in plots:
            self._redraw_monitor()
            plots.add("w")
        for plot in sorted(plots, key=lambda p: p in _HOST):  # a host's x range before its guests' y
            self._follow_data(plot)

    def _redraw_monitor(self) -> None:
        """The W plot's title, reference levels and best star, from the latest readings."""
        self._monitor_dirty = False
        m = self._monitor
        for (way, level), line in self.level_lines.items():
            value = m.get(f"w_mon_{level}_{way}", math.nan)
            if math.isfinite(value):
                line.setValue(value)
            line.setVisible(math.isfinite(value))
        xs, ys = [], []
        if self._best_step is not None:
            for way, _, _ in WAYS:
                s = self._series[f"mon_{way}"]
                i = int(np.searchsorted(s.x("step"), self._best_step))
                if i < len(s) and s.x("step")[i] == self._best_step and math.isfinite(s.raw()[i]):
                    xs.append(float(s.x(self._axis)[i]))
                    ys.append(float(s.raw()[i]))
        self.best_marker.setData(x=xs, y=ys)
        title = monitor_title(m, self._best_step, monitor_on=self._config.schedule.monitor,
                              critic=bool(self._critic_shown))
        if title != self._title:
            self._title = title
            self.w_title.setText(title)

    def _follow_data(self, plot: str) -> None:
        """Keep the view on the data without moving it at every redraw (see ``sticky_range``)."""
        if not self._follow[plot]:
            return
        guest = plot in _HOST
        xlo = ylo = math.inf
        xhi = yhi = -math.inf
        for spec in CURVES:
            # A host's x range covers its guests' points too (the critic's axis shares the W plot's x).
            in_x = spec.plot == plot or _HOST.get(spec.plot) == plot
            if not in_x or not self.curves[spec.key].isVisible() or not len(self._series[spec.key]):
                continue
            s = self._series[spec.key]
            x = s.x(self._axis)
            xlo, xhi = min(xlo, float(x[0])), max(xhi, float(x[-1]))
            if spec.plot != plot:
                continue
            y = s.smoothed() if spec.smooth else s.raw()
            finite = y[np.isfinite(y)]
            if len(finite):
                ylo, yhi = min(ylo, float(finite.min())), max(yhi, float(finite.max()))
        if plot == "w":  # from the start of the run, and the reference levels in view: the way from the identity down
            xlo = min(xlo, 0.0) if math.isfinite(xhi) else xlo  # to the floor (evaluations come every eval_every steps)
            for line in self.level_lines.values():
                if line.isVisible():
                    ylo, yhi = min(ylo, line.value()), max(yhi, line.value())
        cur = self._ranges[plot]
        xr = None if guest else sticky_range(xlo, xhi, cur[0] if cur else None, ahead=0.2, pad=0.0, shrink=0.6)
        yr = sticky_range(ylo, yhi, cur[1] if cur else None)
        if xr is None and yr is None:
            return
        new = (xr or (cur[0] if cur else (0.0, 1.0)), yr or (cur[1] if cur else (0.0, 1.0)))
        self._ranges[plot] = new
        # Programmatic: not a manual range change, and auto-range stays off (no state echo to act on).
        if guest:
            self._views[plot].setYRange(*new[1], padding=0)
        else:
            self._views[plot].setRange(xRange=new[0], yRange=new[1], padding=0)

    def _on_view_range_changed_manually(self, plot: str) -> None:
        self._follow[plot] = False  # the user panned or zoomed: leave the view alone

    def _on_view_state_changed(self, plot: str) -> None:
        vb = self._views[plot]
        if any(vb.autoRangeEnabled()):  # pyqtgraph's "A" button: follow the data again, our way
            vb.disableAutoRange()
            self._follow[plot] = True
            self._ranges[plot] = None
            self._dirty.update(s.key for s in CURVES if plot in (s.plot, _HOST.get(s.plot)))
            self._throttle.mark()

    def _on_w_view_resized(self) -> None:
        host = self._views["w"]
        self._views["critic"].setGeometry(host.sceneBoundingRect())
        self._views["critic"].linkedViewChanged(host, pg.ViewBox.XAxis)

    def _update_visibility(self) -> None:
        critic = (self._config.is_wasserstein or len(self._series["w_A"]) > 0
                  or len(self._series["w_A_val"]) > 0)
        if critic != self._critic_shown:
            self._critic_shown = critic
            self._items["w"].showAxis("right", critic)
            self._views["critic"].setVisible(critic)
            self._monitor_dirty = True  # the title's key names the critic's axis
            if critic:
                self._on_w_view_resized()
        self.plot_widgets["gp"].setVisible(self._config.objective.gan_mode == "wgan-gp"
                                           or len(self._series["gp_A"]) > 0)
        self.plot_widgets["quality"].setVisible(len(self._series["psnr_AtoB"]) > 0)

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
        self._monitor_dirty = True
        self._throttle.mark()


_SPEC = {s.key: s for s in CURVES}
