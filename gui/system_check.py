"""Help → System check…: ``python -m engine doctor``'s report in a dialog.

The checks train a few steps, translate an image and take one paper-preset step, which is about
half a minute on a CPU, so they run as a job on the dialog's own ``JobRunner``, never on the GUI
thread. The dialog says "Checking…" meanwhile, then shows the report in a monospace, selectable
text box with a Copy button. The job cannot be cut short (the engine's checks have no stop point):
closing the dialog leaves it to finish; the main window closes once it has (``done``), and quitting
the app joins it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from engine.tools import doctor

from .jobs import JobRunner
from .util import show_error

__all__ = ["SystemCheckDialog", "SystemReport", "check_system"]


@dataclass(frozen=True)
class SystemReport:
    checks: tuple[doctor.Check, ...]
    text: str

    @property
    def failed(self) -> int:
        return sum(not c.ok for c in self.checks)


def check_system(device: str = "auto", paper_step: bool = True) -> SystemReport:
    """Runs on the worker thread: every check, and the report as the CLI prints it."""
    checks = tuple(doctor.run_doctor(device, paper_step=paper_step))
    return SystemReport(checks, doctor.format_report(list(checks)))


class SystemCheckDialog(QDialog):
    """Runs the checks when ``start`` is called; ``checked(report_text)`` once the report shows."""

    checked = Signal(str)
    done = Signal()  # the job has ended, however it ended

    def __init__(self, device: str = "auto", parent: QWidget | None = None, *, paper_step: bool = True):
        super().__init__(parent)
        self.setWindowTitle("System check")
        self.setObjectName("systemCheckDialog")
        self.device, self.paper_step = device, paper_step
        self.jobs = JobRunner("system-check", self)
        self.report: SystemReport | None = None

        self.state_label = QLabel()
        self.state_label.setObjectName("panelTitle")
        self.hint = QLabel("Versions, the device, bf16 and torch.compile, a 20-step training run, a translation "
                           "round trip" + (" and one step at the paper preset (its peak memory)" if paper_step
                                           else "") + ": the same as python -m engine doctor.")
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setTextVisible(False)
        self.text = QPlainTextEdit()
        self.text.setObjectName("systemReport")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setMinimumSize(720, 240)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = self.buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.again_button = self.buttons.addButton("Check again", QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        self.again_button.clicked.connect(self._on_again_button_clicked)

        lay = QVBoxLayout(self)
        lay.addWidget(self.state_label)
        lay.addWidget(self.hint)
        lay.addWidget(self.busy_bar)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.buttons)
        self._show_idle()

    # --- queries ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def wait(self) -> None:
        self.jobs.wait()

    # --- commands --------------------------------------------------------------------------
    def start(self) -> bool:
        """Run the checks in the background; False while they are running already."""
        if self.busy:
            return False
        self.report = None
        self.state_label.setText("Checking…")
        self.busy_bar.show()
        self.text.setPlainText("")
        self.text.setPlaceholderText("The report shows here when the checks have run (about half a minute on a CPU).")
        self.copy_button.setEnabled(False)
        self.again_button.setEnabled(False)
        self.jobs.submit(check_system, self.device, self.paper_step,
                         finished=self._on_check_finished, failed=self._on_check_failed)
        return True

    # --- slots -----------------------------------------------------------------------------
    def _on_check_finished(self, report: SystemReport) -> None:
        self.report = report
        n = len(report.checks)
        self.state_label.setText(f"All {n} checks passed" if not report.failed else
                                 f"{report.failed} of {n} checks did not pass")
        self.text.setPlainText(report.text)
        self._show_idle()
        self.checked.emit(report.text)
        self.done.emit()

    def _on_check_failed(self, message: str, details: str) -> None:
        self.state_label.setText("The system check itself failed")
        self.text.setPlainText(details)
        self._show_idle()
        show_error(self, "System check failed", message, details)
        self.done.emit()

    def _show_idle(self) -> None:
        self.busy_bar.hide()
        self.copy_button.setEnabled(bool(self.text.toPlainText()))
        self.again_button.setEnabled(True)

    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())

    def _on_again_button_clicked(self) -> None:
        self.start()
