"""The Distances tab's plots: the two distributions, the divergences against the parameter, and the
critic's dual objective. Each widget draws what the panel hands it and holds no state of the tab."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QStackedWidget, QVBoxLayout, QWidget

from engine.wasserstein.distances import Case, Divergences

from .critic_job import CriticResult
from .divergences import DIV_LABELS, isolated_points
from .plot_style import AXIS, BACKGROUND, FOREGROUND, TITLE, add_curve, pen, style_plot, title_key

__all__ = ["DistributionsView", "DivergencePlot", "DualPlot", "P_COLOR", "Q_COLOR", "DIV_COLORS"]

P_COLOR, Q_COLOR = "#ff8a5c", "#5b9cff"
DIV_COLORS = {"tv": "#ffc857", "kl": "#ff7b72", "js": "#b18cff", "w": "#43d19e"}
F_COLOR = "#e6eaf0"  # the critic's f and the dual's batches
HELD_OUT = "#ffc857"
SHOWN_SAMPLES = 300       # the scatter of a 2-D case
HISTOGRAM_SAMPLES = 20000  # the histogram of a 1-D case that has no closed-form density
DENSITY_POINTS = 600


class DistributionsView(QStackedWidget):
    """P and Q: a 2-D case's samples over the critic's f as a heatmap (with a colour bar), or a 1-D
    case's densities over a plot of f."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # A layout (not a PlotWidget) so that the colour bar gets its own column beside the plot.
        self.plane_widget = pg.GraphicsLayoutWidget()
        self.plane_widget.setObjectName("planePlot")
        self.plane = style_plot(self.plane_widget, "", "x", "y", self.plane_widget.addPlot(0, 0))
        self.heatmap = pg.ImageItem(axisOrder="row-major")
        self.heatmap.setZValue(-10)
        self.plane.addItem(self.heatmap)
        self.colormap = pg.colormap.get("viridis")
        self.heatmap.setColorMap(self.colormap)
        self.colorbar = pg.ColorBarItem(colorMap=self.colormap, interactive=False, width=12, colorMapMenu=False)
        self.colorbar.axis.setTextPen(pg.mkPen(FOREGROUND))
        self.colorbar.axis.setPen(pg.mkPen(AXIS))
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
        self.density = style_plot(self.density_widget, "", "x", "density")
        self.p_density = add_curve(self.density, P_COLOR, fillLevel=0, brush=pg.mkBrush(255, 138, 92, 50))
        self.q_density = add_curve(self.density, Q_COLOR, fillLevel=0, brush=pg.mkBrush(91, 156, 255, 50))
        self.f_widget = pg.PlotWidget()
        self.f_widget.setObjectName("criticCurvePlot")
        self.f_plot = style_plot(self.f_widget, f"The critic's f &nbsp; {title_key(F_COLOR, 'f(x)')}", "x", "f")
        self.f_plot.setXLink(self.density)
        self.f_plot.addLine(y=0.0, pen=pen("#4a515e", dotted=True))
        self.f_curve = add_curve(self.f_plot, F_COLOR, width=2.0)
        one_d = QWidget()
        od_lay = QVBoxLayout(one_d)
        od_lay.setContentsMargins(0, 0, 0, 0)
        od_lay.setSpacing(2)
        od_lay.addWidget(self.density_widget, 3)
        od_lay.addWidget(self.f_widget, 2)
        self.addWidget(self.plane_widget)
        self.addWidget(one_d)

    def show_case(self, case: Case, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        """The plot for the case's dimension, on the fixed axes of its whole parameter range."""
        self.setCurrentIndex(0 if case.dim == 2 else 1)
        pq = f"{title_key(P_COLOR, 'P')} &nbsp;{title_key(Q_COLOR, 'Q')}"
        if case.dim == 2:
            self.plane.setXRange(*xlim, padding=0)
            self.plane.setYRange(*ylim, padding=0)
            self.plane.setTitle(f"Samples &nbsp; {pq} &nbsp; heatmap: the critic's f", color=TITLE, size="10pt")
        else:
            self.density.setXRange(*xlim, padding=0)
            self.density.setTitle(f"Densities &nbsp; {pq}", color=TITLE, size="10pt")

    def draw(self, case: Case, param: float, xlim: tuple[float, float]) -> None:
        """P and Q: samples of a 2-D case; the densities of a 1-D case (else histograms)."""
        gen = torch.Generator().manual_seed(1)  # the same noise for every value: only the parameter moves them
        if case.dim == 2:
            p, q = (t.numpy() for t in case.sample(SHOWN_SAMPLES, param, gen))
            self.p_scatter.setData(p[:, 0], p[:, 1])
            self.q_scatter.setData(q[:, 0], q[:, 1])
            return
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

    def show_critic(self, result: CriticResult) -> None:
        """The trained critic's f: a heatmap over the plane (2-D), or a curve under the densities (1-D)."""
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

    def clear_critic(self) -> None:
        self.heatmap.clear()
        self.colorbar.setVisible(False)
        self.f_curve.setData([], [])


class DivergencePlot(pg.PlotWidget):
    """TV, KL, JS and W of a case against its parameter, the current value marked with a line and a dot
    on each curve. A jump at one point is a gap in the curve with its value as a dot; KL's infinities
    and large values are clipped at a cap and labelled."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("divergencePlot")
        self.plot = style_plot(self, "", "θ", "")
        self.curves = {k: add_curve(self.plot, c, width=2.6 if k == "w" else 1.8, dashed=k == "kl")
                       for k, c in DIV_COLORS.items()}
        self.curves["w"].setZValue(5)
        # The value at an isolated jump (θ = 0): a filled dot in the curve's colour.
        self.dots = pg.ScatterPlotItem(size=8, pen=pg.mkPen(BACKGROUND, width=1))
        self.dots.setZValue(6)
        self.plot.addItem(self.dots)
        self.holes = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(BACKGROUND))
        self.holes.setZValue(6)
        self.plot.addItem(self.holes)
        self.kl_cap = 1.0
        self.kl_cap_line = self.plot.addLine(y=1.0, pen=pen("#5d3a3a", dotted=True))
        self.kl_text = pg.TextItem("", color=DIV_COLORS["kl"], anchor=(0, 1))
        self.plot.addItem(self.kl_text)
        self.param_line = self.plot.addLine(x=0.0, pen=pen(TITLE, dashed=True))
        self.param_dots = pg.ScatterPlotItem(size=9, pen=pg.mkPen(BACKGROUND, width=1.5))
        self.param_dots.setZValue(7)
        self.plot.addItem(self.param_dots)

    def show_case(self, param_label: str, xs: np.ndarray, curves: dict[str, np.ndarray]) -> None:
        """The exact curves (``gui.divergences.divergence_curves``) of a case whose parameter is ``param_label``."""
        finite_max = max(float(np.nanmax(np.where(np.isfinite(curves[k]), curves[k], np.nan)))
                         for k in ("w", "tv", "js"))
        cap = max(1.0, 1.25 * finite_max)
        self.kl_cap = cap
        dots_x, dots_y, dots_c, holes_x, holes_y, holes_c = [], [], [], [], [], []
        for key, curve in self.curves.items():
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
        self.dots.setData(dots_x, dots_y, brush=[pg.mkBrush(c) for c in dots_c])
        self.holes.setData(holes_x, holes_y, pen=[pg.mkPen(c, width=1.5) for c in holes_c])
        clipped = bool(np.any(curves["kl"] > cap))
        infinite = bool(np.any(np.isinf(curves["kl"])))
        self.kl_cap_line.setValue(cap)
        self.kl_cap_line.setVisible(clipped and not infinite)
        self.kl_text.setText("KL = ∞ (drawn at the top)" if infinite else f"KL clipped at {cap:.2g}" if clipped
                             else "")
        self.kl_text.setPos(xs[0], cap)
        self.plot.setLabel("bottom", param_label, color=FOREGROUND)
        self.plot.setXRange(xs[0], xs[-1], padding=0.02)
        self.plot.setYRange(0, cap * 1.12, padding=0)
        self.plot.setTitle(f"Divergences against {param_label} &nbsp; "
                           + " &nbsp;".join(title_key(DIV_COLORS[k], DIV_LABELS[k]) for k in DIV_LABELS),
                           color=TITLE, size="10pt")

    def mark(self, param: float, d: Divergences) -> None:
        """The current value: a line, and a dot on each curve."""
        self.param_line.setValue(param)
        vals = {"w": d.w, "tv": d.tv, "kl": min(d.kl, self.kl_cap), "js": d.js}
        self.param_dots.setData([param] * 4, list(vals.values()), brush=[pg.mkBrush(DIV_COLORS[k]) for k in vals])


class DualPlot(pg.PlotWidget):
    """The critic's dual objective E_P f − E_Q f per batch, the exact W (dashed), the held-out estimate
    (a dot) and, for weight clipping, the corrected estimate w/‖∇f‖ (dotted)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dualPlot")
        self.plot = style_plot(
            self,
            f"Dual E<sub>P</sub> f − E<sub>Q</sub> f &nbsp; {title_key(F_COLOR, 'batches')} &nbsp;"
            f"<span style='color:{DIV_COLORS['w']}'>- - exact W</span> &nbsp;"
            f"<span style='color:{HELD_OUT}'>● held-out</span>", "iteration", "")
        self.curve = add_curve(self.plot, F_COLOR, width=1.8)
        self.exact_line = self.plot.addLine(y=0.0, pen=pen(DIV_COLORS["w"], 1.6, dashed=True))
        self.corrected_line = self.plot.addLine(y=0.0, pen=pen(HELD_OUT, 1.4, dotted=True))
        self.corrected_line.hide()
        self.estimate_dot = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(HELD_OUT), pen=None)
        self.plot.addItem(self.estimate_dot)

    def start(self, steps: int, exact_w: float) -> None:
        self.exact_line.setValue(exact_w)
        self.plot.setXRange(0, steps, padding=0.02)
        self.plot.enableAutoRange(axis="y")

    def set_points(self, points: np.ndarray) -> None:
        """(iteration, dual) rows: the whole curve so far."""
        if len(points):
            self.curve.setData(points[:, 0], points[:, 1])
        else:
            self.curve.setData([], [])

    def point_count(self) -> int:
        x, _ = self.curve.getOriginalDataset()
        return 0 if x is None else len(x)

    def show_result(self, result: CriticResult) -> None:
        self.estimate_dot.setData([result.iterations], [result.w])
        if result.corrected is not None and result.job.method == "clip":
            self.corrected_line.setValue(result.corrected)
            self.corrected_line.show()

    def clear_result(self) -> None:
        self.estimate_dot.setData([], [])
        self.corrected_line.hide()
