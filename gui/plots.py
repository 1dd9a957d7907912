"""Live training plots: losses, the W monitor, the gradient-penalty norm, and quality (PSNR).

The W plot (``gui.w_plot.WMonitorPlot``) is there for every objective: the monitor's held-out
estimate of W1 per direction (``engine.wasserstein.monitor``) with its band, levels and best star,
and the training critic's own estimate on a right-hand axis for Wasserstein objectives.

The panel keeps its own copy of the numbers in growing numpy arrays (``gui.series.Series``);
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
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from engine.config import Config
from engine.training.metric_keys import best_steps
from engine.training.reports import EvalReport, ProgressReport

from .plot_style import A2B, B2A, BACKGROUND, FOREGROUND, GREY, dim, pen, style_plot, title_key
from .series import Series, sticky_range
from .util import Throttle
from .w_plot import WAYS, WMonitorPlot, headline_metrics

__all__ = ["TrainingPlots", "CURVES", "BACKGROUND", "FOREGROUND"]


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


def _monitor_curves() -> tuple[CurveSpec, ...]:
    out: list[CurveSpec] = []
    for way, name, color in WAYS:
        # The headline reading's (``headline_metrics``): the structure reading where it has its floor.
        out += [CurveSpec(f"mon_{way}", f"W {name} (monitor)", color, (f"mon_{way}",), "w", markers=True,
                          smooth=False),
                CurveSpec(f"mon_lo_{way}", f"W {name} 95 % low", color, (f"mon_lo_{way}",), "w", smooth=False,
                          band=True),
                CurveSpec(f"mon_hi_{way}", f"W {name} 95 % high", color, (f"mon_hi_{way}",), "w", smooth=False,
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
    CurveSpec("w_B", "training critic A→B (w_B)", A2B, ("w_B",), "critic", faint=True),
    CurveSpec("w_A", "training critic B→A (w_A)", B2A, ("w_A",), "critic", faint=True),
    CurveSpec("w_B_val", "training critic A→B held-out", A2B, ("w_B_val",), "critic", dashed=True, markers=True,
              smooth=False),
    CurveSpec("w_A_val", "training critic B→A held-out", B2A, ("w_A_val",), "critic", dashed=True, markers=True,
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


# Every plot carries its key in its title: a legend would cover the data.
PLOT_TITLES = {
    "loss": "Losses &nbsp; " + " &nbsp;".join(title_key(s.color, s.key) for s in CURVES if s.plot == "loss"),
    "gp": f"Critic gradient norm, target 1 &nbsp; {title_key(A2B, 'D_B')} &nbsp;{title_key(B2A, 'D_A')}",
    "quality": f"PSNR against ground truth (dB) &nbsp; {title_key('#43d19e', 'A→B')} "
               f"&nbsp;{title_key('#b18cff', 'B→A')} &nbsp;<span style='color:{GREY}'>- - do nothing</span>",
}


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
        self.w_plot = WMonitorPlot()
        self.plot_widgets: dict[str, pg.PlotWidget] = {}
        self._items: dict[str, pg.PlotItem] = {}
        self._views: dict[str, pg.ViewBox] = {}
        for key, ylabel in (("loss", "loss"), ("w", ""), ("gp", "‖∇‖"), ("quality", "dB")):
            if key == "w":
                pw, item = self.w_plot.plot_widget, self.w_plot.item
            else:
                pw = pg.PlotWidget()
                pw.setObjectName(f"plot_{key}")
                item = style_plot(pw, PLOT_TITLES.get(key, ""), "step", ylabel, downsample=True)
            self.plot_widgets[key], self._items[key] = pw, item
            vb = self._views[key] = item.getViewBox()
            vb.disableAutoRange()
            vb.sigRangeChangedManually.connect(lambda *_a, k=key: self._on_view_range_changed_manually(k))
            vb.sigStateChanged.connect(lambda _vb, k=key: self._on_view_state_changed(k))
        self._items["gp"].addLine(y=1.0, pen=pen("#5d6573", dotted=True))
        self._views["critic"] = self.w_plot.critic_view
        for key in self._views:
            self._follow[key] = True
            self._ranges[key] = None

        self.curves: dict[str, pg.PlotDataItem] = {}
        for spec in CURVES:
            color = dim(spec.color, 90 if spec.band else 110 if spec.faint else 255)
            kw = dict(symbol="o", symbolSize=5, symbolBrush=spec.color, symbolPen=None) if spec.markers else {}
            curve = pg.PlotDataItem(name=spec.label, pen=pen(color, dashed=spec.dashed), **kw)
            if spec.plot in self._items:
                self._items[spec.plot].addItem(curve)
            else:
                self._views[spec.plot].addItem(curve)
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.curves[spec.key] = curve
            self._series[spec.key] = Series()
            self._series[spec.key].set_alpha(self._alpha)
        self.w_plot.add_monitor_items(self.curves)
        # The levels' labels need room in pixels: a view made smaller (a notice above it) may need another range.
        self._views["w"].sigResized.connect(lambda *_a: self._follow_data("w"))

        # Losses on the left; W (with the GP norm under it) and quality on the right.
        self._w_box = QWidget()
        w_lay = QVBoxLayout(self._w_box)
        w_lay.setContentsMargins(0, 0, 0, 0)
        w_lay.setSpacing(2)
        w_lay.addWidget(self.w_plot, 3)
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

        self.smoothing.valueChanged.connect(self._on_smoothing_value_changed)
        self.axis_box.currentIndexChanged.connect(self._on_axis_box_changed)
        self.set_config(config)
        self._redraw_monitor()


    # --- feeding ---------------------------------------------------------------------------
    def reset(self, config: Config) -> None:
        """Forget all points (a new run)."""
        for s in self._series.values():
            s.truncate_after(-math.inf)
        self._dirty.update(self._series)
        self.w_plot.reset()
        self.set_config(config)
        self._throttle.mark()

    def set_config(self, config: Config) -> None:
        """The objective decides whether a training critic's estimate exists; the numbers already plotted stay."""
        self._config = config
        self.w_plot.dirty = True  # "off" or "no reading yet"
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
        if self.w_plot.best_step is not None and self.w_plot.best_step > step:
            self.w_plot.set_best_steps({})  # its point is gone; the run's next evaluation names the best again
        self._throttle.mark()

    def _add(self, step: int, t: float, metrics: Mapping[str, float], *, val: bool) -> None:
        if val:
            metrics = {**metrics, **headline_metrics(metrics)}
        for spec in CURVES:
            parts = spec.parts
            if all(p in metrics for p in parts):
                self._series[spec.key].append(step, t, float(sum(metrics[p] for p in parts)))
                self._dirty.add(spec.key)
        if val and any(f"w_mon_{way}" in metrics for way, _, _ in WAYS):
            self.w_plot.set_readings(metrics)
        if val and best_steps(metrics):
            self.w_plot.set_best_steps(best_steps(metrics))
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
        return self.w_plot.title_label.text() if plot == "w" else self._items[plot].titleLabel.text

    @property
    def best_step(self) -> int | None:
        """The step of the best checkpoint (checkpoints/best.pt) so far, as the evaluations said: the later of its
        two directions' (``w_plot.best_steps`` has each)."""
        return self.w_plot.best_step

    @property
    def critic_shown(self) -> bool:
        """Whether the W plot shows the training critic's estimate (its right-hand axis)."""
        return self.w_plot.critic_shown

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
        if self.w_plot.dirty or "w" in plots:
            self._redraw_monitor()
            plots.add("w")
        for plot in sorted(plots, key=lambda p: p in _HOST):  # a host's x range before its guests' y
            self._follow_data(plot)

    def _redraw_monitor(self) -> None:
        self.w_plot.redraw(self._series, self._axis, monitor_on=self._config.schedule.monitor)

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
            for level in self.w_plot.level_values():
                ylo, yhi = min(ylo, level), max(yhi, level)
        cur = self._ranges[plot]
        xr = None if guest else sticky_range(xlo, xhi, cur[0] if cur else None, ahead=0.2, pad=0.0, shrink=0.6)
        if plot == "w" and math.isfinite(yhi - ylo):  # room for the levels' labels, as if it were data: a view
            room = self.w_plot.label_room(0.0) * max(yhi - ylo, 1e-9)  # made smaller (a notice above it) re-ranges
            ylo, yhi = ylo - room, yhi + room
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

    def _update_visibility(self) -> None:
        critic = (self._config.is_wasserstein or len(self._series["w_A"]) > 0
                  or len(self._series["w_A_val"]) > 0)
        self.w_plot.show_critic(critic)
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
        self.w_plot.dirty = True
        self._throttle.mark()


_SPEC = {s.key: s for s in CURVES}
