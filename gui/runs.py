"""Reading an earlier run folder back: its config, its metrics and its latest preview.

RUN/config.json (validated by ``Config.from_json``), RUN/metrics.jsonl (one JSON row per
report, ``"type": "progress" | "eval"``), RUN/previews/step_XXXXXXX.png, RUN/run.json (the
data folders) and RUN/checkpoints/latest.pt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from engine.config import Config, ConfigError

__all__ = ["RunError", "RunInfo", "read_run"]

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
