"""What the training loop reports between steps, each at its own cadence.

After every step the loop asks ``Reporter.after_step``: a progress report (with the failure
watch's warnings) every ``log_every`` steps, a held-out evaluation (with the best checkpoint, the
plateau notice and the drift guard) every ``eval_every`` (or later: see ``Reporter.eval_due``),
a preview every ``preview_every`` and a checkpoint every ``save_every``. Rows of metrics.jsonl are
written as the reports are made.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterator

from engine.config import Config
from engine.data.batches import UnpairedBatches
from engine.io.run_folder import RunFolder
from engine.training.evaluation import Evaluator
from engine.training.failure_watch import FailureWatch
from engine.training.reports import EvalReport, PreviewReport, ProgressReport, ProgressWindow, Report, WarningReport
from engine.training.saving import BestKeeper
from engine.training.schedule import Schedule

log = logging.getLogger(__name__)

__all__ = ["Reporter"]


class Reporter:
    def __init__(self, cfg: Config, schedule: Schedule, batches: UnpairedBatches, evaluator: Evaluator,
                 best: BestKeeper, run_folder: RunFolder | None, *, is_main: bool, elapsed: Callable[[], float],
                 save: Callable[[], Report] | None, on_plateau: Callable[[], None],
                 on_drift: Callable[[], None] | None = None):
        self.cfg, self.schedule, self.batches, self.evaluator, self.best = cfg, schedule, batches, evaluator, best
        self.run_folder, self.is_main, self.elapsed = run_folder, is_main, elapsed
        self.save, self.on_plateau, self.on_drift = save, on_plateau, on_drift
        self.watch = FailureWatch(cfg)
        self.last_preview: int | None = None  # the step of this session's latest preview
        self.restored_from: str | None = None  # whose generators the drift guard put back ("step 66"), this session
        self._eval_pending = False  # eval_every has come round since the last evaluation
        self._evals = 0             # evaluations made this session
        self._eval_cost = 0.0       # seconds the last one took (0 until a second: the first measures one-offs)
        self._eval_end = -math.inf  # training seconds at the end of the last one

    def after_step(self, step: int, lr: float, window: ProgressWindow, last: bool) -> Iterator[Report]:
        s, elapsed = self.cfg.schedule, self.elapsed()
        if step % s.log_every == 0 or last or self.schedule.done(step, elapsed):
            its, metrics = window.take(time.perf_counter())
            rep = ProgressReport(step, self.schedule.estimated_total(step, elapsed), self.batches.epoch_of(step), lr,
                                 its, its * self.cfg.data.batch_size, elapsed,
                                 self.schedule.remaining_s(step, elapsed, its),
                                 metrics, self.schedule.progress(step, elapsed))
            self.log("progress", step, epoch=rep.epoch, lr=lr, its_per_s=its, **metrics)
            yield rep
            yield from self._warn(self.watch.observe(step, metrics))
        if self.is_main and self.eval_due(step, elapsed):
            yield from self.evaluation(step)
        if step % s.preview_every == 0 and self.is_main:
            yield self.preview(step)
        if step % s.save_every == 0 and self.save is not None:
            yield self.save()

    def eval_due(self, step: int, elapsed: float) -> bool:
        """Every ``eval_every`` steps, put off until the training since the last evaluation is long enough for
        evaluations to take at most ``eval_share`` of the time: a fast generator (the colour map makes 100 steps in
        about 20 s on one CPU core) would otherwise spend a fifth of its budget on the monitor. The cost is the last
        evaluation's; the session's first (which also measures the monitor's reference levels, once) is not
        counted."""
        s = self.cfg.schedule
        if step % s.eval_every == 0:
            self._eval_pending = True
        return self._eval_pending and elapsed - self._eval_end >= self._eval_cost * (1 - s.eval_share) / s.eval_share

    def evaluation(self, step: int) -> Iterator[Report]:
        t0 = time.perf_counter()
        ev = self.evaluator.evaluate()
        self._eval_pending, self._evals = False, self._evals + 1
        if self._evals > 1:
            self._eval_cost = time.perf_counter() - t0
        self._eval_end = self.elapsed()
        if not ev:
            return
        kept = self.best.observe(step, ev)  # adds the best step to ev
        self.log("eval", step, **ev)
        yield EvalReport(step, self.elapsed(), ev)
        yield from kept
        yield from self._warn(self.watch.observe_eval(step, ev))
        if self.best.plateau and self.best.stop:
            self.on_plateau()
        if self.best.drift_step == step and self.on_drift is not None:
            self.on_drift()  # this evaluation found the drift: the best step's generators back, and the end

    def preview(self, step: int) -> PreviewReport:
        images = self.evaluator.preview()
        self.last_preview = step
        path = self.run_folder.save_preview(images, step, self.restored_from) if self.run_folder is not None else None
        return PreviewReport(step, images, path, self.restored_from)

    def log(self, kind: str, step: int, **values: Any) -> None:
        if self.run_folder is not None:
            self.run_folder.append_metrics(kind, step, self.elapsed(), values)

    @staticmethod
    def _warn(warnings: list[WarningReport]) -> Iterator[WarningReport]:
        for w in warnings:
            log.warning("%s %s", w.message, w.hint)
            yield w
