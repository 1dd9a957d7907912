"""The status bar and the warnings panel, fed hand-made reports through the controller's signals."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QStatusBar

from engine.config import preset
from engine.training.reports import CheckpointReport, EvalReport, FinishedReport, ProgressReport, WarningReport
from gui.status import StatusPanel, WarningsPanel, format_budget, format_duration
from gui.training_controller import RunStarted, TrainingController


@pytest.fixture
def status(qtbot):
    controller = TrainingController()
    bar = QStatusBar()
    qtbot.addWidget(bar)
    panel = StatusPanel(controller, bar)
    warnings = WarningsPanel(controller)
    qtbot.addWidget(warnings)
    bar.show()
    return controller, panel, warnings


def started(controller, total_steps: int, **cfg) -> None:
    config = preset("cpu-quick").with_values(cfg)
    controller.started.emit(RunStarted("/tmp/run", config, "cpu", 0, total_steps, "a", "b"))


def progress(step: int, total: int, elapsed: float, eta: float, share: float) -> ProgressReport:
    return ProgressReport(step, total, 1, 2e-4, 4.0, 4.0, elapsed, eta, {}, share)


def test_durations_and_budgets_read_as_a_person_writes_them():
    assert format_duration(192) == "3m 12s" and format_duration(59) == "59s" and format_duration(float("inf")) == "—"
    assert format_budget(600) == "10m" and format_budget(5400) == "1h 30m" and format_budget(7200) == "2h"
    assert format_budget(90) == "1m 30s"


def test_a_step_budget_shows_steps_progress_and_eta(status):
    controller, panel, _ = status
    started(controller, 2000, max_steps=2000)
    assert panel.step_label.text() == "step 0 / 2,000" and panel.progress.value() == 0
    controller.progressed.emit(progress(500, 2000, 60.0, 180.0, 0.25))
    panel._throttle.flush()
    assert panel.step_label.text() == "step 500 / 2,000" and panel.eta_label.text() == "ETA 3m 00s"
    assert panel.progress.value() == panel.progress.maximum() // 4 and panel.progress.text() == "25%"


def test_a_minutes_budget_shows_elapsed_against_the_budget(status):
    controller, panel, _ = status
    started(controller, 0, minutes=10.0)
    assert panel.step_label.text() == "step 0" and panel.eta_label.text() == "0s / 10m"
    controller.progressed.emit(progress(40, 0, 5.0, 595.0, 5.0 / 600))  # early: no estimate of the steps yet
    panel._throttle.flush()
    assert panel.step_label.text() == "step 40"
    controller.progressed.emit(progress(900, 2812, 192.0, 408.0, 0.32))
    panel._throttle.flush()
    assert panel.eta_label.text() == "3m 12s / 10m" and "budget" in panel.eta_label.toolTip()
    assert panel.step_label.text() == "step 900 / ~2,812"
    assert panel.progress.value() == round(0.32 * panel.progress.maximum()) and panel.progress.text() == "32%"


def test_the_best_step_and_the_plateau_notice(status):
    controller, panel, warnings = status
    started(controller, 5000, max_steps=5000)
    assert panel.best_label.isHidden() and panel.notice_label.isHidden()
    controller.evaluated.emit(EvalReport(600, 30.0, {"w_mon_AtoB": 1.0, "w_mon_best_step": 600.0}))
    assert panel.best_label.text() == "best: step 600" and not panel.best_label.isHidden()
    controller.checkpoint_saved.emit(CheckpointReport(1200, "/tmp/run/checkpoints/best.pt", kind="best"))
    assert panel.best_label.text() == "best: step 1,200"
    controller.checkpoint_saved.emit(CheckpointReport(1400, "/tmp/run/checkpoints/latest.pt"))
    assert panel.best_label.text() == "best: step 1,200"  # a latest checkpoint is not a best one
    # Each direction's own pick, as the evaluation names them; its best checkpoint that follows keeps the words.
    controller.evaluated.emit(EvalReport(1600, 60.0, {"w_mon_AtoB": 1.0, "w_mon_best_step": 1600.0,
                                                      "w_mon_best_step_AtoB": 1200.0, "w_mon_best_step_BtoA": 1600.0}))
    controller.checkpoint_saved.emit(CheckpointReport(1600, "/tmp/run/checkpoints/best.pt", kind="best"))
    assert panel.best_label.text() == "best: A→B of step 1,200, B→A of step 1,600"

    controller.warned.emit(WarningReport(
        3000, "plateau", "the monitored W has not improved beyond its noise for 10 evaluations: the best "
        "translations so far are those of step 1200", "Training on may not help much.", severity="info"))
    # A calm notice beside the figures, not a warning.
    assert not panel.notice_label.isHidden() and panel.notice_label.text().startswith("ℹ Plateau")
    assert "step 1200" in panel.notice_label.toolTip() and panel.warning_label.isHidden()
    item = warnings.list.item(0)
    assert not warnings.isHidden() and warnings.title.text() == "Notes" and warnings.property("level") == "info"
    assert item.text().startswith("ℹ step 3,000") and item.foreground().color().name() == "#7fb6ff"

    controller.warned.emit(WarningReport(3100, "stuck-AtoB", "G (A→B) is stuck at the identity", "Try …"))
    assert not panel.warning_label.isHidden() and panel.warning_label.text().startswith("⚠ G (A→B)")
    assert not panel.notice_label.isHidden()  # the notice stays beside the warning
    assert warnings.title.text() == "Warnings" and warnings.property("level") == "warning"
    assert warnings.list.item(0).foreground().color().name() == "#e3b341"

    controller.finished.emit(FinishedReport(3000, "plateau", "", "/tmp/run/checkpoints/latest.pt"))
    assert "Stopped at the plateau at step 3,000" in panel.message_label.text()
    started(controller, 5000, max_steps=5000)  # a new run starts clean
    assert panel.best_label.isHidden() and panel.notice_label.isHidden() and panel.warning_label.isHidden()


def test_a_long_note_wraps_to_the_panels_width_and_is_shown_whole(status, qtbot):
    """A hint longer than the panel is wide is wrapped, and its row and the list grow to show every line
    (the list once sized rows for the unwrapped lines and cut the hint off at the right edge)."""
    controller, _, warnings = status
    warnings.resize(320, 200)
    warnings.show()
    hint = "Restored the generators of step 66 and stopped: this generator family cannot learn your change " * 2
    controller.warned.emit(WarningReport(132, "drifted", "the translations are turning back", hint, severity="info"))
    qtbot.waitUntil(lambda: warnings.list.isVisible())
    lines = warnings.list.fontMetrics().lineSpacing()
    narrow = warnings.list.sizeHintForRow(0)
    assert narrow >= 5 * lines  # the first line, then the hint wrapped to four or more lines at about 300 px
    assert warnings.list.height() >= narrow
    warnings.resize(3000, 200)
    qtbot.waitUntil(lambda: warnings.list.sizeHintForRow(0) < narrow)
    assert warnings.list.sizeHintForRow(0) < 4 * lines  # wide enough: the first line and the hint's one line
    assert warnings.list.height() >= warnings.list.sizeHintForRow(0)


def test_a_run_that_ends_between_progress_reports_shows_its_last_step(status):
    """A drift found at step 132 ends the run there; the last progress report said step 130."""
    controller, panel, _ = status
    started(controller, 200, max_steps=200)
    controller.progressed.emit(progress(130, 200, 20.0, 10.0, 0.65))
    panel._throttle.flush()
    assert panel.step_label.text() == "step 130 / 200"
    controller.finished.emit(FinishedReport(132, "drifted", "", "/tmp/run/checkpoints/latest.pt"))
    assert panel.step_label.text() == "step 132 / 200"
    assert "Stopped (drifting; the best checkpoint restored) at step 132" in panel.message_label.text()
