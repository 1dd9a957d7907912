"""The training controller: one run at a time, on a ``JobRunner`` (``gui.jobs``).

Its job builds the trainer *in the worker thread* from a ``TrainingJob`` snapshot (config and folder
paths, never widgets) and yields every report of ``run()``, which the controller dispatches by type to its
typed signals. Pause, resume, stop and save call the trainer's own thread-safe methods. For a generator
family of ``auto``, the trainer is the family search (``engine.training.search``), which stands in for one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QObject, Signal

from engine.config import Config
from engine.metrics import demo_ground_truth
from engine.training.reports import (
    CheckpointReport,
    EvalReport,
    FamilyChoiceReport,
    FamilyTrialReport,
    FinishedReport,
    PreviewReport,
    ProgressReport,
    WarningReport,
)
from engine.training.search import FamilySearch, open_trainer
from engine.training.trainer import Trainer

from .jobs import Job, JobContext, JobRunner

log = logging.getLogger(__name__)

__all__ = ["TrainingJob", "RunStarted", "TrainingController", "default_run_dir"]


# --- training ---------------------------------------------------------------------------------------
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
    """Sent once the trainer exists: what the status bar and the plots need to know.

    ``torch_threads``: the intra-op thread count the trainer set, read in the training thread.
    """

    run_dir: str
    config: Config
    device: str
    step: int
    total_steps: int
    path_a: str
    path_b: str
    torch_threads: int = 0


class _TrainingRun:
    """The job of one run: a generator on the runner's thread, and its lock-protected pause and save.

    Stops travel through the job's context (``ctx.on_stop(trainer.stop)``); pause, resume and save
    asked for before the trainer exists are remembered and applied once it does.
    """

    def __init__(self, job: TrainingJob):
        self.job = job
        self._lock = threading.Lock()
        self._trainer: Trainer | FamilySearch | None = None
        self._pause_requested = False

    # --- commands: called from the GUI thread, thread-safe -----------------------------------
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

    # --- the run, in the worker thread -----------------------------------------------------------
    def __call__(self, ctx: JobContext):
        """Yields ``RunStarted``, then every report but the last; returns the ``FinishedReport``."""
        trainer = self._build()
        with self._lock:
            self._trainer = trainer
            pause = self._pause_requested
        if pause:
            trainer.pause()
        # From here stops go to the trainer, one asked for while it was being built included: the
        # run still writes its folder and a checkpoint on its way out, then ends by itself.
        ctx.on_stop(trainer.stop)
        paths = trainer.data_paths
        yield RunStarted(str(trainer.run_dir), trainer.cfg, str(trainer.device), trainer.step, trainer.total_steps,
                         paths[0], paths[1], torch.get_num_threads())
        for report in trainer.run(stop_at=self.job.stop_at):
            if isinstance(report, FinishedReport):
                return report
            yield report
        # run() always ends with a FinishedReport; this is a guard against an engine change.
        return FinishedReport(trainer.step, "completed", "", None)

    def _build(self) -> Trainer | FamilySearch:
        job = self.job
        if job.resume:
            paths = (job.path_a, job.path_b) if job.path_a and job.path_b else None
            return Trainer.resume_run(job.run_dir, device=job.device, data_paths=paths,
                                      ground_truth_for=lambda a, c: demo_ground_truth(a, c.data.crop_size))
        gt = demo_ground_truth(job.path_a, job.config.data.crop_size)
        return open_trainer(job.config, job.path_a, job.path_b, run_dir=job.run_dir, device=job.device,
                            ground_truth=gt)


class TrainingController(QObject):
    """GUI-thread owner of the current run. Panels connect here once, for all runs.

    ``finished``/``failed`` are emitted after the training thread has been joined, so a receiver
    may start the next run right away.
    """

    state_changed = Signal(str)
    started = Signal(object)           # RunStarted
    progressed = Signal(object)        # ProgressReport
    evaluated = Signal(object)         # EvalReport
    previews_ready = Signal(object)    # PreviewReport
    checkpoint_saved = Signal(object)  # CheckpointReport
    warned = Signal(object)            # WarningReport
    trial_progressed = Signal(object)  # FamilyTrialReport: the auto family search at work
    family_chosen = Signal(object)     # FamilyChoiceReport
    finished = Signal(object)          # FinishedReport
    failed = Signal(str, str)          # message, traceback

    IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs = JobRunner("training", self)  # stops the run and joins its thread on aboutToQuit
        self._run: _TrainingRun | None = None
        self._job: Job | None = None
        self.state = self.IDLE
        self.run_dir: str | None = None
        self._signal_for = {ProgressReport: self.progressed, EvalReport: self.evaluated,
                            PreviewReport: self.previews_ready, CheckpointReport: self.checkpoint_saved,
                            WarningReport: self.warned, FamilyTrialReport: self.trial_progressed,
                            FamilyChoiceReport: self.family_chosen}

    # --- queries ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state != self.IDLE

    @property
    def can_save(self) -> bool:
        """The trainer saves at the next step boundary, or at once while paused."""
        return self.state in (self.RUNNING, self.PAUSED)

    # --- commands --------------------------------------------------------------------------------
    def start(self, job: TrainingJob) -> Job:
        """Start a run in the background and return at once."""
        if self.busy:
            raise RuntimeError("a run is already in progress")
        self.run_dir = job.run_dir
        self._run = _TrainingRun(job)
        self._set_state(self.STARTING)
        self._job = self.jobs.submit(self._run, takes_context=True, yielded=self._on_job_yielded,
                                     finished=self._on_job_finished, failed=self._on_job_failed)
        return self._job

    def pause(self) -> None:
        if self._run is not None and self.state in (self.RUNNING, self.STARTING):
            self._run.pause()
            self._set_state(self.PAUSED)

    def resume(self) -> None:
        if self._run is not None and self.state == self.PAUSED:
            self._run.resume()
            self._set_state(self.RUNNING)

    def stop(self) -> None:
        if self._job is not None and self.state not in (self.IDLE, self.STOPPING):
            self._job.stop()  # through the job's context to trainer.stop(): it saves a checkpoint on its way out
            self._set_state(self.STOPPING)

    def request_save(self) -> None:
        if self._run is not None and self.can_save:
            self._run.request_save()

    def wait(self, ms: int = -1) -> bool:
        """Join the training thread (tests and shutdown); True when it has finished."""
        return self.jobs.wait(ms)

    # --- internals -------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _on_job_yielded(self, item: Any) -> None:
        if isinstance(item, RunStarted):
            self.run_dir = item.run_dir
            self.started.emit(item)
            if self.state == self.STARTING:
                self._set_state(self.RUNNING)
            return
        self._signal_for[type(item)].emit(item)

    def _on_job_finished(self, report: FinishedReport) -> None:
        self._run = self._job = None
        self._set_state(self.IDLE)
        self.finished.emit(report)

    def _on_job_failed(self, message: str, details: str) -> None:
        log.error("training failed: %s\n%s", message, details)
        self._run = self._job = None
        self._set_state(self.IDLE)
        self.failed.emit(message, details)


def default_run_dir(root: Path) -> Path:
    """``root/runs/<timestamp>``, made unique if two runs start within a second."""
    base = root / "runs" / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
