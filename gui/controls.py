"""Train / Continue / Pause / Resume / Stop / Save checkpoint, each enabled only when it makes sense.

Pause, resume, stop and save go straight to the ``TrainingController`` (the trainer's
thread-safe requests). Starting a run needs the form and the folders, so Train and
Continue are requests that ``MainWindow`` answers.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from .training_controller import TrainingController

__all__ = ["ControlsPanel"]


class ControlsPanel(QWidget):
    train_requested = Signal()
    continue_requested = Signal()

    def __init__(self, controller: TrainingController, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("controlsPanel")
        self.controller = controller
        self._train_problem = "…"
        self._continue_dir: str | None = None

        def button(text: str, name: str, tip: str) -> QPushButton:
            b = QPushButton(text)
            b.setObjectName(name)
            b.setToolTip(tip)
            return b

        self.train = button("▶  Train", "trainButton", "Start a new run with these folders and settings")
        self.continue_ = button("⟳  Continue run", "continueButton",
                                "Resume the run from its latest checkpoint (its own settings and folders)")
        self.pause = button("❚❚  Pause", "pauseButton", "Pause at the next step")
        self.resume = button("▶  Resume", "resumeButton", "Continue a paused run")
        self.stop = button("■  Stop", "stopButton", "Stop at the next step; a checkpoint is saved on the way out")
        self.save = button("Save checkpoint", "saveButton", "Save a checkpoint at the next step (at once when paused)")
        self.hint = QLabel()
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(False)
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        for b in (self.train, self.continue_, self.pause, self.resume, self.stop, self.save):
            lay.addWidget(b)
        lay.addSpacing(8)
        lay.addWidget(self.hint, 1)

        self.train.clicked.connect(self.train_requested)
        self.continue_.clicked.connect(self.continue_requested)
        self.pause.clicked.connect(controller.pause)
        self.resume.clicked.connect(controller.resume)
        self.stop.clicked.connect(controller.stop)
        self.save.clicked.connect(controller.request_save)
        controller.state_changed.connect(self._on_controller_state_changed)
        self._update()

    @property
    def train_problem(self) -> str:
        return self._train_problem

    @property
    def continue_run(self) -> str | None:
        return self._continue_dir

    def set_train_problem(self, problem: str) -> None:
        """'' when Train may start; otherwise the reason, shown as the button's hint."""
        self._train_problem = problem
        self._update()

    def set_continue_run(self, run_dir: str | None) -> None:
        """A run folder with a checkpoint that Continue would resume (None: nothing to continue)."""
        self._continue_dir = run_dir
        self._update()

    def _on_controller_state_changed(self, _state: str) -> None:
        self._update()

    def _update(self) -> None:
        c = self.controller
        idle = c.state == c.IDLE
        self.train.setEnabled(idle and not self._train_problem)
        self.continue_.setVisible(self._continue_dir is not None)
        self.continue_.setEnabled(idle and self._continue_dir is not None)
        self.pause.setVisible(c.state != c.PAUSED)
        self.pause.setEnabled(c.state in (c.RUNNING, c.STARTING))
        self.resume.setVisible(c.state == c.PAUSED)
        self.resume.setEnabled(c.state == c.PAUSED)
        self.stop.setEnabled(c.state in (c.RUNNING, c.STARTING, c.PAUSED))
        self.save.setEnabled(c.can_save)
        hints = {c.STARTING: "Loading the data and building the networks…", c.PAUSED: "Paused.",
                 c.STOPPING: "Stopping after this step, then saving a checkpoint…"}
        if idle:
            self.hint.setText(self._train_problem)
        else:
            self.hint.setText(hints.get(c.state, ""))
        self.hint.setProperty("level", "warning" if idle and self._train_problem else "")
        self.hint.style().unpolish(self.hint)
        self.hint.style().polish(self.hint)
