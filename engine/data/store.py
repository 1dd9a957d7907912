"""The decoded images of one folder, kept in memory within a byte budget and shared by its split views."""

from __future__ import annotations

import logging
import os
import threading

import torch

from engine.data.decode import Skipped, _resized_tensor, _Undecodable
from engine.errors import DataGoneError

log = logging.getLogger(__name__)

__all__ = ["ImageStore"]


class ImageStore:
    """The decoded images of one folder, shared by an ImageFolder and its split views.

    The cache holds decoded images while their bytes fit ``budget``; the rest are decoded again
    each time they are used. Which images are cached changes speed only, never results.
    """

    def __init__(self, root: str, name: str, load_size: int | None, min_side: int, max_pixels: int, budget: int,
                 paths: list[str], sizes: list[tuple[int, int]], skipped: list[Skipped], warnings: list[str]):
        self.root = root
        self.name = name
        self.load_size = load_size  # None: images at their own resolution
        self.min_side = min_side
        self.max_pixels = max_pixels
        self.budget = budget
        self.used = 0
        self.paths = paths
        self.sizes = sizes  # each file's original upright (width, height)
        self.skipped = skipped
        self.warnings = warnings
        self.cache: dict[int, torch.Tensor] = {}
        self.bad: set[int] = set()
        self.lock = threading.Lock()

    def check_present(self) -> None:
        if not os.path.isdir(self.root):
            raise DataGoneError(f"{self.root}: the {self.name} folder has disappeared (deleted, renamed or "
                                "unmounted) while in use")

    def keep(self, k: int, t: torch.Tensor) -> torch.Tensor:
        """Cache image k if it still fits the budget; returns the cached tensor (or ``t``)."""
        with self.lock:
            if k in self.cache:
                return self.cache[k]
            if self.used + t.numel() <= self.budget:
                self.cache[k] = t
                self.used += t.numel()
        return t

    def load(self, k: int) -> torch.Tensor | None:
        """Image k, from the cache or decoded; None when the file has become unusable."""
        t = self.cache.get(k)
        if t is not None or k in self.bad:
            return t
        try:
            t, _ = _resized_tensor(self.paths[k], self.load_size, self.max_pixels, self.min_side)
        except _Undecodable as e:
            self.check_present()
            with self.lock:
                if k not in self.bad:
                    self.bad.add(k)
                    self.skipped.append(Skipped(e.path, e.reason))
                    log.warning("%s: %s; skipped from now on, another image of %s stands in", e.path, e.reason,
                                self.name)
            return None
        return self.keep(k, t)
