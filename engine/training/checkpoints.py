"""Saving the training state into the run's checkpoints, and knowing what was saved last.

A save that fails (a full disk, a read-only folder) is reported, not raised: the loop pauses
and the user can free space and resume. Nothing half-written is left (``engine.io.atomic``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from engine.config import Config
from engine.errors import CheckpointError, DataError
from engine.io.checkpoint import CheckpointManager, config_from_checkpoint, load_checkpoint
from engine.io.run_folder import RunFolder
from engine.training.reports import CheckpointReport, Report, WarningReport
from engine.training.state import TrainingState

__all__ = ["Checkpoints", "resume_point"]


class Checkpoints:
    """``meta()`` gives what the payload needs besides the state (epoch, total steps, time, data paths)."""

    def __init__(self, state: TrainingState, run_folder: RunFolder, keep: int, meta: Callable[[], dict[str, Any]]):
        self.state, self.meta = state, meta
        self.manager = CheckpointManager(run_folder.path, keep)
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
