"""The generator-family search of an ``auto`` run: which family is on trial, each family's reading by the W
search (distance / start with its 95 % interval, lower is closer to the target) as a small bar chart, the one kept
marked with a star, and why it was kept. Where the ResNet lost after a trial too short to judge it, or read
closest but was set aside for a family that keeps the picture, a button sets it in the form for the next run
(``pin_requested``). Hidden for runs with a family set by hand."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout

from engine.training.family_choice import FAMILIES, set_aside, unjudged
from engine.training.reports import FamilyCandidate, FamilyChoiceReport, FamilyTrialReport

from .plots import BACKGROUND, FOREGROUND
from .training_controller import RunStarted, TrainingController

__all__ = ["FamilyPanel"]

BAR = "#5b8def"
KEPT = "#f2c14e"


class FamilyPanel(QFrame):
    pin_requested = Signal(str)  # a family to set in the form for the next run

    def __init__(self, controller: TrainingController, parent=None):
        super().__init__(parent)
        self.setObjectName("familyPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.candidates: list[FamilyCandidate] = []
        self.chosen: str | None = None

        self.title = QLabel("Generator family")
        self.title.setObjectName("panelTitle")
        self.text = QLabel()
        self.text.setObjectName("familyText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        self.pin = QPushButton("Use the ResNet next run")
        self.pin.setObjectName("familyPin")
        self.pin.setToolTip("Sets Model → Generator family to resnet in the form: the next Train trains the ResNet "
                            "for the whole budget. This run goes on as it is.")
        self.pin.clicked.connect(self._on_pin_clicked)
        self.pin.hide()

        self.chart = pg.PlotWidget(background=BACKGROUND)
        self.chart.setObjectName("familyChart")
        self.chart.setFixedSize(280, 120)
        self.chart.setMouseEnabled(False, False)
        self.chart.hideButtons()
        self.chart.setMenuEnabled(False)
        item = self.chart.getPlotItem()
        item.getAxis("bottom").setTicks([[(i, f) for i, f in enumerate(FAMILIES)]])
        item.getAxis("left").setLabel("distance / start")
        for ax in ("bottom", "left"):
            item.getAxis(ax).setTextPen(FOREGROUND)
            item.getAxis(ax).setPen(FOREGROUND)
        item.setXRange(-0.6, len(FAMILIES) - 0.4, padding=0)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6)
        self.errors = pg.ErrorBarItem(x=np.array([]), y=np.array([]), beam=0.2, pen=pg.mkPen(FOREGROUND))
        self.star = pg.ScatterPlotItem(symbol="star", size=14, brush=KEPT, pen=None)
        for it in (self.bars, self.errors, self.star):
            item.addItem(it)

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.title)
        right.addWidget(self.text, 1)
        right.addWidget(self.pin, 0, Qt.AlignmentFlag.AlignLeft)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addWidget(self.chart)
        lay.addLayout(right, 1)
        self.hide()

        controller.started.connect(self._on_controller_started)
        controller.trial_progressed.connect(self.show_trial)
        controller.family_chosen.connect(self.show_choice)

    # --- what the controller reports ---------------------------------------------------------------------
    def _on_controller_started(self, started: RunStarted) -> None:
        self.candidates, self.chosen = [], None
        self.pin.hide()
        self._draw()
        auto = started.config.model.netG == "auto"
        self.text.setText(f"Trying each generator family for {100 * started.config.schedule.search_share:g} % of the "
                          "budget on your images; the one whose translations come closest to the target (in colour, "
                          "structure and detail) is kept."
                          if auto else "")
        self.setVisible(auto)

    def show_trial(self, rep: FamilyTrialReport) -> None:
        self.setVisible(True)
        if len(rep.measured) != len(self.candidates):
            self.candidates = list(rep.measured)
            self._draw()
        self.text.setText(f"Trying the {rep.family} generator ({rep.index + 1} of {rep.count}): "
                          f"{100 * rep.trial_progress:.0f} % of its trial, step {rep.step}.")

    def show_choice(self, rep: FamilyChoiceReport) -> None:
        self.setVisible(True)
        self.candidates, self.chosen = list(rep.candidates), rep.chosen
        self._draw()
        cost = ""
        if math.isfinite(rep.dropped_share):
            cost = f" The families dropped took {100 * rep.dropped_share:.0f} % of the budget."
        self.text.setText(f"Kept <b>{rep.chosen}</b>: {rep.reason}.{cost}")
        self._offer_pin()

    def show_record(self, record: dict | None) -> None:
        """An opened run's search, as its checkpoint recorded it (None: the run's family was set by hand)."""
        if not record:
            self.hide()
            return
        self.candidates = [FamilyCandidate(c["family"], c["score"], c["lo"], c["hi"], c.get("w", {}),
                                           c.get("start", {}), c.get("steps", 0), c.get("seconds", 0.0),
                                           tuple(c.get("replicates", ())), c.get("away", {}))
                           for c in record.get("candidates", [])]
        self.chosen = record.get("chosen")
        self._draw()
        self.text.setText(f"Kept <b>{self.chosen}</b>: {record.get('reason', '')}.")
        self._offer_pin()
        self.show()

    def _offer_pin(self) -> None:
        self.pin.setEnabled(True)
        offered = self.chosen is not None and self.chosen != "resnet" and bool(self.candidates) and (
            unjudged(self.candidates, self.chosen) is not None or set_aside(self.candidates) is not None)
        self.pin.setVisible(offered)

    def _on_pin_clicked(self) -> None:
        self.pin_requested.emit("resnet")
        self.pin.setEnabled(False)
        self.text.setText(self.text.text() + " <b>Generator family is now resnet in the form</b>: the next Train "
                          "trains it.")

    # --- drawing -------------------------------------------------------------------------------------------
    def bar_heights(self) -> dict[str, float]:
        return {c.family: c.score for c in self.candidates}

    def _draw(self) -> None:
        cands = [c for c in self.candidates if c.family in FAMILIES and math.isfinite(c.score)]
        x = np.array([FAMILIES.index(c.family) for c in cands], dtype=float)
        y = np.array([c.score for c in cands], dtype=float)
        brushes = [KEPT if c.family == self.chosen else BAR for c in cands]
        self.bars.setOpts(x=x, height=y, width=0.6, brushes=brushes)
        self.errors.setData(x=x, y=y, top=np.array([c.hi - c.score for c in cands]),
                            bottom=np.array([c.score - c.lo for c in cands]))
        kept = [(xi, hi) for xi, c, hi in zip(x, cands, (c.hi for c in cands)) if c.family == self.chosen]
        self.star.setData([k[0] for k in kept], [k[1] * 1.12 + 0.02 for k in kept])
        top = max([c.hi for c in cands] + [1.0])
        self.chart.getPlotItem().setYRange(0, top * 1.3, padding=0)
