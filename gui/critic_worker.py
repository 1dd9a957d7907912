"""The critic worker of the Distances tab: ``engine.distances.estimate_w1`` on its own QThread.

``CriticWorker`` gets a ``CriticJob`` snapshot (case, parameter, method, steps), draws the
samples, trains the critic and measures it, all in the worker thread. The engine reports
the dual every few iterations; the worker batches those points and emits them at most ten
times a second as a fresh numpy array, so the GUI thread is never flooded and never reads a
buffer the worker still writes. At the end it evaluates f over the view (a grid for 2-D
cases, a curve for 1-D ones) and emits a ``CriticResult`` of plain floats and numpy copies:
the trained ``nn.Module`` never leaves the worker thread.

``CriticController`` lives in the GUI thread and owns one thread and one worker per job, like
``TrainingController`` does for training; Stop travels through a ``threading.Event`` that the
engine polls before every iteration (``should_stop``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from engine.distances import CASES, DEFAULT_SAMPLES, METHODS, critic_curve, critic_grid, estimate_w1, torch_threads

log = logging.getLogger(__name__)

__all__ = ["CriticJob", "CriticResult", "CriticWorker", "CriticController"]

EMIT_INTERVAL_S = 0.1  # at most 10 progress signals a second


@dataclass(frozen=True)
class CriticJob:
    """One critic training, fixed when Train critic is pressed.

    ``xlim``/``ylim``: where f is evaluated afterwards (``ylim`` only for 2-D cases);
    ``resolution``: grid cells per side (2-D) or points of the curve (1-D).
    """

    case: str
    param: float
    method: str = "lp"
    steps: int = 800
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    xlim: tuple[float, float] = (-1.0, 1.0)
    ylim: tuple[float, float] = (-1.0, 1.0)
    resolution: int = 96
    report_every: int = 5

    def __post_init__(self) -> None:
        if self.case not in CASES:
            raise ValueError(f"unknown case {self.case!r}; valid choices: {', '.join(CASES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid choices: {', '.join(METHODS)}")


@dataclass(frozen=True)
class CriticResult:
    """What the panel shows after a run: numbers and numpy copies only."""

    job: CriticJob
    w: float                      # E_P f − E_Q f on held-out samples
    exact_w: float
    grad_norm: float              # mean ‖∇f‖ at held-out interpolates
    corrected: float | None       # w / ‖∇f‖
    iterations: int
    stopped: bool
    history: np.ndarray           # (k, 2): iteration, training-batch dual
    grid: np.ndarray | None       # 2-D: (n, n), row i ↔ y_i, column j ↔ x_j
    curve_x: np.ndarray | None    # 1-D: f(curve_x) = curve_f
    curve_f: np.ndarray | None
    seconds: float


class CriticWorker(QObject):
    progressed = Signal(object)   # np.ndarray (k, 2): (iteration, dual) points since the last emit
    finished = Signal(object)     # CriticResult
    failed = Signal(str, str)     # message, traceback

    def __init__(self, job: CriticJob):
        super().__init__()
        self.job = job
        self._stop = threading.Event()

    def stop(self) -> None:
        """Thread-safe: the engine checks it before every iteration."""
        self._stop.set()

    def _should_stop(self) -> bool:
        return self._stop.is_set() or QThread.currentThread().isInterruptionRequested()

    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # shown by the panel; the tab stays usable
            log.exception("critic training failed")
            self.failed.emit(str(e) or type(e).__name__, traceback.format_exc())
        finally:
            # End the thread's event loop from here, not from the GUI thread: a GUI thread that
            # blocks in wait() (closing the window) could never deliver a queued quit.
            QThread.currentThread().quit()

    def _run(self) -> None:
        job = self.job
        case = CASES[job.case]
        t0 = time.perf_counter()
        pending: list[tuple[float, float]] = []
        history: list[tuple[float, float]] = []
        last_emit = time.monotonic()

        def flush() -> None:
            nonlocal last_emit
            if pending:
                self.progressed.emit(np.array(pending, dtype=np.float64))  # a new array per signal
                pending.clear()
            last_emit = time.monotonic()

        def on_progress(point) -> None:
            pending.append((float(point.iteration), float(point.dual)))
            history.append(pending[-1])
            if time.monotonic() - last_emit >= EMIT_INTERVAL_S:
                flush()

        # One intra-op thread: the ops are tiny, and a training run may share the cores (see
        # estimate_w1). The context restores the count, so later threads are not affected.
        with torch_threads(1):
            gen = torch.Generator().manual_seed(job.seed)
            p, q = case.sample(job.samples, job.param, gen)
            est = estimate_w1(p, q, job.method, steps=job.steps, seed=job.seed, callback=on_progress,
                              should_stop=self._should_stop, report_every=job.report_every)
            flush()
            grid = curve_x = curve_f = None
            if case.dim == 2:
                grid = critic_grid(est.critic, job.xlim, job.ylim, job.resolution)
            elif case.dim == 1:
                curve_x = np.linspace(job.xlim[0], job.xlim[1], max(2, job.resolution * 4))
                curve_f = critic_curve(est.critic, curve_x)
        corrected = est.corrected if est.corrected is not None and math.isfinite(est.corrected) else None
        self.finished.emit(CriticResult(
            job=job, w=float(est.w), exact_w=float(case.exact(job.param).w), grad_norm=float(est.grad_norm),
            corrected=corrected, iterations=int(est.iterations), stopped=est.iterations < job.steps,
            history=np.array(history, dtype=np.float64).reshape(-1, 2), grid=grid, curve_x=curve_x,
            curve_f=curve_f, seconds=time.perf_counter() - t0))


class CriticController(QObject):
    """GUI-thread owner of the current critic job's thread and worker.

    ``finished``/``failed`` come after the thread has been joined, so a receiver may start
    the next job at once.
    """

    busy_changed = Signal(bool)
    progressed = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: CriticWorker | None = None
        self._outcome: tuple | None = None
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._on_app_about_to_quit)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, job: CriticJob) -> CriticWorker:
        if self.busy:
            raise RuntimeError("a critic is already training")
        self._outcome = None
        thread = QThread()
        thread.setObjectName("critic")
        worker = CriticWorker(job)
        worker.moveToThread(thread)
        worker.progressed.connect(self.progressed)  # queued: re-emitted in the GUI thread
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        thread.started.connect(worker.run)
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        self.busy_changed.emit(True)
        thread.start()
        return worker

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def wait(self, ms: int = -1) -> bool:
        """Join the thread (closing, tests); True when it has finished."""
        if self._thread is None:
            return True
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    def _on_app_about_to_quit(self) -> None:
        if self._thread is not None:
            self.stop()
            self._thread.wait()

    def _on_worker_finished(self, result: CriticResult) -> None:
        self._outcome = ("finished", result)  # the thread quits by itself; _on_thread_finished reports

    def _on_worker_failed(self, message: str, details: str) -> None:
        self._outcome = ("failed", message, details)

    def _on_thread_finished(self) -> None:
        self._thread.wait()
        self._thread, self._worker = None, None
        outcome = self._outcome or ("failed", "the critic thread ended without a result", "")
        self.busy_changed.emit(False)
        if outcome[0] == "finished":
            self.finished.emit(outcome[1])
        else:
            self.failed.emit(outcome[1], outcome[2])
