"""Translation tasks with known answers: the suite every recipe and default is judged on.

A task has a fixed, deterministic map T: A → B (``engine.tools.task_maps``). ``Task.build(root, seed=…)`` writes two
*unpaired* training folders — ``trainA`` holds images x, ``trainB`` holds T applied to *other*
images — and returns held-out pairs (x, T(x)) that training never sees, so PSNR(G(x), T(x))
says how close the learned G is to the true map. Every image is ``SIZE`` × ``SIZE`` pixels at
the photograph's own resolution; the held-out images are scored at that full size, as a user
translates their photos, whatever scale the recipe trains at.

Kinds (``Task.kind``):

* ``colour``: a global, per-pixel colour map (a grade, sepia, greyscale, a hue rotation);
* ``texture``: a local map whose output pixel depends on a neighbourhood (a pencil sketch,
  a cartoon, sharpening);
* ``spatial``: a change that depends on where a pixel is (a vignette);
* ``large``: a large change of the whole image (the demo's summer → winter, false colour, a bloom whose glow
  reaches 18 px).

``Task.ill_posed``: B → A must invent what T threw away (greyscale, sepia, sketch, cartoon).

The suite is split (``Task.split``): recipes are tuned on ``tuning`` tasks only; the
``check`` tasks (one of each kind) are reported for every recipe kept, to show whether a
choice generalises. Photographs are the colour photos inside scikit-image's and
scikit-learn's wheels (a test-time extra: ``pip install 'cyclegan-studio[quality]'``); nothing
is downloaded. Each photograph is cut into ``SIZE``-px cells and every cell belongs to one of
A, B or held-out, so the three share no pixel; a training image is any ``SIZE``-px window that
lies inside cells of its own split.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from PIL import Image

from engine.data.demo import demo_transform, make_demo_dataset
from engine.tools.task_maps import (
    LUMA,
    bloom_transform,
    blur_transform,
    cartoon_transform,
    dusk_transform,
    edges_transform,
    faded_transform,
    falsecolor_transform,
    grey_transform,
    sepia_transform,
    sharpen_transform,
    sketch_transform,
    tone_transform,
    vignette_transform,
)

log = logging.getLogger(__name__)

__all__ = ["TaskData", "Task", "TASKS", "SUITES", "get_task", "suite", "TaskUnavailable", "PHOTOS", "SIZE",
           "load_photo", "photo_windows"]

SIZE = 128            # side of every training and held-out image, in photograph pixels
HELD_OUT = 0.25       # share of each photograph's cells held out for scoring
STRIDE = 16           # training windows start on this grid inside their split's cells


class TaskUnavailable(ValueError):
    """A task cannot be built on this machine (an optional package is missing); the message says how to fix it."""


@dataclass(frozen=True)
class TaskData:
    """What ``Task.build`` made: two training folders and held-out pairs, uint8 (N, SIZE, SIZE, 3)."""

    name: str
    dir_a: Path
    dir_b: Path
    x: np.ndarray
    tx: np.ndarray


Kind = Literal["colour", "texture", "spatial", "large"]


@dataclass(frozen=True)
class Task:
    name: str
    kind: Kind
    split: Literal["tuning", "check"]
    description: str
    transform: Callable[[np.ndarray], np.ndarray]  # T: uint8 (H, W, 3) → uint8 (H, W, 3)
    ill_posed: bool = False
    source: Literal["photos", "demo"] = "photos"

    def build(self, root, *, seed: int = 0, n_train: int = 200, n_test: int | None = None) -> TaskData:
        """Write the training folders under ``root`` and return them with the held-out pairs."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        if self.source == "demo":
            return _build_demo(self, root, seed=seed, n_train=n_train, n_test=n_test or 24)
        return _build_photos(self, root, seed=seed, n_train=n_train, n_test=n_test)


# --- photographs ---------------------------------------------------------------------------------------
# Colour photographs inside the scikit-image and scikit-learn wheels, read straight from disk with PIL: no
# import of either package, no download. Name → (package, file).
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}
_INSTALL_HINT = ("the photo tasks need the photographs bundled with scikit-image and scikit-learn; install them "
                 "with: pip install 'cyclegan-studio[quality]'  (or: pip install scikit-image scikit-learn)")


