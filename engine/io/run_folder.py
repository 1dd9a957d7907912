"""A run folder: the one place that knows its layout, and the lock that keeps it to one writer.

    RUN/config.json          every hyperparameter (the same JSON the checkpoint carries)
    RUN/run.json             data folders, device, total steps
    RUN/metrics.jsonl        one JSON object per report (type "progress" or "eval")
    RUN/previews/step_XXXXXXX.png
    RUN/checkpoints/step_XXXXXXX.pt, latest.pt, best.pt (the lowest monitored W; generators only)
    RUN/.lock                held (an OS file lock) by the process that is training the run
    RUN/.lock.json           who holds it: PID, host, since when, command line

Writing a run takes the lock for the life of the run: a second writer, in another process,
gets a ``RunLockedError`` that names the folder and the process that holds it. The OS drops
the lock when its process ends, however it ends, so a crash never leaves a stale lock.
Reading a run (opening it, translating, exporting) never needs the lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

# filelock: one tested cross-platform OS lock (flock on POSIX, LockFileEx on Windows) instead of our own.
from filelock import FileLock, Timeout

from engine.config import Config
from engine.errors import ConfigError, EngineError, RunLockedError
from engine.io.atomic import atomic_write_text, save_png, write_json
from engine.io.previews import preview_grid

log = logging.getLogger(__name__)

__all__ = ["RunFolder", "RunInfo", "RunError", "RunLock", "RUN_FILES", "run_of_model"]

CONFIG, RUN, METRICS, PREVIEWS, CHECKPOINTS = "config.json", "run.json", "metrics.jsonl", "previews", "checkpoints"
LOCK, HOLDER = ".lock", ".lock.json"  # the OS lock, and who holds it (a file of its own: the lock's may be emptied)
LATEST, BEST = "latest.pt", "best.pt"
RUN_FILES = frozenset({CONFIG, RUN, METRICS})  # files that stand for the run folder they are in
_PREVIEW_RE = re.compile(r"^step_(\d+)\.png$")


class RunError(EngineError):
    """The folder is not a readable run. The message says what is wrong."""


@dataclass(frozen=True)
class RunInfo:
    """What a run folder says about itself, read from its small text files only."""

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


# --- the lock ---------------------------------------------------------------------------------------
# Held locks of this process, by real path: a process that already holds a run's lock (the CLI
# takes it before the slow data scan, then the trainer takes it again, maybe on another thread)
# re-enters it. A second FileLock on the same file would conflict with the first one.
_HELD: dict[str, list] = {}  # real path -> [FileLock, count]
_HELD_GUARD = threading.Lock()


def _describe_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(info["since"])))
        return f"process {int(info['pid'])} on {info['host']}, since {since}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class RunLock:
    """The exclusive lock of one run folder; ``release()`` (or leaving the ``with``) gives it back."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
        self.holder_path = run_dir / HOLDER
        self.key = os.path.realpath(run_dir)
        self._released = False
        with _HELD_GUARD:
            held = _HELD.get(self.key)
            if held is not None:
                held[1] += 1
                return
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.path, timeout=0, thread_local=False)
            try:
                lock.acquire()
            except Timeout:
                raise RunLockedError(f"{run_dir} is in use by {_describe_holder(self.holder_path)}. Wait until "
                                     "that run ends, or choose another run folder.") from None
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                      "command": " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])[:300]}
            try:
                self.holder_path.write_text(json.dumps(holder), encoding="utf-8")
            except OSError as e:  # the lock holds without it; a refused writer then reads "another process"
                log.warning("could not write %s: %s", self.holder_path, e)
            _HELD[self.key] = [lock, 1]

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with _HELD_GUARD:
            held = _HELD.get(self.key)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del _HELD[self.key]
                self.holder_path.unlink(missing_ok=True)  # while still held: never another holder's file
                held[0].release()

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# --- the folder --------------------------------------------------------------------------------------
class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- layout ---
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def run_file(self) -> Path:
        return self.path / RUN

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def previews_dir(self) -> Path:
        return self.path / PREVIEWS

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def latest_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / LATEST

    @property
    def best_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / BEST

    def checkpoint(self, which: str | int = "latest") -> Path:
        """``latest``, ``best`` or a step number's checkpoint file (which may not exist)."""
        if which == "latest":
            return self.latest_checkpoint
        if which == "best":
            return self.best_checkpoint
        return self.path / CHECKPOINTS / f"step_{int(which):07d}.pt"

    def preview_file(self, step: int) -> Path:
        return self.path / PREVIEWS / f"step_{step:07d}.png"

    def has_checkpoint(self) -> bool:
        return self.latest_checkpoint.is_file()

    def looks_like_run(self) -> bool:
        return self.config_file.is_file() or self.has_checkpoint()

    # --- writing (the trainer, holding the lock) ---
    def lock(self) -> RunLock:
        """Take the run's exclusive lock (re-entrant within this process). Raises ``RunLockedError``."""
        return RunLock(self.path)

    def prepare(self, config: Config, meta: dict[str, Any], resume_step: int) -> None:
        """Create the layout, write config.json and run.json, drop metric rows written after
        ``resume_step`` (a run killed between checkpoints repeats those steps) and the temp files
        of a save that a kill interrupted (never a finished checkpoint)."""
        self.previews_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.checkpoints_dir.glob(".*.tmp"):
            log.info("removing %s, left by an interrupted save", stale)
            stale.unlink(missing_ok=True)
        atomic_write_text(self.config_file, config.to_json() + "\n")
        write_json(self.run_file, meta)
        if self.metrics_file.exists():
            keep = [line for line, row in self._metric_lines() if int(row.get("step", 0)) <= resume_step]
            atomic_write_text(self.metrics_file, "".join(k + "\n" for k in keep))

    def save_preview(self, images: dict, step: int, restored_from: str | None = None) -> str | None:
        """The labelled preview grid of ``images`` in ``preview_file(step)``; None if it cannot be written.
        ``restored_from``: whose generators made them ("step 66"), where the drift guard put them back."""
        try:
            return str(save_png(preview_grid(images, step, restored_from=restored_from), self.preview_file(step)))
        except EngineError as e:
            log.warning("could not save preview: %s", e)
            return None

    def append_metrics(self, kind: str, step: int, elapsed_s: float, values: dict[str, Any]) -> None:
        """One row of metrics.jsonl: {"type": kind, "step", "time" (training seconds), **values}."""
        row = {"type": kind, "step": step, "time": round(elapsed_s, 3), **values}
        try:
            with open(self.metrics_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            log.warning("could not append to %s: %s", self.metrics_file, e)

    # --- reading (anyone, no lock) ---
    def _metric_lines(self) -> Iterator[tuple[str, dict]]:
        if not self.metrics_file.is_file():
            return
        for line in self.metrics_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed run
            if isinstance(row, dict):
                yield line, row

    def metric_rows(self) -> list[dict]:
        """The progress, eval and family-search rows of metrics.jsonl, in order."""
        return [row for _, row in self._metric_lines() if row.get("type") in ("progress", "eval", "family")]

    def latest_preview(self) -> tuple[int, Path] | tuple[None, None]:
        found = []
        if self.previews_dir.is_dir():
            for p in self.previews_dir.iterdir():
                m = _PREVIEW_RE.match(p.name)
                if m:
                    found.append((int(m.group(1)), p))
        return max(found) if found else (None, None)

    def read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def read(self) -> RunInfo:
        """Config, metrics, latest preview and data folders. Raises ``RunError`` when it is no run."""
        if not self.config_file.is_file():
            raise RunError(f"{self.path} is not a run folder: it has no {CONFIG}")
        try:
            config = Config.from_json(self.config_file.read_text(encoding="utf-8"))
        except ConfigError as e:
            raise RunError(f"{self.config_file} is not a valid configuration: {e}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise RunError(f"cannot read {self.config_file}: {e}") from None
        meta = self.read_meta()
        paths = meta.get("data", [])
        data = (str(paths[0]), str(paths[1])) if isinstance(paths, list) and len(paths) == 2 else ("", "")
        total = meta.get("total_steps") if isinstance(meta.get("total_steps"), int) else None
        step, preview = self.latest_preview()
        return RunInfo(str(self.path), config, tuple(self.metric_rows()), str(preview) if preview else None, step,
                       data, self.has_checkpoint(), total)


def run_of_model(source: str | os.PathLike) -> tuple[str, str] | None:
    """The run folder a model was loaded from and which of its checkpoints it is (``latest`` or
    ``best``), or None for a model file outside a run. A run's model is loaded from
    RUN/checkpoints/<file>.pt: its source names that file (or the run folder itself)."""
    p = Path(source)
    if p.is_dir():
        return (str(p), "latest") if RunFolder(p).looks_like_run() else None
    if p.suffix == ".pt" and p.parent.name == CHECKPOINTS and RunFolder(p.parent.parent).looks_like_run():
        run = RunFolder(p.parent.parent)
        return str(run.path), "best" if p == run.best_checkpoint else "latest"
    return None
