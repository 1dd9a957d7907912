"""Atomic file writes: readers see the old file or the new one, never part of one.

The bytes go to a temporary file in the target's folder, which is flushed and fsynced, then
``os.replace``d over the target, and the folder is fsynced. A crash, a kill -9 or a full disk
at any moment leaves the previous file intact; a failure is a ``CheckpointError`` naming the
file. Every file the engine writes (checkpoints, previews, metrics rewrites, exports,
translations) goes through here.

Why hand-made: the libraries that do this (atomicwrites is archived; safetensors, PIL and torch
write in place) do not also fsync the folder and turn every failure into one named error.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from engine.errors import CheckpointError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "write_json", "save_png", "new_file_mode",
           "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; best effort where the OS does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import, while nothing else can be creating files


def new_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (0o644 under the usual umask).
    ``tempfile.mkstemp`` creates 0o600 files, which ``os.replace`` would carry over."""
    return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in the target's folder for the block to write; moved over ``path`` only
    when the block succeeds, and removed whatever happens."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise CheckpointError(f"could not write {path}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise CheckpointError(f"could not write {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """A PIL image as a PNG file, atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
