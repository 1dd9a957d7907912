"""Checkpoints: atomic saves, weights-only loads, clear messages for foreign files.

A checkpoint is one ``.pt`` file written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers:
a file whose pickle would create objects or run code is refused, never executed.

Saves are atomic: the bytes go to a temporary file in the same folder, which is flushed
and fsynced, then ``os.replace``d over the target. A crash, a kill -9 or a full disk at
any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from engine.config import Config
from engine.errors import CheckpointError, ConfigError
from engine.io.atomic import atomic_write_bytes, fsync_dir
from engine.io.run_folder import CHECKPOINTS, LATEST, RunFolder
from engine.models.networks import generator_arch_from_state_dict

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "config_from_checkpoint",
    "check_architecture",
    "CheckpointFolder",
]

FORMAT = "cyclegan-studio"
FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^step_(\d{7,})\.pt$")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Serialise ``payload`` (tensors, numbers, strings, lists, dicts) and write it atomically."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (→ its latest checkpoint)."""
    p = Path(path)
    if p.is_dir():
        for candidate in (RunFolder(p).latest_checkpoint, p / LATEST):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{p} is a folder without a checkpoint (expected {CHECKPOINTS}/{LATEST})")
    if not p.exists():
        raise CheckpointError(f"{p} does not exist")
    return p


def torch_load_weights_only(p: Path, map_location: str | torch.device = "cpu", kind: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a one-line ``CheckpointError``:
    a pickle that holds code or objects is refused (and never run), anything unreadable is named as
    not a readable ``kind``."""
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(
            f"{p} was refused: it contains Python objects or code, not just weights, and is never "
            f"unpickled ({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError, IndexError) as e:
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CheckpointError(f"{p} is not a readable {kind}: {reason}") from None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely. Anything that is not a weights-only CycleGAN Studio checkpoint is refused."""
    p = resolve_checkpoint(path)
    obj = torch_load_weights_only(p, map_location)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p} is not a CycleGAN Studio checkpoint (it holds a {type(obj).__name__})")
    if obj.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a CycleGAN Studio checkpoint (no format marker); "
                              "for a reference-implementation generator use import-reference")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{p} has checkpoint format version {version!r}; "
                              f"this version reads up to {FORMAT_VERSION}")
    return obj


def config_from_checkpoint(ck: dict[str, Any], source: str = "checkpoint") -> Config:
    text = ck.get("config")
    if not isinstance(text, str):
        raise CheckpointError(f"{source} carries no config")
    try:
        return Config.from_json(text)
    except ConfigError as e:
        raise CheckpointError(f"{source} has an invalid config: {e}") from None


def check_architecture(cfg: Config, state: dict[str, torch.Tensor], what: str) -> None:
    """Compare a generator state_dict with the architecture ``cfg`` asks for; name the first mismatch."""
    try:
        found = generator_arch_from_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"{what}: {e}") from None
    m = cfg.model
    if found["family"] != m.netG:
        raise CheckpointError(f"{what}: architecture mismatch: expected a {m.netG} generator, found a "
                              f"{found['family']} one")
    if m.netG != "resnet":
        return  # the colour and local generators have no sizes in the config: their files carry them
    expected = {"n_blocks": m.n_blocks, "ngf": m.ngf, "upsample": m.upsample, "input_skip": m.input_skip}
    names = {"n_blocks": "residual blocks", "ngf": "generator width ngf", "upsample": "upsampling",
             "input_skip": "input skip"}
    for k, v in expected.items():
        if found[k] != v:
            raise CheckpointError(f"{what}: architecture mismatch: expected {v} {names[k]}, found {found[k]}")


class CheckpointFolder:
    """``RUN/checkpoints/step_XXXXXXX.pt`` plus ``latest.pt``; keeps the last ``keep`` numbered files."""

    def __init__(self, run_dir: str | os.PathLike, keep: int = 3):
        self.dir = RunFolder(run_dir).checkpoints_dir
        self.keep = keep

    @property
    def latest(self) -> Path:
        return self.dir / LATEST

    def numbered(self) -> list[tuple[int, Path]]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _STEP_RE.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out)

    def save(self, step: int, payload: dict[str, Any]) -> Path:
        path = self.dir / f"step_{step:07d}.pt"
        # latest.pt first, then the numbered file as a hard link to the same bytes (no second write): a kill
        # between the two leaves latest.pt the newest checkpoint on disk, never behind a numbered one.
        save_checkpoint(self.latest, payload)
        tmp = self.dir / f".step.{os.getpid()}.tmp"
        try:
            if tmp.exists():
                tmp.unlink()
            try:
                os.link(self.latest, tmp)
            except OSError:
                tmp.write_bytes(self.latest.read_bytes())
            os.replace(tmp, path)
            fsync_dir(self.dir)
        except OSError as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise CheckpointError(f"could not write {path}: {e.strerror or e}") from e
        for _, old in self.numbered()[: -self.keep]:
            try:
                old.unlink()
            except OSError as e:  # pruning is best effort: an extra old file loses nothing
                log.warning("could not remove old checkpoint %s: %s", old, e)
        return path
