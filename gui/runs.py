"""Reading an earlier run folder back: its config, its metrics and its latest preview.

``read_run`` reads only the small text files, through ``engine.io.run_folder``. The checkpoint
is checked apart from them, as a job on a worker thread (``CheckpointCheck``): it is loaded
weights-only by the engine, so a file whose pickle would build objects or run code is refused
before anything of it runs, and the run is then shown without Continue or Use current run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.errors import CheckpointError
from engine.io.checkpoint_files import config_from_checkpoint, load_checkpoint
from engine.io.run_folder import RunError, RunFolder, RunInfo

from .jobs import JobRunner

__all__ = ["RunError", "RunInfo", "read_run", "verify_checkpoint", "CheckpointCheck"]

def read_run(run_dir: str | Path) -> RunInfo:
    """A run folder's config, metrics, latest preview and data folders (``RunError`` if it is no run)."""
    return RunFolder(run_dir).read()


def verify_checkpoint(run_dir: str | Path) -> int:
    """Load a run's latest checkpoint the safe way (weights only) and check its config; → its step.

    Raises ``CheckpointError`` (refused pickle, foreign or broken file, invalid config).
    """
    ck = load_checkpoint(run_dir)
    config_from_checkpoint(ck, str(run_dir))
    if not isinstance(ck.get("models"), dict) or "G" not in ck["models"]:
        raise CheckpointError(f"{run_dir}: the checkpoint holds no generators")
    step = ck.get("step", 0)
    return int(step) if isinstance(step, int) else 0


class CheckpointCheck(QObject):
    """Checks a run's checkpoint in the background: ``verified(run_dir, step)`` or ``refused(run_dir, reason)``."""

    verified = Signal(str, int)
    refused = Signal(str, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs = JobRunner("checkpoint-check", self)

    def check(self, run_dir: str) -> None:
        self.jobs.submit(verify_checkpoint, run_dir, finished=lambda step: self.verified.emit(run_dir, step),
                         failed=lambda message, _tb: self.refused.emit(run_dir, message))

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def wait(self) -> None:
        self.jobs.wait()
