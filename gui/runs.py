"""Reading an earlier run folder back: its config, its metrics and its latest preview.

RUN/config.json (validated by ``Config.from_json``), RUN/metrics.jsonl (one JSON row per
report, ``"type": "progress" | "eval"``), RUN/previews/step_XXXXXXX.png, RUN/run.json (the
data folders) and RUN/checkpoints/latest.pt.

``read_run`` reads only the small text files. The checkpoint is checked apart from them, on
a pool thread (``CheckpointCheck``): it is loaded weights-only by the engine, so a file whose
pickle would build objects or run code is refused before anything of it runs, and the run
is then shown without Continue or Use current run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.checkpoint import CheckpointError, config_from_checkpoint, load_checkpoint
from engine.config import Config, ConfigError

from .util import TaskRunner

__all__ = ["RunError", "RunInfo", "read_run", "verify_checkpoint", "CheckpointCheck"]

_PREVIEW_RE = re.compile(r"^step_(\d+)\.png$")


class RunError(ValueError):
    """The folder is not a readable run. The message says what is wrong."""


@dataclass(frozen=True)
class RunInfo:
    run_dir: str
    config: Config
    rows: tuple[dict, ...]
    preview_path: str | None
    preview_step: int | None
    data_paths: tuple[str, str]
    has_checkpoint: bool
    total_steps: int | None = None

    @property
    def can_continue(self) -> bool:
        """A checkpoint, and the schedule not yet done (as far as the metrics tell)."""
        return self.has_checkpoint and (self.total_steps is None or self.last_step < self.total_steps)

    @property
    def last_step(self) -> int:
        return max((int(r.get("step", 0)) for r in self.rows), default=0)


def read_run(run_dir: str | Path) -> RunInfo:
    run = Path(run_dir)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise RunError(f"{run} is not a run folder: it has no config.json")
    try:
        config = Config.from_json(cfg_path.read_text(encoding="utf-8"))
    except ConfigError as e:
        raise RunError(f"{cfg_path} is not a valid configuration: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunError(f"cannot read {cfg_path}: {e}") from None

    rows = []
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed run
            if isinstance(row, dict) and row.get("type") in ("progress", "eval"):
                rows.append(row)

    previews = []
    if (run / "previews").is_dir():
        for p in (run / "previews").iterdir():
            m = _PREVIEW_RE.match(p.name)
            if m:
                previews.append((int(m.group(1)), p))
    preview_step, preview_path = max(previews) if previews else (None, None)

    data: tuple[str, str] = ("", "")
    total = None
    try:
        meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
        paths = meta.get("data", [])
        if isinstance(paths, list) and len(paths) == 2:
            data = (str(paths[0]), str(paths[1]))
        if isinstance(meta.get("total_steps"), int):
            total = meta["total_steps"]
    except (OSError, json.JSONDecodeError, AttributeError):
        pass

    return RunInfo(str(run), config, tuple(rows), str(preview_path) if preview_path else None, preview_step,
                   data, (run / "checkpoints" / "latest.pt").is_file(), total)


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
        self.tasks = TaskRunner(1, self)

    def check(self, run_dir: str) -> None:
        self.tasks.start(verify_checkpoint, run_dir, succeeded=lambda step: self.verified.emit(run_dir, step),
                         failed=lambda message, _tb: self.refused.emit(run_dir, message))

    @property
    def busy(self) -> bool:
        return self.tasks.busy

    def wait(self) -> None:
        self.tasks.wait()
