"""The W plot of the training plots: the W monitor's held-out estimate of W1 per direction.

It draws the monitor's headline reading (``Reading.headline``): the multi-scale structure reading where it has its
floor of real target samples, the critic's patch W otherwise (older runs). Its 95 % interval is a band, the
identity's and the floor's levels are dashed lines, a star marks the best checkpoint's evaluation, and the title
says how much of the way is left and whether a reading can be trusted (the engine's rule, ``Reading.doubt()``).
Wasserstein objectives add their training critic's own estimate on a right-hand axis (its scale is its own: weight
clipping reports K·W, K ≪ 1). ``TrainingPlots`` feeds the curves; this widget owns the rest.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.training.metric_keys import describe_best
from engine.wasserstein.monitor import WAYS as MONITOR_WAYS
from engine.wasserstein.monitor import Reading

from .plot_style import A2B, B2A, BACKGROUND, FOREGROUND, GREY, TITLE, dim, pen, style_axis, style_plot, title_key
from .series import Series

__all__ = ["WMonitorPlot", "WAYS", "LEVELS", "monitor_title", "headline_metrics"]

BEST = "#ffd166"     # the best checkpoint's star
CAUTION = "#e3b341"  # an estimate not to be trusted
# The monitor's directions as shown, from the engine's list: key, name ("A→B"), colour.
WAYS = tuple((way, f"{source}→{target}", color) for (way, source, target), color in zip(MONITOR_WAYS, (A2B, B2A)))
LEVELS = (("start", "identity"), ("floor", "floor"))  # the headline's levels: the dashed reference lines
Y_LABELS = {False: "W₁ (patches)", True: "sliced W₁"}  # by ``Level.structure``


def headline_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """``mon_<way>``, ``mon_lo_<way>`` and ``mon_hi_<way>`` of an evaluation row: the reading the W plot draws and
    its title speaks of (``Reading.headline``: the structure reading where it has its floor, else the critic's W)."""
    out = {}
    for way, _, _ in WAYS:
        reading = Reading.from_metrics(metrics, way)
        if reading is not None:
            h = reading.headline()
            out.update({f"mon_{way}": h.value, f"mon_lo_{way}": h.lo, f"mon_hi_{way}": h.hi})
    return out


def monitor_title(metrics: Mapping[str, float], best_steps: Mapping[str, int] | None, *, monitor_on: bool = True,
                  critic: bool = False, previous: Mapping[str, float] | None = None) -> str:
    """The W plot's title (rich text): per direction, the share of the way left or, where a share would
    mislead, why not (``Reading.standing``, given the evaluation before, ``previous``); a caution where an
    estimate cannot be trusted; then its key."""
    ways = [w for w in WAYS if f"w_mon_{w[0]}" in metrics]
    if not ways:
        head = ("W monitor · off (Schedule → W monitor)" if not monitor_on else
                "W monitor · no reading yet: one comes with each held-out evaluation")
    else:
        standings = [Reading.from_metrics(metrics, way).standing(Reading.from_metrics(previous or {}, way))
                     for way, _, _ in ways]
        parts = ["W monitor"]
        for (_, name, color), (_, words) in zip(ways, standings):
            parts.append(f"{title_key(color, name)} {words}")
        head = " · ".join(parts)
    cautions = []
    for way, name, _ in ways:
        doubt = Reading.from_metrics(metrics, way).doubt()  # the engine's one rule
        if doubt:
            cautions.append(f"{name} not trustworthy ({doubt})")
    keys = [f"<span style='color:{GREY}'>band: 95 % · - - identity, floor</span>"]
    if best_steps:
        keys.append(f"<span style='color:{BEST}'>★</span><span style='color:{GREY}'> best: "
                    f"{describe_best(best_steps)}</span>")
    if critic:
        keys.append(f"<span style='color:{GREY}'>right: training critic</span>")
    lines = [head]
    if cautions:
        lines.append(f"<span style='color:{CAUTION}; font-size:8pt'>⚠ " + "; ".join(cautions) + "</span>")
    lines.append("<span style='font-size:8pt'>" + " · ".join(keys) + "</span>")
    return "<br>".join(lines)


class WMonitorPlot(QWidget):
    """The W plot (``plot_widget``) under its title (``title_label``), with the training critic's view
    (``critic_view``) on a right-hand axis. It keeps the latest evaluation's monitor readings and the
    best checkpoint's step; ``redraw`` shows them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.readings: dict[str, float] = {}
        self.previous: dict[str, float] = {}  # the evaluation before's readings: is the estimate still falling?
        self.best_steps: dict[str, int] = {}  # way → the step whose generator best.pt holds for that direction
        self.critic_shown = False
        self.dirty = True  # the readings, the best step or the critic's presence changed since ``redraw``
        self._title = ""
        self._structure_axis = False  # the left axis names the structure reading (``Y_LABELS``)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setObjectName("plot_w")
        self.item = style_plot(self.plot_widget, "", "step", "W₁ (patches)", downsample=True)
        self.plot_widget.setMinimumHeight(150)
        # The title is a word-wrapping label over the plot: it has up to three lines, and a pyqtgraph
        # title would hold the plot at least as wide as its longest one.
        self.item.setTitle(None)
        self.title_label = QLabel()
        self.title_label.setObjectName("wPlotTitle")
        self.title_label.setTextFormat(Qt.TextFormat.RichText)
        self.title_label.setWordWrap(True)
        self.title_label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.title_label.setStyleSheet(f"QLabel {{ background: {BACKGROUND}; color: {TITLE}; font-size: 10pt; "
                                       "padding: 5px 8px 2px 8px; }")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.title_label)
        lay.addWidget(self.plot_widget, 1)
        self.critic_view = self._add_critic_view()
        self.bands: dict[str, pg.FillBetweenItem] = {}
        self.level_lines: dict[tuple[str, str], pg.InfiniteLine] = {}
        self.best_marker: pg.ScatterPlotItem | None = None

    def _add_critic_view(self) -> pg.ViewBox:
        """The training critic's axis on the right: a view of its own with the x axis linked.

        It sits under the monitor's view (z), so the mouse pans and zooms the monitor's; its y range
        always follows its data.
        """
        view = pg.ViewBox(enableMenu=False)
        view.setMouseEnabled(False, False)
        view.setZValue(-1)
        self.item.scene().addItem(view)
        view.setXLink(self.item.getViewBox())
        right = self.item.getAxis("right")
        right.linkToView(view)
        style_axis(right)
        self.item.setLabel("right", "training critic", color=FOREGROUND)
        self.item.hideAxis("right")
        view.hide()
        self.item.getViewBox().sigResized.connect(self._on_view_resized)
        return view

    def add_monitor_items(self, curves: Mapping[str, pg.PlotDataItem]) -> None:
        """The bands (between the 95 % curves ``mon_lo_<way>`` and ``mon_hi_<way>`` of ``curves``), the
        reference levels and the best checkpoint's star: over the curves, so added after them."""
        for i, (way, _name, color) in enumerate(WAYS):
            # Between the inner curve items: they re-emit sigPlotChanged when clip-to-view or downsampling
            # recomputes what they show (a view change), which the PlotDataItems do not.
            band = pg.FillBetweenItem(curves[f"mon_lo_{way}"].curve, curves[f"mon_hi_{way}"].curve,
                                      brush=pg.mkBrush(dim(color, 48)))
            self.item.addItem(band)
            self.bands[way] = band
            for level, text in LEVELS:
                above = level == "start"
                line = pg.InfiniteLine(
                    angle=0, movable=False, pen=pen(dim(color, 200 if above else 140), dashed=True),
                    label=text, labelOpts={"position": 0.985 - 0.12 * i, "color": dim(color, 220),
                                           "anchors": [(1, 1), (1, 1)] if above else [(1, 0), (1, 0)]})
                line.hide()
                self.item.addItem(line, ignoreBounds=True)
                self.level_lines[(way, level)] = line
        self.best_marker = pg.ScatterPlotItem(symbol="star", size=17, pen=pg.mkPen(BACKGROUND, width=1),
                                              brush=pg.mkBrush(BEST))
        self.best_marker.setZValue(20)
        self.item.addItem(self.best_marker)

    # --- state -----------------------------------------------------------------------------
    def set_readings(self, metrics: Mapping[str, float]) -> None:
        """The monitor's keys (``w_mon_*`` and the structure reading's) of the latest evaluation that has them."""
        readings = {k: float(v) for k, v in metrics.items() if k.startswith(("w_mon_", "structure_"))}
        if readings != self.readings:
            self.previous, self.readings = self.readings, readings
        self.dirty = True

    def set_best_steps(self, steps: Mapping[str, int]) -> None:
        """Each direction's best.pt step ({} : none)."""
        self.best_steps = dict(steps)
        self.dirty = True

    @property
    def best_step(self) -> int | None:
        """best.pt's step: the later of the directions' (None before any)."""
        return max(self.best_steps.values()) if self.best_steps else None

    def reset(self) -> None:
        self.readings, self.previous, self.best_steps, self.dirty = {}, {}, {}, True
        if self._structure_axis:
            self._structure_axis = False
            self.item.setLabel("left", Y_LABELS[False], color=FOREGROUND)

    def show_critic(self, shown: bool) -> None:
        """Show or hide the training critic's axis and view."""
        if shown == self.critic_shown:
            return
        self.critic_shown = shown
        self.item.showAxis("right", shown)
        self.critic_view.setVisible(shown)
        self.dirty = True  # the title's key names the critic's axis
        if shown:
            self._on_view_resized()

    def level_values(self) -> list[float]:
        """The reference levels shown: the view keeps them in range."""
        return [line.value() for line in self.level_lines.values() if line.isVisible()]

    def label_room(self, default: float = 0.06) -> float:
        """The share of the y span to pad the view with at each end, so that a level's label (a line of text
        above the identity's line, below the floor's) stays inside the plot when that level is the highest or
        lowest thing in it: a label of h px in a view of H px needs h / H of the padded span."""
        if not self.level_values():
            return default
        height = self.item.getViewBox().height()
        if height <= 0:  # not laid out yet
            return max(default, 0.15)
        label = next(iter(self.level_lines.values())).label
        text_px = max(label.boundingRect().height(), QFontMetrics(label.textItem.font()).height()) + 2
        share = min(0.3, text_px / height)
        return max(default, share / (1 - 2 * share))

    # --- drawing ---------------------------------------------------------------------------
    def redraw(self, series: Mapping[str, Series], axis: str, *, monitor_on: bool) -> None:
        """The title, reference levels and best stars from the latest readings; a direction's star sits on its
        monitor points (``series["mon_<way>"]``) at its best step, on the x ``axis`` shown."""
        self.dirty = False
        m = self.readings
        heads = {way: r.headline() for way, _, _ in WAYS if (r := Reading.from_metrics(m, way)) is not None}
        for (way, level), line in self.level_lines.items():
            value = getattr(heads[way], level) if way in heads else math.nan
            if math.isfinite(value):
                line.setValue(value)
            line.setVisible(math.isfinite(value))
        xs, ys = [], []
        for way, _, _ in WAYS:  # each direction's star at its own pick
            step = self.best_steps.get(way)
            s = series[f"mon_{way}"]
            i = int(np.searchsorted(s.x("step"), step)) if step is not None else len(s)
            if i < len(s) and s.x("step")[i] == step and math.isfinite(s.raw()[i]):
                xs.append(float(s.x(axis)[i]))
                ys.append(float(s.raw()[i]))
        self.best_marker.setData(x=xs, y=ys)
        structure = any(h.structure for h in heads.values())
        if structure != self._structure_axis:
            self._structure_axis = structure
            self.item.setLabel("left", Y_LABELS[structure], color=FOREGROUND)
        title = monitor_title(m, self.best_steps, monitor_on=monitor_on, critic=self.critic_shown,
                              previous=self.previous)
        if title != self._title:
            self._title = title
            self.title_label.setText(title)

    def _on_view_resized(self) -> None:
        host = self.item.getViewBox()
        self.critic_view.setGeometry(host.sceneBoundingRect())
        self.critic_view.linkedViewChanged(host, pg.ViewBox.XAxis)
