"""The Translate tab's jobs, run on its worker thread: load a model, translate one image.

Qt-free (a test imports it without a display): the job reads no widget and hands only frozen
dataclasses of numpy copies back through its context (``gui.jobs.JobContext``, duck-typed here):
the decoded input first (``TranslationStarted``), then its tiles' progress at most ten times a
second (``TranslationProgress``), and the translation as the job's result (``TranslationResult``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.data import load_image
from engine.io.tiling import DEFAULT_MEMORY, OutOfMemory
from engine.io.translate import TranslationModel

if TYPE_CHECKING:
    from .jobs import JobContext

__all__ = ["TranslateRequest", "TranslationStarted", "TranslationProgress", "TranslationResult",
           "TranslationCancelled", "translate_job", "load_model", "DIRECTIONS", "PROGRESS_INTERVAL"]

DIRECTIONS = (("AtoB", "A → B"), ("BtoA", "B → A"))  # key, as shown
PROGRESS_INTERVAL = 0.1  # s between two progress reports of one translation: the GUI redraws ≤ 10×/s


@dataclass(frozen=True)
class TranslateRequest:
    """One translation, fixed when it is asked for (the worker reads no widget)."""

    path: str
    direction: str
    max_pixels: int = 80_000_000
    max_memory: int = DEFAULT_MEMORY
    scale: float = 1.0
    tile: int | None = None


@dataclass(frozen=True)
class TranslationStarted:
    """The job has decoded its input (a copy the worker no longer touches) and starts translating."""

    input: np.ndarray


@dataclass(frozen=True)
class TranslationProgress:
    done: int
    total: int


@dataclass(frozen=True)
class TranslationResult:
    input: np.ndarray
    output: np.ndarray | None  # None: no model, or no generator for the direction
    direction: str
    scale: float
    seconds: float = 0.0
    tiles: int = 0
    route: str = ""  # how it went: "one piece", "N-px tiles" or "a checked 65³ LUT" (a colour map)


class TranslationCancelled(Exception):  # not a RuntimeError: tiling turns those into OutOfMemory
    """The job was asked to stop (the item was cleared or retranslated, or the app is closing)."""


def translate_job(ctx: JobContext, model: TranslationModel | None, request: TranslateRequest,
                  interval: float = PROGRESS_INTERVAL) -> TranslationResult:
    """Runs on the worker thread: decode (robustly, as training does), report the input, translate with
    progress. The progress callback runs here too: it hands numbers over with ``ctx.emit``, never a widget."""
    if ctx.stop_requested:
        raise TranslationCancelled("stopped before it started")
    img = load_image(request.path, request.max_pixels)
    inp = np.array(img.convert("RGB"), dtype=np.uint8, copy=True)
    ctx.emit(TranslationStarted(inp))
    if model is None or request.direction not in model.directions:
        return TranslationResult(inp, None, request.direction, request.scale)
    last, tiles = 0.0, 0

    def progress(done: int, total: int) -> None:
        nonlocal last, tiles
        if ctx.stop_requested:
            raise TranslationCancelled("stopped")
        tiles = total
        now = time.monotonic()
        if done >= total or now - last >= interval:
            last = now
            ctx.emit(TranslationProgress(done, total))

    start = time.perf_counter()
    try:
        out = model.translate(img, request.direction, tile=request.tile, max_memory=request.max_memory,
                              scale=request.scale, progress=progress)
    except OutOfMemory as e:
        raise OutOfMemory(f"{e}\n\nIn the app: choose a smaller “Memory for translation”; the image is then cut "
                          "into smaller tiles.") from None
    return TranslationResult(inp, np.array(out, dtype=np.uint8, copy=True), request.direction, request.scale,
                             time.perf_counter() - start, tiles, model.last_route)


def load_model(path: str, checkpoint: str = "latest") -> TranslationModel:
    return TranslationModel.load(path, device="cpu", checkpoint=checkpoint)
