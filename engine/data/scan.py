"""Finding a domain's image files: a recursive scan that survives symlink loops and unreadable folders.

Files and folders that cannot be used are returned as ``Skipped`` with a reason, never raised.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Iterable

from engine.data.decode import IMAGE_EXTENSIONS, Skipped

log = logging.getLogger(__name__)

__all__ = ["scan_folder", "summarise_skipped", "scan_workers"]


def scan_folder(root: str) -> tuple[list[str], list[Skipped]]:
    """Image files under ``root``, recursively, in a deterministic order.

    Directory symlinks are followed, but each real directory is walked once, so a symlink
    loop ends. Hidden entries (``.git``, macOS ``._name`` files) are ignored.
    """
    files: list[str] = []
    skipped: list[Skipped] = []
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError as e:
            skipped.append(Skipped(d, f"folder not readable ({e.strerror or e})"))
            continue
        key = (st.st_dev, st.st_ino) if st.st_ino else (st.st_dev, os.path.realpath(d))
        if key in visited:
            log.debug("%s: already scanned (symlink loop or duplicate link), not followed", d)
            continue
        visited.add(key)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            skipped.append(Skipped(d, "permission denied (folder)"))
            continue
        except OSError as e:
            skipped.append(Skipped(d, f"folder not readable ({e.strerror or e})"))
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(e.path)
            elif os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                if e.is_symlink() and not os.path.exists(e.path):
                    skipped.append(Skipped(e.path, "broken symbolic link"))
                else:
                    files.append(e.path)
        stack.extend(reversed(subdirs))  # depth-first, in name order
    return files, skipped


def summarise_skipped(skipped: Iterable[Skipped], limit: int = 3) -> str:
    """The commonest reasons among ``skipped``, counted: one line for a message."""
    counts = Counter(s.reason for s in skipped)
    parts = [f"{n} × {reason}" if n > 1 else reason for reason, n in counts.most_common(limit)]
    if len(counts) > limit:
        parts.append(f"{len(counts) - limit} other reasons")
    return "; ".join(parts)


def scan_workers() -> int:
    """Threads for the decode-once check of a scan."""
    # PIL releases the GIL while decoding. Few threads: each may hold a full-size decoded photo.
    return max(1, min(4, os.cpu_count() or 1))
