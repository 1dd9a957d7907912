"""The critic job of the Distances tab: ``engine.wasserstein.critic.estimate_w1`` on a worker thread.

``train_critic`` gets a ``CriticJob`` snapshot (case, parameter, method, steps), draws the
samples, trains the critic and measures it, all in the worker thread. The engine reports
the dual every few iterations; the job batches those points and sends them at most ten
times a second as a fresh numpy array (``ctx.emit``), so the GUI thread is never flooded and
never reads a buffer the job still writes. At the end it evaluates f over the view (a grid for
2-D cases, a curve for 1-D ones) and returns a ``CriticResult`` of plain floats and numpy
copies: the trained ``nn.Module`` never leaves the worker thread.

``CriticController`` lives in the GUI thread and runs one job at a time on its ``JobRunner``
(``gui.jobs``), like ``TrainingController`` does for training; Stop travels through the job
context's ``threading.Event``, which the engine polls before every iteration (``should_stop``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from engine.wasserstein.critic import DEFAULT_SAMPLES, METHODS, critic_curve, critic_grid, estimate_w1, torch_threads
from engine.wasserstein.distances import CASES

from .jobs import Job, JobContext, JobRunner

log = logging.getLogger(__name__)

__all__ = ["CriticJob", "CriticResult", "train_critic", "CriticController"]

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


def train_critic(ctx: JobContext, job: CriticJob) -> CriticResult:
    """The job, on the runner's thread: sample, train, measure, evaluate f over the view."""
    case = CASES[job.case]
    t0 = time.perf_counter()
    pending: list[tuple[float, float]] = []
    history: list[tuple[float, float]] = []
    last_emit = time.monotonic()

    def flush() -> None:
        nonlocal last_emit
        if pending:
            ctx.emit(np.array(pending, dtype=np.float64))  # a new array per signal
            pending.clear()
        last_emit = time.monotonic()

    def on_progress(point) -> None:
        pending.append((float(point.iteration), float(point.dual)))
        history.append(pending[-1])
        if time.monotonic() - last_emit >= EMIT_INTERVAL_S:
            flush()

    def should_stop() -> bool:
        return ctx.stop_requested

    # One intra-op thread: the ops are tiny, and a training run may share the cores (see
    # estimate_w1). The context restores the count, so later jobs on the thread are not affected.
    with torch_threads(1):
        gen = torch.Generator().manual_seed(job.seed)
        p, q = case.sample(job.samples, job.param, gen)
        est = estimate_w1(p, q, job.method, steps=job.steps, seed=job.seed, callback=on_progress,
                          should_stop=should_stop, report_every=job.report_every)
        flush()
        grid = curve_x = curve_f = None
        if case.dim == 2:
            grid = critic_grid(est.critic, job.xlim, job.ylim, job.resolution)
        elif case.dim == 1:
            curve_x = np.linspace(job.xlim[0], job.xlim[1], max(2, job.resolution * 4))
            curve_f = critic_curve(est.critic, curve_x)
    corrected = est.corrected if est.corrected is not None and math.isfinite(est.corrected) else None
    return CriticResult(
        job=job, w=float(est.w), exact_w=float(case.exact(job.param).w), grad_norm=float(est.grad_norm),
        corrected=corrected, iterations=int(est.iterations), stopped=est.iterations < job.steps,
        history=np.array(history, dtype=np.float64).reshape(-1, 2), grid=grid, curve_x=curve_x,
        curve_f=curve_f, seconds=time.perf_counter() - t0)


class CriticController(QObject):
    """GUI-thread owner of the critic jobs: one at a time, on one ``JobRunner``.

    ``finished``/``failed`` come after the thread has been joined, so a receiver may start
    the next job at once.
    """

    busy_changed = Signal(bool)
    progressed = Signal(object)   # np.ndarray (k, 2): (iteration, dual) points since the last emit
    finished = Signal(object)     # CriticResult
    failed = Signal(str, str)     # message, traceback

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs = JobRunner("critic", self)  # stops the job and joins its thread on aboutToQuit

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def start(self, job: CriticJob) -> Job:
        if self.busy:
            raise RuntimeError("a critic is already training")
        handle = self.jobs.submit(train_critic, job, takes_context=True, yielded=self.progressed.emit,
                                  finished=self._on_job_finished, failed=self._on_job_failed)
        self.busy_changed.emit(True)
        return handle

    def stop(self) -> None:
        self.jobs.stop()

    def wait(self, ms: int = -1) -> bool:
        """Join the thread (closing, tests); True when it has finished."""
        return self.jobs.wait(ms)

    def _on_job_finished(self, result: CriticResult) -> None:
        self.busy_changed.emit(False)
        self.finished.emit(result)

    def _on_job_failed(self, message: str, details: str) -> None:
        log.error("critic training failed: %s\n%s", message, details)
        self.busy_changed.emit(False)
        self.failed.emit(message, details)
