"""The status bar (step, epoch, it/s, ETA or time against a minutes budget, device, progress, the best
checkpoint's step, notices and warnings), the failure-watch warnings list (notes, such as the plateau
notice, in a calm colour), and the copyable ``tensorboard --logdir`` command of a run that logs to
TensorBoard."""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path

from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from engine.config import Config
from engine.training.metric_keys import best_steps, describe_best
from engine.training.reports import (
    CheckpointReport,
    EvalReport,
    FamilyTrialReport,
    FinishedReport,
    ProgressReport,
    WarningReport,
)

from .training_controller import RunStarted, TrainingController
from .util import Throttle

__all__ = ["StatusPanel", "WarningsPanel", "TensorBoardLine", "format_duration", "format_budget", "tensorboard_command"]

NOTE_COLOR = "#7fb6ff"  # notes (severity info): calm, not a warning's amber or an error's red
PROGRESS_RANGE = 1000  # the progress bar counts tenths of a percent of the run


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def format_budget(seconds: float) -> str:
    """A time budget as a person set it: "10m", "1h 30m", "2h", else as ``format_duration``."""
    if math.isfinite(seconds) and seconds >= 60 and float(seconds).is_integer() and int(seconds) % 60 == 0:
        minutes = int(seconds) // 60
        if minutes < 60:
            return f"{minutes}m"
        return f"{minutes // 60}h" + (f" {minutes % 60:02d}m" if minutes % 60 else "")
    return format_duration(seconds)


