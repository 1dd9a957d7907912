"""The Distances tab: why the Wasserstein distance, watched live.

The WGAN paper's example, P_0 = (0, Z) and P_θ = (θ, Z) with Z ~ U[0, 1], is driven by a
θ slider: the left plot shows the two distributions (two vertical segments of samples),
the top right plot TV, KL, JS and W against θ with the current θ marked. Only W is
continuous and tends to 0 as θ → 0; the others jump at θ = 0 (drawn as a gap with the
value at 0 as a dot), and KL is ∞ for every θ ≠ 0 (clipped for display and labelled ∞).

**Train critic** trains ``engine.wasserstein.critic.estimate_w1`` for the current θ on a worker thread
(``gui.critic_job``); the bottom right plot shows the dual E_P f − E_Q f climbing towards
|θ| (dashed: the exact W), and when it ends the critic's f appears as a heatmap under the
samples. The method selector shows what weight clipping does: the estimate is K·W for a
small K, and dividing by the critic's gradient norm recovers W. The other cases of
``engine.wasserstein.distances.CASES`` (1-D Gaussians, uniform, a 2-D translation) are in the case
drop-down; for 1-D cases the left side shows the two densities and f as a curve under them.
Everything about a case (its slider range, densities, sign, note) comes from its ``Case``: this
panel only draws what the engine describes. The plots are in ``gui.distances_plots``, the curves'
numbers in ``gui.divergences``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.wasserstein.critic import DEFAULT_SAMPLES, METHODS
from engine.wasserstein.distances import CASES, Case, Divergences

from .critic_job import CriticController, CriticJob, CriticResult
from .distances_plots import DIV_COLORS, DistributionsView, DivergencePlot, DualPlot
from .divergences import divergence_curves, isolated_points, view_limits
from .util import Throttle, show_error

__all__ = ["DistancesPanel", "DistancesSettings", "divergence_curves", "isolated_points", "view_limits"]

PARAM_STEP = 0.01
METHOD_TIPS = {
    "lp": "One-sided gradient penalty (Petzka et al.): only slopes above 1 cost anything. The reliable default.",
    "gp": "Two-sided gradient penalty (WGAN-GP): pulls ‖∇f‖ towards 1 everywhere; can lock in the wrong sign "
          "in 1-D.",
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


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞"
    return f"{x:.3f}"


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

        self.distributions = DistributionsView()

        # --- right: divergences against the parameter, and the critic's dual objective ---
        self.divergences = DivergencePlot()
        self.dual = DualPlot()
        self.result_label = QLabel("Press Train critic to estimate W from samples.")
        self.result_label.setObjectName("criticResult")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        dual_box = QWidget()
        db_lay = QVBoxLayout(dual_box)
        db_lay.setContentsMargins(0, 0, 0, 0)
        db_lay.setSpacing(4)
        db_lay.addWidget(self.dual, 1)
        db_lay.addWidget(self.result_label)
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.setChildrenCollapsible(False)
        self.right.addWidget(self.divergences)
        self.right.addWidget(dual_box)
        self.right.setSizes([400, 400])
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.distributions)
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
        return self.dual.point_count()

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
        self.dual.start(job.steps, self._exact_w)
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
        self.distributions.show_case(case, *self._views[name])
        self._draw_divergence_curves()
        self.set_param(case.default_param if param is None else param)
        self._on_param_slider_changed(self.param_slider.value())  # even when the index did not change

    def _draw_divergence_curves(self) -> None:
        name = self._case_name
        if name not in self._curves_cache:
            self._curves_cache[name] = divergence_curves(name)
        self.divergences.show_case(self.case.param_label, *self._curves_cache[name])

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
            self.dual.exact_line.setValue(self.case.exact(self.param).w)
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
        self.divergences.mark(param, case.exact(param))
        # The distributions themselves: drawn (and sampled) once per case and value, not on every redraw.
        if self._shown != (self._case_name, param):
            self._shown = (self._case_name, param)
            self.distributions.draw(case, param, self._views[self._case_name][0])
        if self._dual_dirty:
            self._dual_dirty = False
            self.dual.set_points(self._dual)

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
        self.distributions.show_critic(result)
        self.dual.show_result(result)
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
        self.distributions.clear_critic()
        self.dual.clear_result()
        if message is not None:
            self.result_label.setText(message or "Press Train critic to estimate W from samples.")
        self._redraw.mark()
