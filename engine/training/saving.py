"""Saving the training state into the run's checkpoints, knowing what was saved last, and keeping the best.

A save that fails (a full disk, a read-only folder) is reported, not raised: the loop pauses
and the user can free space and resume. Nothing half-written is left (``engine.io.atomic``).

``BestKeeper`` keeps ``checkpoints/best.pt`` at the evaluation with the lowest monitored
distance (``engine.wasserstein.monitor``), notices when it has stopped falling and, with its drift
guard on, when the translations have turned back from the target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from engine.config import Config
from engine.errors import CheckpointError, DataError
from engine.io.checkpoint_files import CheckpointFolder, config_from_checkpoint, load_checkpoint, save_checkpoint
from engine.io.run_folder import BEST, RunFolder
from engine.training.metric_keys import BEST_STEP
from engine.training.reports import CheckpointReport, Report, WarningReport
from engine.training.state import TrainingState
from engine.wasserstein.monitor import WAYS, Reading

__all__ = ["StateSaver", "BestKeeper", "resume_point", "DRIFT_BELOW", "DRIFT_RISE"]

# The drift guard: where the best score (each direction's W over its start, summed; the untranslated sources score 2)
# had come below DRIFT_BELOW, a score DRIFT_RISE times the best one's, beyond both readings' noise, is a drift.
DRIFT_BELOW = 1.0
DRIFT_RISE = 1.2
# The guard (``schedule.restore_on_drift``) watches the per-pixel families only (``Config.is_per_pixel``), whose
# drift is understood. A ResNet's W wanders while it learns, and it is never stopped this way.


class StateSaver:
    """``meta()`` gives what the payload needs besides the state (epoch, total steps, time, data paths)."""

    def __init__(self, state: TrainingState, run_folder: RunFolder, keep: int, meta: Callable[[], dict[str, Any]]):
        self.state, self.meta = state, meta
        self.manager = CheckpointFolder(run_folder.path, keep)
        self.saved_step = state.step  # the step of the newest checkpoint (as far as this session knows)

    @property
    def latest(self) -> Path:
        return self.manager.latest

    def save(self) -> Path:
        """Write a checkpoint of the state now."""
        path = self.manager.save(self.state.step, self.state.payload(**self.meta()))
        self.saved_step = self.state.step
        return path

    def save_report(self) -> Report:
        """A CheckpointReport, or a save-failed error WarningReport (the caller pauses)."""
        try:
            return CheckpointReport(self.state.step, str(self.save()))
        except CheckpointError as e:
            return WarningReport(self.state.step, "save-failed", f"checkpoint not saved: {e}",
                                 "Free disk space or choose a writable run folder, then resume. Training is paused.",
                                 severity="error")

    def save_best(self) -> Path:
        """The generators of the current step as checkpoints/best.pt."""
        return save_checkpoint(self.best, self.state.generators_payload(self.meta().get("data_scale")))

    @property
    def best(self) -> Path:
        return self.manager.dir / BEST

    def up_to_date(self) -> bool:
        """Whether the newest checkpoint holds the current step."""
        return self.saved_step == self.state.step and self.latest.exists()


def resume_point(run_dir, max_steps: int | None, data_paths: tuple[str, str] | None
                 ) -> tuple[dict[str, Any], Config, tuple[str, str]]:
    """(checkpoint, config, data folders) to continue ``run_dir`` from its latest checkpoint;
    ``max_steps`` extends a step-limited run, ``data_paths`` replaces folders that moved."""
    ck = load_checkpoint(run_dir)
    cfg = config_from_checkpoint(ck, str(run_dir))
    cfg = cfg.with_values(max_steps=max_steps) if max_steps is not None else cfg
    paths = data_paths or tuple(ck.get("data", {}).get("paths", ()))
    if len(paths) != 2 or not all(paths):
        raise DataError(f"{run_dir}: the checkpoint does not record its data folders; give them explicitly")
    return ck, cfg, (str(paths[0]), str(paths[1]))


class BestKeeper:
    """The evaluation with the lowest monitored distance, its checkpoint, and the plateau notice.

    The score is W / start summed over both directions (start: the identity's distance, measured
    once per run), so that neither direction's scale outweighs the other. Per direction it ranks the
    evaluations exactly as the remaining distance (W − floor) / (start − floor) does, but it stays
    defined where that does not: when the held-out images differ among themselves more than the
    domains do, the floor reaches the start (measured on the photo tasks of the suite) and the
    remaining distance has no meaning, yet a lower W is still closer.

    ``best.pt`` follows the latest evaluation whose score is within its own 95 % half-width (summed
    over the directions) of the lowest score seen: readings within the noise are ties, and a tie
    goes to the later step, which has trained longer. Once translations are as close to the target
    as two halves of the target are to each other (the demo task after about a minute), the monitor
    can no longer rank them while fidelity still improves; picking the earliest of the ties then
    cost 1.2 dB of PSNR on that task. *Progress* is a score below the last progress by more than
    the half-width; ``patience`` evaluations without any make a plateau, said once (and, with
    ``stop``, the end of the run).

    The drift guard (``snapshot`` given): once the best score has come below ``DRIFT_BELOW`` (half
    the untranslated sources' 2: the translations had made a large change), a score above
    ``DRIFT_RISE`` times the best, with the noise of both readings against it, is a *drift*: the
    translations are turning back from the target. A per-pixel generator does this when the change is
    not a per-pixel one. On the pencil sketch the colour map reached 15.8 dB at a score of 0.59, then
    fell to 9.1 while the score rose to 0.74; on the demo (green ground to white, while the white clouds
    must come back) it reached 17.1 dB at 0.77, then the cycle loss pulled it towards an invertible map
    and it fell to 9.8 while the score rose to 1.41. Where the change is a colour grade or a small
    filter the best stays above 1.3 (1.32–1.79 on the suite's other twelve tasks), the translations
    close in on the sources as they learn, and the score creeps up while the PSNR still climbs (edges,
    bloom, cartoon, sepia: by 8–13 % in two minutes): the guard leaves those alone. ``snapshot()``
    is called at every new best and what it returns is kept (``kept``), so that the trainer can
    restore it; ``drift_step`` is set at the drift and a notice is reported, once.
    """

    def __init__(self, checkpoints: StateSaver | None, patience: int, stop: bool,
                 snapshot: Callable[[], Any] | None = None):
        self.checkpoints, self.patience, self.stop, self.snapshot = checkpoints, patience, stop, snapshot
        self.best_step: int | None = None
        self.best_score = math.inf   # the lowest score seen
        self.best_half_width = 0.0   # the noise of the reading that set it
        self.mark = math.inf         # the score of the last progress beyond the noise (for the plateau)
        self.since_best = 0
        self.plateau = False
        self.kept: Any = None        # snapshot() at best_step (this session's; None until a best is seen)
        self.drift_step: int | None = None  # the evaluation that found the drift

    @staticmethod
    def score(ev: dict[str, float]) -> tuple[float, float] | None:
        """(summed W / start, its half-width), or None when the evaluation has no (usable) monitor readings."""
        readings = [Reading.from_metrics(ev, way) for way, _, _ in WAYS]
        if any(r is None for r in readings):
            return None
        try:
            parts = [(r.w / r.start, (r.hi - r.lo) / 2 / r.start) for r in readings]
        except ZeroDivisionError:
            return None
        if not all(math.isfinite(v) for pair in parts for v in pair):
            return None
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def observe(self, step: int, ev: dict[str, float]) -> list[Report]:
        scored = self.score(ev)
        if scored is None:
            return []
        value, half_width = scored
        out: list[Report] = []
        if self.best_step is None or value < self.mark - half_width:  # progress beyond the noise
            self.mark, self.since_best, self.plateau = value, 0, False
        else:
            self.since_best += 1
        if self.best_step is None or value <= self.best_score + half_width:  # as good as the best, within noise
            if value < self.best_score:
                self.best_half_width = half_width
            self.best_step, self.best_score = step, min(value, self.best_score)
            if self.snapshot is not None:
                self.kept = self.snapshot()
            if self.checkpoints is not None:
                try:
                    out.append(CheckpointReport(step, str(self.checkpoints.save_best()), kind="best"))
                except CheckpointError as e:
                    out.append(WarningReport(step, "save-failed", f"best checkpoint not saved: {e}",
                                             "Free disk space; training goes on.", severity="error"))
        ev[BEST_STEP] = float(self.best_step)
        if self.since_best >= self.patience and not self.plateau:
            self.plateau = True
            out.append(WarningReport(
                step, "plateau",
                f"the monitored W has not improved beyond its noise for {self.since_best} evaluations: "
                f"the best translations so far are those of step {self.best_step}",
                f"Training on may not help much. Translate or export with the best checkpoint (step {self.best_step}), "
                "or stop here." + (" Stopping, as asked." if self.stop else ""), severity="info"))
        if self._drift(value, half_width):
            self.drift_step = step
            out.append(WarningReport(
                step, "drift",
                f"the translations are turning back from the target: the monitored W is {value / self.best_score:.1f}× "
                f"what it was at its best, step {self.best_step}",
                f"Restored the generators of step {self.best_step} and stopped: this generator family cannot learn "
                "your change any further. If the change draws new shapes or textures (summer → winter, photo → "
                "sketch), pin the ResNet (Model → Generator family; --set netG=resnet).", severity="info"))
        return out

    def _drift(self, value: float, half_width: float) -> bool:
        """Whether ``value`` is a drift from the best (see the class docstring); False without a snapshot."""
        if self.snapshot is None or self.kept is None or self.drift_step is not None:
            return False
        return (0 < self.best_score < DRIFT_BELOW
                and value - half_width > DRIFT_RISE * (self.best_score + self.best_half_width))

    def state_dict(self) -> dict[str, Any]:
        return {"best_step": self.best_step, "best_score": self.best_score, "mark": self.mark,
                "since_best": self.since_best, "plateau": self.plateau, "best_half_width": self.best_half_width,
                "drift_step": self.drift_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_step = state.get("best_step")
        self.best_score = float(state.get("best_score", math.inf))
        self.mark = float(state.get("mark", self.best_score))
        self.since_best = int(state.get("since_best", 0))
        self.plateau = bool(state.get("plateau", False))
        self.best_half_width = float(state.get("best_half_width", 0.0))
        self.drift_step = state.get("drift_step")  # a resumed run that drifted is not stopped again
