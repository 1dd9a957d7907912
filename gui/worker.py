"""The training worker: one QObject on one QThread, driving ``engine.trainer.Trainer.run()``.

``TrainingWorker`` builds the trainer *in the worker thread* from a ``TrainingJob`` snapshot
(config and folder paths, never widgets) and re-emits every report as a signal. Reports are
frozen dataclasses holding numpy copies, so handing them to the GUI thread is safe.

``TrainingController`` lives in the GUI thread. It owns the thread and the worker of the
current run, forwards the worker's signals (re-emitted in the GUI thread, so panels can
connect once for all runs) and exposes the thread-safe commands: pause, resume, stop, save.
Those call straight into the trainer, which implements them with ``threading.Event``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from engine.config import Config
from engine.reports import (CheckpointReport, EvalReport, FinishedReport, PreviewReport, ProgressReport,
                            WarningReport)
from engine.trainer import Trainer

log = logging.getLogger(__name__)

__all__ = ["TrainingJob", "RunStarted", "TrainingWorker", "TrainingController"]


@dataclass(frozen=True)
class TrainingJob:
    """Everything a run needs, fixed when Train is pressed.

    ``resume``: continue the run in ``run_dir`` from its latest checkpoint, with its own config
    (``config`` is ignored) and its recorded data folders unless ``path_a``/``path_b`` are given.
    """

    run_dir: str
    config: Config | None = None
    path_a: str = ""
    path_b: str = ""
    resume: bool = False
    device: str | None = None
    stop_at: int | None = None


@dataclass(frozen=True)
class RunStarted:
    """Sent once the trainer exists: what the status bar and the plots need to know."""

    run_dir: str
    config: Config
    device: str
    step: int
    total_steps: int
    path_a: str
    path_b: str


class TrainingWorker(QObject):
    started = Signal(object)          # RunStarted
    progressed = Signal(object)       # ProgressReport
    evaluated = Signal(object)        # EvalReport
    previews_ready = Signal(object)   # PreviewReport
    checkpoint_saved = Signal(object)  # CheckpointReport
    warned = Signal(object)           # WarningReport
    finished = Signal(object)         # FinishedReport
    failed = Signal(str, str)         # message, traceback

    def __init__(self, job: TrainingJob):
        super().__init__()
        self.job = job
        self._lock = threading.Lock()
        self._trainer: Trainer | None = None
        self._stop_requested = False
        self._pause_requested = False

    # --- commands: called from the GUI thread, thread-safe ---------------------------------
    def stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            trainer = self._trainer
        if trainer is not None:
            trainer.stop()

    def pause(self) -> None:
        with self._lock:
            self._pause_requested = True
            trainer = self._trainer
        if trainer is not None:
            trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._pause_requested = False
            trainer = self._trainer
        if trainer is not None:
            trainer.resume()

    def request_save(self) -> None:
        with self._lock:
            trainer = self._trainer
        if trainer is not None:
            trainer.request_save()

    # --- the run, in the worker thread -----------------------------------------------------
    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # anything at all: the GUI shows it and stays usable
            log.exception("training failed")
            self.failed.emit(str(e) or type(e).__name__, traceback.format_exc())
        finally:
            # The thread ends its own event loop: a GUI thread blocked in wait() (quitting the
            # app) could never deliver a queued quit(), and would wait forever.
            QThread.currentThread().quit()

    def _build(self) -> Trainer:
        job = self.job
        if job.resume:
            paths = (job.path_a, job.path_b) if job.path_a and job.path_b else None
            return Trainer.resume_run(job.run_dir, device=job.device, data_paths=paths)
        return Trainer.from_folders(job.config, job.path_a, job.path_b, run_dir=job.run_dir, device=job.device)

    def _run(self) -> None:
        trainer = self._build()
        with self._lock:
            self._trainer = trainer
            stop, pause = self._stop_requested, self._pause_requested
        if stop:
            trainer.stop()  # the run still writes its folder and a step-0 checkpoint, then ends
        elif pause:
            trainer.pause()
        paths = getattr(trainer, "data_paths", (self.job.path_a, self.job.path_b))
        self.started.emit(RunStarted(str(trainer.run_dir), trainer.cfg, str(trainer.device), trainer.step,
                                     trainer.total_steps, paths[0], paths[1]))
        signal_for = {ProgressReport: self.progressed, EvalReport: self.evaluated,
                      PreviewReport: self.previews_ready, CheckpointReport: self.checkpoint_saved,
                      WarningReport: self.warned}
        thread = QThread.currentThread()
        for report in trainer.run(stop_at=self.job.stop_at):
            if thread.isInterruptionRequested():  # QThread.requestInterruption(): the owner is going away
                trainer.stop()
            if isinstance(report, FinishedReport):
                self.finished.emit(report)
                return
            signal_for[type(report)].emit(report)
        # run() always ends with a FinishedReport; this is a guard against an engine change.
        self.finished.emit(FinishedReport(trainer.step, "completed", "", None))


class TrainingController(QObject):
    """GUI-thread owner of the current run's thread and worker. Panels connect here once.

    ``finished``/``failed`` are emitted after the thread has been joined, so a receiver may
    start the next run right away.
    """

    state_changed = Signal(str)
    started = Signal(object)
    progressed = Signal(object)
    evaluated = Signal(object)
    previews_ready = Signal(object)
    checkpoint_saved = Signal(object)
    warned = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)

    IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._outcome: tuple | None = None
        self.state = self.IDLE
        self.run_dir: str | None = None
        app = QCoreApplication.instance()
        if app is not None:  # a quit that skipped the window's closeEvent still must not kill a running thread
            app.aboutToQuit.connect(self._on_app_about_to_quit)

    # --- queries ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state != self.IDLE

    @property
    def can_save(self) -> bool:
        """The trainer saves at the next step boundary, or at once while paused."""
        return self.state in (self.RUNNING, self.PAUSED)

    # --- commands --------------------------------------------------------------------------
    def start(self, job: TrainingJob) -> TrainingWorker:
        if self.busy:
            raise RuntimeError("a run is already in progress")
        self._outcome = None
        self.run_dir = job.run_dir
        thread = QThread()
        thread.setObjectName("training")
        worker = TrainingWorker(job)
        worker.moveToThread(thread)
        for name in ("started", "progressed", "evaluated", "previews_ready", "checkpoint_saved", "warned"):
            getattr(worker, name).connect(getattr(self, name))  # queued: re-emitted in the GUI thread
        worker.started.connect(self._on_worker_started)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        thread.started.connect(worker.run)
        # Qt's pattern for objects living in a thread: deleted as the thread finishes.
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        self._set_state(self.STARTING)
        thread.start()
        return worker

    def pause(self) -> None:
        if self._worker is not None and self.state in (self.RUNNING, self.STARTING):
            self._worker.pause()
            self._set_state(self.PAUSED)

    def resume(self) -> None:
        if self._worker is not None and self.state == self.PAUSED:
            self._worker.resume()
            self._set_state(self.RUNNING)

    def stop(self) -> None:
        if self._worker is not None and self.state not in (self.IDLE, self.STOPPING):
            self._worker.stop()
            self._set_state(self.STOPPING)

    def request_save(self) -> None:
        if self._worker is not None and self.can_save:
            self._worker.request_save()

    def wait(self, ms: int = -1) -> bool:
        """Join the thread (tests and shutdown); True when it has finished."""
        if self._thread is None:
            return True
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    # --- internals -------------------------------------------------------------------------
    def _on_app_about_to_quit(self) -> None:
        if self._thread is not None:
            self.stop()
            self._thread.wait()  # the trainer saves a checkpoint on its way out

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _on_worker_started(self, info: RunStarted) -> None:
        self.run_dir = info.run_dir
        if self.state == self.STARTING:
            self._set_state(self.RUNNING)

    def _on_worker_finished(self, report: FinishedReport) -> None:
        self._outcome = ("finished", report)  # the thread quits by itself; _on_thread_finished reports

    def _on_worker_failed(self, message: str, details: str) -> None:
        self._outcome = ("failed", message, details)

    def _on_thread_finished(self) -> None:
        self._thread.wait()
        self._thread, self._worker = None, None
        outcome = self._outcome or ("failed", "the training thread ended without a result", "")
        self._set_state(self.IDLE)
        if outcome[0] == "finished":
            self.finished.emit(outcome[1])
        else:
            self.failed.emit(outcome[1], outcome[2])


def default_run_dir(root: Path) -> Path:
    """``root/runs/<timestamp>``, made unique if two runs start within a second."""
    import time

    base = root / "runs" / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