class StatusPanel(QWidget):
    """Lives in the window's QStatusBar; refreshes at most 10× a second."""

    def __init__(self, controller: TrainingController, status_bar: QStatusBar, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.bar = status_bar
        self._latest: ProgressReport | FamilyTrialReport | None = None
        self._budget_s = 0.0  # the run's minutes budget in seconds; 0: it runs for steps (or epochs)
        self._throttle = Throttle(self._refresh, 10.0, self)

        def label(name: str, tip: str) -> QLabel:
            lab = QLabel()
            lab.setObjectName(name)
            lab.setToolTip(tip)
            return lab

        self.state_label = label("stateLabel", "Training state")
        self.step_label = label("stepLabel", "Step / total steps")
        self.epoch_label = label("epochLabel", "Epoch")
        self.speed_label = label("speedLabel", "Training speed")
        self.eta_label = label("etaLabel", "Estimated time to the end of the schedule")
        self.best_label = label("bestLabel", "")
        self.best_label.hide()
        self._best_said_at: int | None = None  # the step of the evaluation that last named the best steps
        self.device_label = label("deviceLabel", "Device the networks run on")
        self.progress = QProgressBar()
        self.progress.setObjectName("runProgress")
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(True)
        self.progress.setRange(0, PROGRESS_RANGE)
        self.progress.setValue(0)
        self.notice_label = label("noticeLabel", "")  # notes (severity info), such as the plateau notice
        self.notice_label.hide()
        self.warning_label = label("warningLabel", "")
        self.warning_label.hide()
        self.message_label = label("messageLabel", "")
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.message_label.clear)

        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 6, 0)
        lay.setSpacing(14)
        for w in (self.state_label, self.step_label, self.epoch_label, self.speed_label, self.eta_label,
                  self.device_label, self.best_label):
            lay.addWidget(w)
        lay.addWidget(self.notice_label)
        lay.addWidget(self.warning_label)
        lay.addWidget(self.message_label, 1)
        status_bar.addWidget(self, 1)
        status_bar.addPermanentWidget(self.progress)

        controller.state_changed.connect(self._on_controller_state_changed)
        controller.started.connect(self._on_controller_started)
        controller.progressed.connect(self._on_controller_progressed)
        controller.trial_progressed.connect(self._on_controller_trial_progressed)
        controller.evaluated.connect(self._on_controller_evaluated)
        controller.checkpoint_saved.connect(self._on_controller_checkpoint_saved)
        controller.warned.connect(self._on_controller_warned)
        controller.finished.connect(self._on_controller_finished)
        controller.failed.connect(self._on_controller_failed)
        self._on_controller_state_changed(controller.state)

    def show_message(self, text: str, ms: int = 8000) -> None:
        """A transient note beside the figures (QStatusBar.showMessage would hide them); 0: until replaced."""
        self.message_label.setText(text)
        self.message_label.setToolTip(text)
        if ms > 0:
            self._message_timer.start(ms)
        else:
            self._message_timer.stop()

    def _on_controller_state_changed(self, state: str) -> None:
        names = {"idle": "Ready", "starting": "Starting…", "running": "Training", "paused": "Paused",
                 "stopping": "Stopping…"}
        self.state_label.setText(names.get(state, state))
        self.state_label.setProperty("state", state)
        self.state_label.style().unpolish(self.state_label)
        self.state_label.style().polish(self.state_label)

    def _on_controller_started(self, info: RunStarted) -> None:
        self._latest = None
        self._budget_s = info.config.schedule.minutes * 60.0
        for w in (self.warning_label, self.notice_label, self.best_label):
            w.hide()
        self.device_label.setText(f"device {info.device}")
        self.step_label.setText(f"step {info.step:,}" + (f" / {info.total_steps:,}" if info.total_steps else ""))
        self.epoch_label.setText("")
        self.speed_label.setText("")
        self.eta_label.setText(f"0s / {format_budget(self._budget_s)}" if self._budget_s else "")
        done = info.step / info.total_steps if info.total_steps else 0.0  # a minutes budget: the first report says
        self.progress.setValue(round(min(1.0, done) * PROGRESS_RANGE))

    def _on_controller_progressed(self, report: ProgressReport) -> None:
        self._latest = report
        self._throttle.mark()

    def _on_controller_trial_progressed(self, report: FamilyTrialReport) -> None:
        self._latest = report
        self._throttle.mark()

    def _refresh(self) -> None:
        r = self._latest
        if r is None:
            return
        if isinstance(r, FamilyTrialReport):
            self.step_label.setText(f"trying {r.family} ({r.index + 1}/{r.count}), step {r.step:,}")
            self.epoch_label.setText("")
        elif not r.total_steps:  # a minutes budget, early on: no estimate of the steps yet
            self.step_label.setText(f"step {r.step:,}")
        else:
            approx = "~" if self._budget_s else ""  # estimated from the pace under a minutes budget
            self.step_label.setText(f"step {r.step:,} / {approx}{r.total_steps:,}")
        if isinstance(r, ProgressReport):
            self.epoch_label.setText(f"epoch {r.epoch}")
        self.speed_label.setText(f"{r.its_per_s:.2f} it/s")
        if self._budget_s:
            self.eta_label.setText(f"{format_duration(r.elapsed_s)} / {format_budget(self._budget_s)}")
            self.eta_label.setToolTip("Training time so far / the budget (Schedule → Train for); pauses excluded")
        else:
            self.eta_label.setText(f"ETA {format_duration(r.eta_s)}")
            self.eta_label.setToolTip("Estimated time to the end of the schedule")
        self.progress.setValue(round(min(1.0, max(0.0, r.progress)) * PROGRESS_RANGE))

    def _on_controller_evaluated(self, report: EvalReport) -> None:
        steps = best_steps(report.metrics)
        if steps:
            self._show_best(steps, report.step)

    def _on_controller_checkpoint_saved(self, report: CheckpointReport) -> None:
        # A best checkpoint follows its evaluation, which named each direction's step already.
        if report.kind == "best" and self._best_said_at != report.step:
            self._show_best({"AtoB": report.step, "BtoA": report.step}, report.step)

    def _show_best(self, steps: dict[str, int], said_at: int) -> None:
        words = describe_best(steps)
        self._best_said_at = said_at
        self.best_label.setText(f"best: {words}")
        self.best_label.setToolTip(f"checkpoints/best.pt: the translations of {words} came closest to their targets "
                                   "so far, by the held-out monitor (each direction its own step)")
        self.best_label.show()

    def _on_controller_warned(self, report: WarningReport) -> None:
        tip = f"step {report.step:,}: {report.message}\n{report.hint}"
        if report.severity == "info":  # a notice, not a problem: said calmly, beside the figures
            short = {"plateau": "Plateau: W stopped improving",
                     "drift": "Translations turned back from the target: best checkpoint restored, stopped"}
            text = short.get(report.code, report.message)
            self.notice_label.setText(f"ℹ {text}")
            self.notice_label.setToolTip(tip)
            self.notice_label.show()
            return
        self.warning_label.setText(f"⚠ {report.message}")
        self.warning_label.setToolTip(tip)
        self.warning_label.setProperty("level", report.severity)
        self.warning_label.style().unpolish(self.warning_label)
        self.warning_label.style().polish(self.warning_label)
        self.warning_label.show()

    def _on_controller_finished(self, report: FinishedReport) -> None:
        self._throttle.flush()
        r = self._latest
        if isinstance(r, ProgressReport) and r.step != report.step:  # ended between two progress reports
            total = f" / {'~' if self._budget_s else ''}{r.total_steps:,}" if r.total_steps else ""
            self.step_label.setText(f"step {report.step:,}{total}")
        words = {"completed": "Finished", "stopped": "Stopped", "time-limit": "Time limit reached",
                 "plateau": "Stopped at the plateau", "drifted": "Stopped (drifting; the best checkpoint restored)",
                 "error": "Failed"}
        where = f" · checkpoint {report.checkpoint}" if report.checkpoint else ""
        self.show_message(f"{words.get(report.reason, report.reason)} at step {report.step:,}{where}", 15000)

    def _on_controller_failed(self, message: str, _details: str) -> None:
        self.show_message(f"Training failed: {message}", 15000)


