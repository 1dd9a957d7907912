"""The Distances tab: why the Wasserstein distance, watched live.

The WGAN paper's example, P_0 = (0, Z) and P_θ = (θ, Z) with Z ~ U[0, 1], is driven by a
θ slider: the left plot shows the two distributions (two vertical segments of samples),
the top right plot TV, KL, JS and W against θ with the current θ marked. Only W is
continuous and tends to 0 as θ → 0; the others jump at θ = 0 (drawn as a gap with the
value at 0 as a dot), and KL is ∞ for every θ ≠ 0 (clipped for display and labelled ∞).

**Train critic** trains ``engine.wasserstein.critic.estimate_w1`` for the current θ on a worker thread
(``gui.critic_worker``); the bottom right plot shows the dual E_P f − E_Q f climbing towards
|θ| (dashed: the exact W), and when it ends the critic's f appears as a heatmap under the
samples. The method selector shows what weight clipping does: the estimate is K·W for a
small K, and dividing by the critic's gradient norm recovers W. The other cases of
``engine.wasserstein.distances.CASES`` (1-D Gaussians, uniform, a 2-D translation) are in the case
drop-down; for 1-D cases the left side shows the two densities and f as a curve under them.
Everything about a case (its slider range, densities, sign, note) comes from its ``Case``: this
panel only draws what the engine describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.wasserstein.critic import DEFAULT_SAMPLES, METHODS
from engine.wasserstein.distances import CASES, Case, Divergences

from .critic_worker import CriticController, CriticJob, CriticResult
from .plots import BACKGROUND, FOREGROUND, GRID_ALPHA
from .util import Throttle, show_error

__all__ = ["DistancesPanel", "DistancesSettings", "divergence_curves", "view_limits"]

P_COLOR, Q_COLOR = "#ff8a5c", "#5b9cff"
DIV_COLORS = {"tv": "#ffc857", "kl": "#ff7b72", "js": "#b18cff", "w": "#43d19e"}
DIV_LABELS = {"tv": "TV", "kl": "KL", "js": "JS", "w": "W"}
PARAM_STEP = 0.01
CURVE_POINTS = 401
SHOWN_SAMPLES = 300       # the scatter of a 2-D case
HISTOGRAM_SAMPLES = 20000  # the histogram of a 1-D case that has no closed-form density
DENSITY_POINTS = 600
METHOD_TIPS = {
    "lp": "One-sided gradient penalty (Petzka et al.): only slopes above 1 cost anything. The reliable default.",
    "gp": "Two-sided gradient penalty (WGAN-GP): pulls ‖∇f‖ towards 1 everywhere; can lock in the wrong sign in 1-D.",
    "clip": "Weight clipping to ±0.01 (the original WGAN): f is K-Lipschitz for a small unknown K, so the "
            "estimate is about K·W; dividing by the mean ‖∇f‖ recovers W.",
}

@dataclass(frozen=True)
class DistancesSettings:
    """The tab's starting point; ``param`` None means the case's default."""

    case: str = "parallel-lines"
    param: float | None = None
    method: str = "lp"
    steps: int = 800
    samples: int = DEFAULT_SAMPLES
    seed: int = 0


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


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞"
    return f"{x:.3f}"


def _style(pw: pg.PlotWidget | pg.GraphicsLayoutWidget, title: str, xlabel: str, ylabel: str,
           item: pg.PlotItem | None = None) -> pg.PlotItem:
    pw.setBackground(BACKGROUND)
    item = item or pw.getPlotItem()
    item.setTitle(title, color="#d7dce4", size="10pt")
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setLabel("left", ylabel, color=FOREGROUND)
    item.setLabel("bottom", xlabel, color=FOREGROUND)
    for axis in ("left", "bottom"):
        ax = item.getAxis(axis)
        ax.enableAutoSIPrefix(False)
        ax.setPen(pg.mkPen("#3a404b"))
        ax.setTextPen(pg.mkPen(FOREGROUND))
    item.setMenuEnabled(False)
    pw.setMinimumHeight(120)
    return item


def _curve(item: pg.PlotItem, color: str, width: float = 1.8, dashed: bool = False, **kw) -> pg.PlotDataItem:
    pen = pg.mkPen(color, width=width, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
    curve = item.plot(pen=pen, **kw)
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve


def _key(color: str, text: str) -> str:
    return f"<span style='color:{color}'>■ {text}</span>"


class DistancesPanel(QWidget):
    """TV, KL, JS and W of a test case against its parameter, and a critic trained live."""

    critic_finished = Signal(object)  # CriticResult, after the panel has shown it

    def __init__(self, settings: DistancesSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("distancesPanel")
        settings = settings or DistancesSettings()
        self._initial = settings
        self.controller = CriticController(self)
        self.result: CriticResult | None = None
        self._case_name = ""
        self._curves_cache: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        self._views: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
        self._shown: tuple[str, float] | None = None  # the (case, value) whose P and Q the left side shows
        self._dual = np.empty((0, 2))
        self._dual_dirty = False
        self._exact_w = 0.0
        self._redraw = Throttle(self._on_redraw_due, 10.0, self)

        # --- toolbar ---
        self.case_box = QComboBox()
        self.case_box.setObjectName("caseBox")
        for name, case in CASES.items():
            self.case_box.addItem(case.label, name)
        self.param_name = QLabel()
        self.param_slider = QSlider(Qt.Orientation.Horizontal)
        self.param_slider.setObjectName("paramSlider")
        self.param_slider.setMinimumWidth(180)
        self.param_label = QLabel()
        self.param_label.setObjectName("paramValue")
        self.param_label.setMinimumWidth(44)
        self.method_box = QComboBox()
        self.method_box.setObjectName("methodBox")
        for m in METHODS:
            self.method_box.addItem(m, m)
            self.method_box.setItemData(self.method_box.count() - 1, METHOD_TIPS[m], Qt.ItemDataRole.ToolTipRole)
        self.steps_box = QSpinBox()
        self.steps_box.setObjectName("stepsBox")
        self.steps_box.setRange(10, 20000)
        self.steps_box.setSingleStep(100)
        self.steps_box.setToolTip("Critic training steps (Adam, or RMSProp for clip; batches of 256 per side)")
        self.train_button = QPushButton("▶  Train critic")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Train a critic f on samples of the two distributions for this value and watch "
                                     "its dual objective E_P f − E_Q f approach W")
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setEnabled(False)
        self.status = QLabel()
        self.status.setObjectName("hint")

        bar = QHBoxLayout()
        bar.setSpacing(6)
        bar.addWidget(QLabel("Case"))
        bar.addWidget(self.case_box)
        bar.addSpacing(10)
        bar.addWidget(self.param_name)
        bar.addWidget(self.param_slider, 1)
        bar.addWidget(self.param_label)
        bar.addSpacing(10)
        bar.addWidget(QLabel("Method"))
        bar.addWidget(self.method_box)
        bar.addWidget(QLabel("Steps"))
        bar.addWidget(self.steps_box)
        bar.addSpacing(10)
        bar.addWidget(self.train_button)
        bar.addWidget(self.stop_button)

        self.values_label = QLabel()
        self.values_label.setObjectName("distValues")
        self.values_label.setTextFormat(Qt.TextFormat.RichText)

        # --- left: the distributions (2-D: samples over the critic's heatmap; 1-D: densities over f) ---
        # A layout (not a PlotWidget) so that the colour bar gets its own column beside the plot.
        self.plane_widget = pg.GraphicsLayoutWidget()
        self.plane_widget.setObjectName("planePlot")
        self.plane = _style(self.plane_widget, "", "x", "y", self.plane_widget.addPlot(0, 0))
        self.heatmap = pg.ImageItem(axisOrder="row-major")
        self.heatmap.setZValue(-10)
        self.plane.addItem(self.heatmap)
        self.colormap = pg.colormap.get("viridis")
        self.heatmap.setColorMap(self.colormap)
        self.colorbar = pg.ColorBarItem(colorMap=self.colormap, interactive=False, width=12, colorMapMenu=False)
        self.colorbar.axis.setTextPen(pg.mkPen(FOREGROUND))
        self.colorbar.axis.setPen(pg.mkPen("#3a404b"))
        self.colorbar.setFixedWidth(62)  # the bar and its tick labels
        self.plane_widget.addItem(self.colorbar, 0, 1)
        self.colorbar.setImageItem(self.heatmap)
        self.colorbar.setVisible(False)
        self.p_scatter = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(P_COLOR))
        self.q_scatter = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(Q_COLOR))
        self.plane.addItem(self.p_scatter)
        self.plane.addItem(self.q_scatter)

        self.density_widget = pg.PlotWidget()
        self.density_widget.setObjectName("densityPlot")
        self.density = _style(self.density_widget, "", "x", "density")
        self.p_density = _curve(self.density, P_COLOR, fillLevel=0, brush=pg.mkBrush(255, 138, 92, 50))
        self.q_density = _curve(self.density, Q_COLOR, fillLevel=0, brush=pg.mkBrush(91, 156, 255, 50))
        self.f_widget = pg.PlotWidget()
        self.f_widget.setObjectName("criticCurvePlot")
        self.f_plot = _style(self.f_widget, f"The critic's f &nbsp; {_key('#e6eaf0', 'f(x)')}", "x", "f")
        self.f_plot.setXLink(self.density)
        self.f_plot.addLine(y=0.0, pen=pg.mkPen("#4a515e", width=1, style=Qt.PenStyle.DotLine))
        self.f_curve = _curve(self.f_plot, "#e6eaf0", width=2.0)
        one_d = QWidget()
        od_lay = QVBoxLayout(one_d)
        od_lay.setContentsMargins(0, 0, 0, 0)
        od_lay.setSpacing(2)
        od_lay.addWidget(self.density_widget, 3)
        od_lay.addWidget(self.f_widget, 2)
        self.left = QStackedWidget()
        self.left.addWidget(self.plane_widget)
        self.left.addWidget(one_d)

        # --- right: divergences against the parameter, and the critic's dual objective ---
        self.div_widget = pg.PlotWidget()
        self.div_widget.setObjectName("divergencePlot")
        self.div_plot = _style(self.div_widget, "", "θ", "")
        self.div_curves = {k: _curve(self.div_plot, c, width=2.6 if k == "w" else 1.8, dashed=k == "kl")
                           for k, c in DIV_COLORS.items()}
        self.div_curves["w"].setZValue(5)
        # The value at an isolated jump (θ = 0): a filled dot in the curve's colour.
        self.div_dots = pg.ScatterPlotItem(size=8, pen=pg.mkPen("#16181d", width=1))
        self.div_dots.setZValue(6)
        self.div_plot.addItem(self.div_dots)
        self.div_holes = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(BACKGROUND))
        self.div_holes.setZValue(6)
        self.div_plot.addItem(self.div_holes)
        self.kl_cap_line = self.div_plot.addLine(y=1.0, pen=pg.mkPen("#5d3a3a", width=1, style=Qt.PenStyle.DotLine))
        self.kl_text = pg.TextItem("", color=DIV_COLORS["kl"], anchor=(0, 1))
        self.div_plot.addItem(self.kl_text)
        self.param_line = self.div_plot.addLine(x=0.0, pen=pg.mkPen("#d7dce4", width=1,
                                                                    style=Qt.PenStyle.DashLine))
        self.param_dots = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#16181d", width=1.5))
        self.param_dots.setZValue(7)
        self.div_plot.addItem(self.param_dots)

        self.dual_widget = pg.PlotWidget()
        self.dual_widget.setObjectName("dualPlot")
        self.dual_plot = _style(
            self.dual_widget,
            f"Dual E<sub>P</sub> f − E<sub>Q</sub> f &nbsp; {_key('#e6eaf0', 'batches')} &nbsp;"
            f"<span style='color:{DIV_COLORS['w']}'>- - exact W</span> &nbsp;"
            f"<span style='color:#ffc857'>● held-out</span>", "iteration", "")
        self.dual_curve = _curve(self.dual_plot, "#e6eaf0", width=1.8)
        self.exact_line = self.dual_plot.addLine(y=0.0, pen=pg.mkPen(DIV_COLORS["w"], width=1.6,
                                                                     style=Qt.PenStyle.DashLine))
        self.corrected_line = self.dual_plot.addLine(y=0.0, pen=pg.mkPen("#ffc857", width=1.4,
                                                                         style=Qt.PenStyle.DotLine))
        self.corrected_line.hide()
        self.estimate_dot = pg.ScatterPlotItem(size=9, brush=pg.mkBrush("#ffc857"), pen=None)
        self.dual_plot.addItem(self.estimate_dot)
        self.result_label = QLabel("Press Train critic to estimate W from samples.")
        self.result_label.setObjectName("criticResult")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        dual_box = QWidget()
        db_lay = QVBoxLayout(dual_box)
        db_lay.setContentsMargins(0, 0, 0, 0)
        db_lay.setSpacing(4)
        db_lay.addWidget(self.dual_widget, 1)
        db_lay.addWidget(self.result_label)
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.setChildrenCollapsible(False)
        self.right.addWidget(self.div_widget)
        self.right.addWidget(dual_box)
        self.right.setSizes([400, 400])
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.left)
        self.split.addWidget(self.right)
        self.split.setSizes([500, 500])

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 10, 0, 0)
        lay.setSpacing(8)
        lay.addLayout(bar)
        lay.addWidget(self.values_label)
        lay.addWidget(self.split, 1)
        lay.addWidget(self.status)

        # --- wiring ---
        self.case_box.currentIndexChanged.connect(self._on_case_box_changed)
        self.param_slider.valueChanged.connect(self._on_param_slider_changed)
        self.method_box.currentIndexChanged.connect(self._on_method_box_changed)
        self.train_button.clicked.connect(self._on_train_button_clicked)
        self.stop_button.clicked.connect(self.controller.stop)
        self.controller.busy_changed.connect(self._on_controller_busy_changed)
        self.controller.progressed.connect(self._on_controller_progressed)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)

        self.steps_box.setValue(settings.steps)
        self.method_box.setCurrentIndex(max(0, self.method_box.findData(settings.method)))
        self.case_box.setCurrentIndex(max(0, self.case_box.findData(settings.case)))
        self._set_case(settings.case, settings.param)

    # --- queries -------------------------------------------------------------------------------
    @property
    def case(self) -> Case:
        return CASES[self._case_name]

    @property
    def param(self) -> float:
        lo, _ = self.case.slider_range
        return round(lo + self.param_slider.value() * PARAM_STEP, 6)

    @property
    def busy(self) -> bool:
        return self.controller.busy

    def settings(self) -> DistancesSettings:
        return replace(self._initial, case=self._case_name, param=self.param, method=self.method_box.currentData(),
                       steps=self.steps_box.value())

    def job(self) -> CriticJob:
        s = self.settings()
        xlim, ylim = self._views[self._case_name]
        return CriticJob(s.case, s.param, s.method, s.steps, s.samples, s.seed, xlim, ylim)

    def dual_points(self) -> int:
        """Points of the dual curve the plot holds (after the last redraw)."""
        x, _ = self.dual_curve.getOriginalDataset()
        return 0 if x is None else len(x)

    # --- commands ------------------------------------------------------------------------------
    def set_case(self, name: str, param: float | None = None) -> None:
        if self.busy:
            raise RuntimeError("stop the critic before changing the case")
        self.case_box.setCurrentIndex(self.case_box.findData(name))  # → _set_case with the default
        if param is not None:
            self.set_param(param)

    def set_param(self, value: float) -> None:
        lo, hi = self.case.slider_range
        value = min(max(float(value), lo), hi)
        self.param_slider.setValue(int(round((value - lo) / PARAM_STEP)))

    def train(self) -> None:
        """Train a critic for the current case and parameter (what the button does)."""
        if self.busy:
            return
        job = self.job()
        self._clear_result(None)
        self._exact_w = self.case.exact(job.param).w
        self.exact_line.setValue(self._exact_w)
        self.dual_plot.setXRange(0, job.steps, padding=0.02)
        self.dual_plot.enableAutoRange(axis="y")
        self.result_label.setText(f"Training a {job.method} critic for {self.case.param_label} = {job.param:g}"
                                  f" ({job.steps} steps)…")
        self.controller.start(job)

    def stop(self) -> None:
        self.controller.stop()

    def shutdown(self) -> None:
        """Stop a running critic and join its thread (the window is closing)."""
        self.controller.stop()
        self.controller.wait()

    def flush(self) -> None:
        """Draw what is pending now (tests, screenshots)."""
        self._redraw.flush()

    # --- case and parameter ----------------------------------------------------------------------
    def _set_case(self, name: str, param: float | None = None) -> None:
        self._case_name = name
        case = CASES[name]
        lo, hi = case.slider_range
        if name not in self._views:
            self._views[name] = view_limits(case, lo, hi)
        self.param_name.setText(case.param_label)
        self.param_slider.blockSignals(True)
        self.param_slider.setRange(0, int(round((hi - lo) / PARAM_STEP)))
        self.param_slider.blockSignals(False)
        self.left.setCurrentIndex(0 if case.dim == 2 else 1)
        self.div_plot.setLabel("bottom", case.param_label, color=FOREGROUND)
        (xlim, ylim) = self._views[name]
        if case.dim == 2:
            self.plane.setXRange(*xlim, padding=0)
            self.plane.setYRange(*ylim, padding=0)
            self.plane.setTitle(f"Samples &nbsp; {_key(P_COLOR, 'P')} &nbsp;{_key(Q_COLOR, 'Q')} &nbsp; "
                                f"heatmap: the critic's f", color="#d7dce4", size="10pt")
        else:
            self.density.setXRange(*xlim, padding=0)
            self.density.setTitle(f"Densities &nbsp; {_key(P_COLOR, 'P')} &nbsp;{_key(Q_COLOR, 'Q')}",
                                  color="#d7dce4", size="10pt")
        self._draw_divergence_curves()
        self.set_param(case.default_param if param is None else param)
        self._on_param_slider_changed(self.param_slider.value())  # even when the index did not change

    def _draw_divergence_curves(self) -> None:
        name = self._case_name
        if name not in self._curves_cache:
            self._curves_cache[name] = divergence_curves(name)
        xs, curves = self._curves_cache[name]
        finite_max = max(float(np.nanmax(np.where(np.isfinite(curves[k]), curves[k], np.nan)))
                         for k in ("w", "tv", "js"))
        cap = max(1.0, 1.25 * finite_max)
        self._kl_cap = cap
        dots_x, dots_y, dots_c, holes_x, holes_y, holes_c = [], [], [], [], [], []
        for key, curve in self.div_curves.items():
            y = np.minimum(curves[key], cap) if key == "kl" else curves[key].copy()
            for i in isolated_points(y, 0.05 * cap):
                dots_x.append(xs[i])
                dots_y.append(y[i])
                dots_c.append(DIV_COLORS[key])
                holes_x.append(xs[i])
                holes_y.append(0.5 * (y[i - 1] + y[i + 1]))
                holes_c.append(DIV_COLORS[key])
                y[i] = np.nan  # a gap: the curve does not pass through its value at the jump
            curve.setData(xs, y, connect="finite")
        self.div_dots.setData(dots_x, dots_y, brush=[pg.mkBrush(c) for c in dots_c])
        self.div_holes.setData(holes_x, holes_y, pen=[pg.mkPen(c, width=1.5) for c in holes_c])
        clipped = bool(np.any(curves["kl"] > cap))
        infinite = bool(np.any(np.isinf(curves["kl"])))
        self.kl_cap_line.setValue(cap)
        self.kl_cap_line.setVisible(clipped and not infinite)
        self.kl_text.setText("KL = ∞ (drawn at the top)" if infinite else f"KL clipped at {cap:.2g}" if clipped
                             else "")
        self.kl_text.setPos(xs[0], cap)
        self.div_plot.setXRange(xs[0], xs[-1], padding=0.02)
        self.div_plot.setYRange(0, cap * 1.12, padding=0)
        self.div_plot.setTitle(f"Divergences against {self.case.param_label} &nbsp; "
                               + " &nbsp;".join(_key(DIV_COLORS[k], DIV_LABELS[k]) for k in DIV_LABELS),
                               color="#d7dce4", size="10pt")

    def _on_case_box_changed(self, _index: int) -> None:
        name = self.case_box.currentData()
        if name and name != self._case_name:
            self._clear_result("")
            self._set_case(name)

    def _on_param_slider_changed(self, _value: int) -> None:
        self.param_label.setText(f"{self.param:+.2f}" if self.case.signed else f"{self.param:.2f}")
        if (self.result is not None or len(self._dual)) and not self.busy:
            self._clear_result("The value changed: Train critic again for this one.")
        if not self.busy:
            self.exact_line.setValue(self.case.exact(self.param).w)
        self._show_values()
        self._redraw.mark()

    def _on_method_box_changed(self, _index: int) -> None:
        self.method_box.setToolTip(METHOD_TIPS[self.method_box.currentData()])

    def _show_values(self) -> None:
        d: Divergences = self.case.exact(self.param)
        js = _fmt(d.js) + (" = log 2" if abs(d.js - math.log(2)) < 1e-12 else "")
        note = f" &nbsp; — {self.case.note}" if self.case.note else ""
        self.values_label.setText(
            f"<b>{self.case.param_label} = {self.param:g}</b> &nbsp; "
            f"<span style='color:{DIV_COLORS['w']}'>W = {_fmt(d.w)}</span> &nbsp;·&nbsp; "
            f"<span style='color:{DIV_COLORS['tv']}'>TV = {_fmt(d.tv)}</span> &nbsp;·&nbsp; "
            f"<span style='color:{DIV_COLORS['kl']}'>KL = {_fmt(d.kl)}</span> &nbsp;·&nbsp; "
            f"<span style='color:{DIV_COLORS['js']}'>JS = {js}</span>"
            f"<span style='color:#7d8694'>{note}</span>")

    # --- drawing (≤ 10 Hz) ----------------------------------------------------------------------
    def _on_redraw_due(self) -> None:
        case, param = self.case, self.param
        # The current value on the divergence plot: a line and a dot on each curve.
        self.param_line.setValue(param)
        d = case.exact(param)
        vals = {"w": d.w, "tv": d.tv, "kl": min(d.kl, self._kl_cap), "js": d.js}
        self.param_dots.setData([param] * 4, list(vals.values()),
                                brush=[pg.mkBrush(DIV_COLORS[k]) for k in vals])
        # The distributions themselves: drawn (and sampled) once per case and value, not on every redraw.
        if self._shown != (self._case_name, param):
            self._shown = (self._case_name, param)
            self._draw_distributions(case, param)
        if self._dual_dirty:
            self._dual_dirty = False
            if len(self._dual):
                self.dual_curve.setData(self._dual[:, 0], self._dual[:, 1])
            else:
                self.dual_curve.setData([], [])

    def _draw_distributions(self, case: Case, param: float) -> None:
        """P and Q on the left: samples of a 2-D case; the densities of a 1-D case (else histograms)."""
        gen = torch.Generator().manual_seed(1)  # the same noise for every value: only the parameter moves them
        if case.dim == 2:
            p, q = (t.numpy() for t in case.sample(SHOWN_SAMPLES, param, gen))
            self.p_scatter.setData(p[:, 0], p[:, 1])
            self.q_scatter.setData(q[:, 0], q[:, 1])
            return
        xlim, _ = self._views[self._case_name]
        if case.density is not None:
            xs = np.linspace(xlim[0], xlim[1], DENSITY_POINTS)
            dp, dq = case.density(xs, param)
            self.p_density.setData(xs, dp)
            self.q_density.setData(xs, dq)
            return
        p, q = (t.numpy() for t in case.sample(HISTOGRAM_SAMPLES, param, gen))
        edges = np.linspace(xlim[0], xlim[1], 121)
        hp, _ = np.histogram(p[:, 0], edges, density=True)
        hq, _ = np.histogram(q[:, 0], edges, density=True)
        mids = 0.5 * (edges[1:] + edges[:-1])
        self.p_density.setData(mids, hp)
        self.q_density.setData(mids, hq)

    # --- the critic ------------------------------------------------------------------------------
    def _on_train_button_clicked(self) -> None:
        self.train()

    def _on_controller_busy_changed(self, busy: bool) -> None:
        for w in (self.case_box, self.param_slider, self.method_box, self.steps_box, self.train_button):
            w.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.status.setText("training the critic on one CPU thread…" if busy else "")

    def _on_controller_progressed(self, points: np.ndarray) -> None:
        self._dual = np.concatenate([self._dual, points])  # the worker's array is new; this one is ours
        self._dual_dirty = True
        last_it, last = points[-1]
        self.status.setText(f"iteration {int(last_it):,} · dual {last:.4f} · exact W {self._exact_w:.4f}")
        self._redraw.mark()

    def _on_controller_finished(self, result: CriticResult) -> None:
        self.result = result
        self._dual = result.history.copy()
        self._dual_dirty = True
        job = result.job
        if result.grid is not None:
            grid = result.grid
            lo, hi = float(grid.min()), float(grid.max())
            if hi - lo < 1e-12:
                hi = lo + 1e-12
            self.heatmap.setImage(grid, levels=(lo, hi))
            self.heatmap.setRect(QRectF(job.xlim[0], job.ylim[0], job.xlim[1] - job.xlim[0],
                                        job.ylim[1] - job.ylim[0]))
            self.colorbar.setVisible(True)  # before setLevels: a hidden bar lays its axis out at width 0
            self.colorbar.setLevels((lo, hi))
        if result.curve_f is not None:
            self.f_curve.setData(result.curve_x, result.curve_f)
            self.f_plot.enableAutoRange(axis="y")
        last_it = result.iterations
        self.estimate_dot.setData([last_it], [result.w])
        if result.corrected is not None and job.method == "clip":
            self.corrected_line.setValue(result.corrected)
            self.corrected_line.show()
        self.result_label.setText(self._describe(result))
        self._redraw.mark()
        self._redraw.flush()
        self.critic_finished.emit(result)

    def _on_controller_failed(self, message: str, details: str) -> None:
        self.result_label.setText(f"<span style='color:#ff7b72'>The critic failed: {message}</span>")
        show_error(self, "Critic training failed", message, details)

    @staticmethod
    def _describe(r: CriticResult) -> str:
        exact = r.exact_w
        err = f" ({100 * (r.w - exact) / exact:+.1f} %)" if exact > 1e-9 else ""
        head = "Stopped" if r.stopped else "Done"
        text = (f"<b>{head}</b> after {r.iterations:,} iterations ({r.seconds:.1f} s) · "
                f"<b>held-out estimate {r.w:.4f}</b>{err if r.job.method != 'clip' else ''} · "
                f"<span style='color:{DIV_COLORS['w']}'>exact W {exact:.4f}</span> · "
                f"mean ‖∇f‖ {r.grad_norm:.4g}")
        if r.corrected is not None:
            cerr = f" ({100 * (r.corrected - exact) / exact:+.1f} %)" if exact > 1e-9 else ""
            text += f" · <span style='color:#ffc857'>corrected w/‖∇f‖ {r.corrected:.4f}{cerr}</span>"
        if r.job.method == "clip" and r.grad_norm > 0:
            text += (f"<br>Clipping keeps f about K-Lipschitz with K ≈ ‖∇f‖ = {r.grad_norm:.2g}: the estimate is "
                     f"≈ K·W, not W; dividing by ‖∇f‖ recovers W.")
        elif r.job.method in ("gp", "lp") and exact > 0:
            text += ("<br>A penalty lets the slope settle above 1 (1 + W/2λ for a linear critic), biasing the estimate "
                     "up by up to W²/2λ; dividing by ‖∇f‖ removes that.")
        return text

    def _clear_result(self, message: str | None) -> None:
        """Forget the last critic (its curve, heatmap and numbers); ``message`` replaces its summary."""
        self.result = None
        self._dual = np.empty((0, 2))
        self._dual_dirty = True
        self.heatmap.clear()
        self.colorbar.setVisible(False)
        self.f_curve.setData([], [])
        self.estimate_dot.setData([], [])
        self.corrected_line.hide()
        if message is not None:
            self.result_label.setText(message or "Press Train critic to estimate W from samples.")
        self._redraw.mark()