def _photo_path(name: str) -> Path:
    package, rel = PHOTOS[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise TaskUnavailable(_INSTALL_HINT)
    path = Path(spec.origin).parent / rel
    if not path.is_file():
        raise TaskUnavailable(f"{_INSTALL_HINT} (this {package} lacks {rel})")
    return path


def load_photo(name: str) -> np.ndarray:
    with Image.open(_photo_path(name)) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def _split_cells(photos: dict[str, np.ndarray], seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Per split ("A", "B", "test"), per photo, a boolean (rows, cols) map of the SIZE-px cells it owns."""
    cells = [(name, r, c) for name, img in photos.items()
             for r in range(img.shape[0] // SIZE) for c in range(img.shape[1] // SIZE)]
    # Stratified by content, so that A, B and the held-out cells see alike colours: the cells in order of their
    # mean colour (by luma, then by the colour's angle), dealt four at a time (a shuffled A, B, held-out, and A
    # or B in turn). Dealt at random, one draw gave B a mean 20 grey levels brighter than T(A): no unpaired
    # method can then learn T, and matching the two histograms, the best a colour map can do from such data,
    # reached 19.7 dB on faded (identity 16.0).
    rng = np.random.default_rng([seed, 20170330])

    def mean_colour(cell: tuple[str, int, int]) -> tuple[float, float]:
        name, r, c = cell
        m = photos[name][r * SIZE:(r + 1) * SIZE, c * SIZE:(c + 1) * SIZE].reshape(-1, 3).mean(0) / 255.0
        luma = float(m @ LUMA)
        return round(luma * 8), float(np.arctan2(m[2] - luma, m[0] - luma))

    ordered = sorted(cells, key=mean_colour)
    owner = {}
    for start in range(0, len(ordered), 4):
        roles = ["A", "B", "test", "A" if start // 4 % 2 else "B"]
        for cell, role in zip(ordered[start:start + 4], rng.permutation(roles)):
            owner[cell] = str(role)
    out: dict[str, dict[str, np.ndarray]] = {s: {} for s in ("A", "B", "test")}
    for name, img in photos.items():
        shape = (img.shape[0] // SIZE, img.shape[1] // SIZE)
        for s in out:
            out[s][name] = np.zeros(shape, bool)
        for r in range(shape[0]):
            for c in range(shape[1]):
                out[owner[(name, r, c)]][name][r, c] = True
    return out


def photo_windows(owned: dict[str, np.ndarray]) -> list[tuple[str, int, int]]:
    """Every (photo, top, left) SIZE-px window on the STRIDE grid whose pixels all lie in ``owned`` cells."""
    out = []
    for name, mask in owned.items():
        rows, cols = mask.shape
        for y in range(0, (rows - 1) * SIZE + 1, STRIDE):
            for x in range(0, (cols - 1) * SIZE + 1, STRIDE):
                r0, c0, r1, c1 = y // SIZE, x // SIZE, (y + SIZE - 1) // SIZE, (x + SIZE - 1) // SIZE
                if mask[r0:r1 + 1, c0:c1 + 1].all():
                    out.append((name, y, x))
    return out


def _cell_weights(windows: list[tuple[str, int, int]]) -> np.ndarray:
    """Draw probabilities under which every cell is covered alike: a window's weight is the mean, over the cells
    it overlaps, of 1 / (the windows overlapping that cell). Uniform draws favoured the few places where
    cells of one split touch, and with them their content."""
    def covered(name: str, y: int, x: int) -> list[tuple[str, int, int]]:
        return [(name, r, c) for r in {y // SIZE, (y + SIZE - 1) // SIZE} for c in {x // SIZE, (x + SIZE - 1) // SIZE}]

    count: dict[tuple[str, int, int], int] = {}
    for w in windows:
        for cell in covered(*w):
            count[cell] = count.get(cell, 0) + 1
    weights = np.array([np.mean([1.0 / count[cell] for cell in covered(*w)]) for w in windows])
    return weights / weights.sum()


def _write(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, "PNG", compress_level=1)


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.png"):
        f.unlink()
    return folder


def _build_photos(task: Task, root: Path, *, seed: int, n_train: int, n_test: int | None) -> TaskData:
    photos = {name: load_photo(name) for name in PHOTOS}
    owned = _split_cells(photos, seed)
    crop = lambda name, y, x: np.ascontiguousarray(photos[name][y:y + SIZE, x:x + SIZE])  # noqa: E731
    manifest = {"task": task.name, "seed": seed, "size": SIZE, "photos": {k: v[1] for k, v in PHOTOS.items()},
                "cells": {s: {n: m.astype(int).tolist() for n, m in owned[s].items()} for s in owned}, "windows": {}}
    for split, folder, transform in (("A", "trainA", None), ("B", "trainB", task.transform)):
        windows = photo_windows(owned[split])
        pick = np.random.default_rng([seed, 7, ord(split)]).choice(len(windows), size=n_train,
                                                                    replace=n_train > len(windows),
                                                                    p=_cell_weights(windows))
        chosen = [windows[k] for k in pick]
        out = _fresh(root / folder)
        for i, (name, y, x) in enumerate(chosen):
            img = crop(name, y, x)
            _write(transform(img) if transform else img, out / f"{i:04d}.png")
        manifest["windows"][split] = [list(w) for w in chosen]
    # Held out: exactly the test cells (no two overlap), in a fixed order.
    test = [(name, int(r) * SIZE, int(c) * SIZE) for name, m in owned["test"].items() for r, c in zip(*np.nonzero(m))]
    test = test[:n_test] if n_test else test
    xs = np.stack([crop(*w) for w in test])
    manifest["windows"]["test"] = [list(w) for w in test]
    (root / "task.json").write_text(json.dumps(manifest))
    return TaskData(task.name, root / "trainA", root / "trainB", xs, np.stack([task.transform(x) for x in xs]))


def _build_demo(task: Task, root: Path, *, seed: int, n_train: int, n_test: int) -> TaskData:
    demo = root / "demo"
    make_demo_dataset(demo, n_train=n_train, n_test=n_test, size=SIZE, seed=seed)
    read = lambda p: np.array(Image.open(p).convert("RGB"), dtype=np.uint8)  # noqa: E731
    xs = np.stack([read(p) for p in sorted((demo / "testA").glob("*.png"))])
    (root / "task.json").write_text(json.dumps({"task": task.name, "seed": seed, "size": SIZE, "n_train": n_train,
                                                "n_test": n_test}))
    return TaskData(task.name, demo / "trainA", demo / "trainB", xs, np.stack([task.transform(x) for x in xs]))


# --- the suite -------------------------------------------------------------------------------------------
TASKS: dict[str, Task] = {t.name: t for t in (
    # tuning: every recipe decision is made on these
    Task("dusk", "colour", "tuning", "photos → dusk grade (warm, dimmed, bluish shadows)", dusk_transform),
    Task("faded", "colour", "tuning", "photos → faded print (half saturation, darker tone curve, blue tint)",
         faded_transform),
    Task("grey", "colour", "tuning", "photos → greyscale", grey_transform, ill_posed=True),
    Task("sketch", "texture", "tuning", "photos → pencil sketch (colour dodge, ~12-px neighbourhood)",
         sketch_transform, ill_posed=True),
    Task("sharpen", "texture", "tuning", "photos → unsharp-masked (σ 2 px, amount 1.5)", sharpen_transform),
    Task("falsecolor", "large", "tuning", "photos → false colour (channels rotated, contrast ×1.3)",
         falsecolor_transform),
    Task("tone", "colour", "tuning", "photos → a tone curve (S-curve, lifted blacks, the same on every channel)",
         tone_transform),
    Task("blur", "texture", "tuning", "photos → a small Gaussian blur (σ 1.5 px)", blur_transform),
    Task("vignette", "spatial", "tuning", "photos → a vignette (corners darkened to 45 %)", vignette_transform),
    # check: reported for every recipe kept, never tuned on
    Task("sepia", "colour", "check", "photos → sepia", sepia_transform, ill_posed=True),
    Task("cartoon", "texture", "check", "photos → cartoon (posterised colours, dark outlines)", cartoon_transform,
         ill_posed=True),
    Task("demo", "large", "check", "procedural summer landscapes → winter (engine.data.demo)", demo_transform,
         source="demo"),
    Task("edges", "texture", "check", "photos → edge enhancement (x + 1.2·(x − blur σ 0.8 px))", edges_transform),
    Task("bloom", "large", "check", "photos → a warm bloom (highlights glow over ~18 px)", bloom_transform),
)}
SUITES: dict[str, tuple[str, ...]] = {
    "tuning": tuple(n for n, t in TASKS.items() if t.split == "tuning"),
    "check": tuple(n for n, t in TASKS.items() if t.split == "check"),
    "all": tuple(TASKS),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def suite(name: str) -> list[Task]:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(SUITES)}")
    return [TASKS[n] for n in SUITES[name]]