class _WrappingList(QListWidget):
    """A list whose rows are as tall as their text wrapped to the list's width: a QListWidget paints wrapped
    text but sizes each row for its unwrapped lines, so a long hint was cut off at the right edge."""

    _PAD = 6  # px above and below a row's text

    def __init__(self, on_fitted=None):
        super().__init__()
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.on_fitted = on_fitted  # called after the rows' heights change

    def row_height(self, text: str) -> int:
        width = max(40, self.viewport().width() - 8)
        bound = self.fontMetrics().boundingRect(QRect(0, 0, width, 1 << 20), Qt.TextFlag.TextWordWrap, text)
        return bound.height() + self._PAD

    def fit_rows(self) -> None:
        width = self.viewport().width()
        for i in range(self.count()):
            item = self.item(i)
            item.setSizeHint(QSize(width, self.row_height(item.text())))
        if self.on_fitted is not None:
            self.on_fitted()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.fit_rows()


class WarningsPanel(QFrame):
    """What the failure watch said, newest first, each with its hint, wrapped to the panel's width. Hidden
    while empty."""

    def __init__(self, controller: TrainingController, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("warningsPanel")
        self.list = _WrappingList(on_fitted=self._fit_height)
        self.list.setObjectName("warningsList")
        self.title = title = QLabel("Warnings")
        title.setObjectName("warningsTitle")
        dismiss = QPushButton("Dismiss")
        dismiss.setObjectName("flatButton")
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(dismiss)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(4)
        lay.addLayout(head)
        lay.addWidget(self.list)
        dismiss.clicked.connect(self.clear)
        controller.warned.connect(self.add)
        self.hide()

    def add(self, report: WarningReport) -> None:
        when = time.strftime("%H:%M:%S")
        text = f"step {report.step:,} · {report.message}"
        if report.hint:
            text += f"\n    → {report.hint}"
        note = report.severity == "info"
        item = QListWidgetItem(("ℹ " if note else "⚠ ") + text)
        item.setToolTip(f"{when} · {report.code}" + (" · a note, not a problem" if note else ""))
        item.setForeground(QColor(NOTE_COLOR if note else "#ff7b72" if report.severity == "error" else "#e3b341"))
        item.setData(Qt.ItemDataRole.UserRole, report.severity)
        self.list.insertItem(0, item)
        # Only notes: the panel is a calm "Notes" box; any warning makes it the "Warnings" box again.
        only_notes = all(self.list.item(i).data(Qt.ItemDataRole.UserRole) == "info" for i in range(self.list.count()))
        self.title.setText("Notes" if only_notes else "Warnings")
        self.setProperty("level", "info" if only_notes else "warning")
        for w in (self, self.title):
            w.style().unpolish(w)
            w.style().polish(w)
        self.list.fit_rows()
        self.show()

    def _fit_height(self) -> None:
        """As tall as the newest entries, up to three; older ones scroll."""
        rows = sum(self.list.sizeHintForRow(i) for i in range(min(3, self.list.count())))
        self.list.setFixedHeight(rows + 2 * self.list.frameWidth() + 2)

    def count(self) -> int:
        return self.list.count()

    def clear(self) -> None:
        self.list.clear()
        self.title.setText("Warnings")
        self.hide()


def tensorboard_command(run_dir: str | Path) -> str:
    """The shell command that shows a run's TensorBoard logs (``RUN/tb``), quoted for pasting."""
    return f"tensorboard --logdir {shlex.quote(str(Path(run_dir) / 'tb'))}"


class TensorBoardLine(QFrame):
    """``tensorboard --logdir RUN/tb`` in a read-only field with a Copy button; shown only for runs
    whose config has ``output.tensorboard`` on (the run being trained, or the one opened last)."""

    def __init__(self, controller: TrainingController, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tensorboardLine")
        label = QLabel("TensorBoard")
        label.setObjectName("caption")
        self.command = QLineEdit()
        self.command.setObjectName("tensorboardCommand")
        self.command.setReadOnly(True)
        self.command.setToolTip("Run this in a terminal, then open the address it prints")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the command to the clipboard")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(label)
        lay.addWidget(self.command, 1)
        lay.addWidget(self.copy_button)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        controller.started.connect(self._on_controller_started)
        self.hide()

    def show_run(self, run_dir: str, config: Config) -> None:
        """The run now shown in the window; the line appears only when it logs to TensorBoard."""
        on = bool(config.output.tensorboard)
        self.command.setText(tensorboard_command(run_dir) if on else "")
        self.command.setCursorPosition(0)
        self.setVisible(on)

    def _on_controller_started(self, info: RunStarted) -> None:
        self.show_run(info.run_dir, info.config)

    def _on_copy_button_clicked(self) -> None:
        QApplication.clipboard().setText(self.command.text())
        self.command.selectAll()
