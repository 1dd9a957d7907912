"""Translation tasks with a known answer, for measuring how fast a training recipe learns.

A task has a fixed, deterministic per-pixel map T: A → B. ``Task.build(root, ...)`` writes
two *unpaired* training folders — ``trainA`` holds images x, ``trainB`` holds T applied to
*other* images — and returns held-out pairs (x, T(x)) that training never sees, so
PSNR(G(x), T(x)) says how close the learned G is to the true map.

* ``demo``: the built-in procedural summer → winter landscapes (``engine.demo``).
* ``photo``: real photographs under a "dusk" colour grade (``dusk_transform``). The
  photographs are the colour photos that ship inside scikit-image's wheel (a test-time
  extra: ``pip install 'cyclegan-studio[quality]'``); nothing is downloaded. Each photo is
  cut into 96-px cells, and every cell belongs to exactly one of A, B or held-out, so the
  three sets of crops share no pixel. Crops of 64–96 px are taken inside a cell and resized
  to the load size.

Both write ``task.json`` into ``root`` recording what went where.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from engine.data.demo import demo_transform, make_demo_dataset

log = logging.getLogger(__name__)

__all__ = ["TaskData", "Task", "TASKS", "get_task", "TaskUnavailable", "dusk_transform", "photo_dir",
           "PHOTOS", "crop_photo", "load_photo"]


class TaskUnavailable(ValueError):
    """A task cannot be built on this machine (an optional package is missing); the message says how to fix it."""


@dataclass(frozen=True)
class TaskData:
    """What ``Task.build`` made: two training folders and held-out pairs, uint8 (N, S, S, 3)."""

    name: str
    dir_a: Path
    dir_b: Path
    x: np.ndarray
    tx: np.ndarray


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    transform: Callable[[np.ndarray], np.ndarray]  # T: uint8 (H, W, 3) → uint8 (H, W, 3)
    _build: Callable[..., TaskData]

    def build(self, root, *, load_size: int, crop_size: int, seed: int = 0, n_train: int | None = None,
              n_test: int | None = None) -> TaskData:
        """Write the training folders under ``root`` and return them with the held-out pairs."""
        if not 0 < crop_size <= load_size:
            raise ValueError(f"crop_size={crop_size} must be positive and at most load_size={load_size}")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        kw = {k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v is not None}
        return self._build(root, load_size=load_size, crop_size=crop_size, seed=seed, **kw)


def _centre(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def _write(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, "PNG", compress_level=1)


# --- demo: procedural summer → winter ---------------------------------------------------------

def _build_demo(root: Path, *, load_size: int, crop_size: int, seed: int, n_train: int = 150,
                n_test: int = 24) -> TaskData:
    # Rendered at the load size, so training sees the scenes at the scale the held-out pairs have,
    # and the held-out pair is an exact (x, T(x)) centre crop: T is per pixel.
    demo = root / "demo"
    make_demo_dataset(demo, n_train=n_train, n_test=n_test, size=load_size, seed=seed)
    xs = np.stack([_centre(_read(p), crop_size) for p in sorted((demo / "testA").glob("*.png"))])
    txs = np.stack([demo_transform(x) for x in xs])
    (root / "task.json").write_text(json.dumps({"task": "demo", "seed": seed, "load_size": load_size,
                                                "n_train": n_train, "n_test": n_test}, indent=2))
    return TaskData("demo", demo / "trainA", demo / "trainB", xs, txs)


# --- photo: real photographs at dusk -----------------------------------------------------------
# Colour photographs inside the scikit-image wheel (skimage/data), read straight from disk with
# PIL: no skimage import, no pooch, no network. Name → file.
PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
}
CELL = 96  # photos are cut into CELL × CELL cells; a cell belongs to one split only
CROP_RANGE = (64, 96)  # side of a crop (in photo pixels) before it is resized to the load size
_INSTALL_HINT = ("the photo task needs the photographs bundled with scikit-image; "
                 "install them with: pip install 'cyclegan-studio[quality]'  (or: pip install scikit-image)")


def photo_dir() -> Path:
    """The folder holding scikit-image's bundled photographs. Raises ``TaskUnavailable`` with the fix."""
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise TaskUnavailable(_INSTALL_HINT)
    d = Path(spec.origin).parent / "data"
    missing = [f for f in PHOTOS.values() if not (d / f).is_file()]
    if missing:
        raise TaskUnavailable(f"{_INSTALL_HINT} (this scikit-image lacks {', '.join(missing)} in {d})")
    return d


def load_photo(name: str) -> np.ndarray:
    return _read(photo_dir() / PHOTOS[name])


# T: "dusk". A warm, dimmed colour grade with lifted, bluish shadows: a 3×3 colour matrix with
# a blue offset, then a per-channel power curve that darkens the mid-tones. Smooth and
# invertible on the colours photos contain (nothing clips), so F can learn T⁻¹ too.
_DUSK_MATRIX = np.array([[0.95, 0.10, 0.00],
                         [0.06, 0.70, 0.04],
                         [0.00, 0.06, 0.62]], np.float64)
_DUSK_OFFSET = np.array([0.0, 0.0, 0.12], np.float64)
_DUSK_GAMMA = np.array([1.35, 1.5, 1.25], np.float64)


def dusk_transform(img: np.ndarray) -> np.ndarray:
    """T: day → dusk, per pixel and deterministic. uint8 (H, W, 3) → uint8 (H, W, 3)."""
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {a.dtype} {a.shape}")
    x = a.astype(np.float64) / 255.0
    m = _DUSK_MATRIX
    # Per channel, not a matmul: the bytes for a pixel must not depend on the array's shape.
    y = x[..., 0:1] * m[:, 0] + x[..., 1:2] * m[:, 1] + x[..., 2:3] * m[:, 2] + _DUSK_OFFSET
    y = np.clip(y, 0.0, 1.0) ** _DUSK_GAMMA
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def _cells(photos: dict[str, np.ndarray]) -> list[tuple[str, int, int]]:
    """(photo, top, left) of every whole CELL × CELL cell of every photo."""
    out = []
    for name, img in photos.items():
        h, w = img.shape[:2]
        out += [(name, r * CELL, c * CELL) for r in range(h // CELL) for c in range(w // CELL)]
    return out


def crop_photo(photo: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """The square crop ``box = (top, left, side)`` of ``photo``, resized to ``size`` (bicubic)."""
    y, x, s = box
    img = Image.fromarray(np.ascontiguousarray(photo[y:y + s, x:x + s]))
    if s != size:
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(img, dtype=np.uint8)


def _build_photo(root: Path, *, load_size: int, crop_size: int, seed: int, n_train: int = 400,
                 n_test: int = 32) -> TaskData:
    photos = {name: load_photo(name) for name in PHOTOS}
    cells = _cells(photos)
    rng = np.random.default_rng([seed, 20170330])
    order = rng.permutation(len(cells))
    n_held = max(4, round(0.12 * len(cells)))
    n_a = (len(cells) - n_held) // 2
    split_cells = {"test": [cells[k] for k in order[:n_held]],
                   "A": [cells[k] for k in order[n_held:n_held + n_a]],
                   "B": [cells[k] for k in order[n_held + n_a:]]}

    def boxes(split: str, n: int) -> list[tuple[str, int, int, int]]:
        g = np.random.default_rng([seed, 7, ord(split[0])])
        out = []
        for _ in range(n):
            name, cy, cx = split_cells[split][int(g.integers(len(split_cells[split])))]
            s = int(g.integers(CROP_RANGE[0], CROP_RANGE[1] + 1))
            out.append((name, cy + int(g.integers(CELL - s + 1)), cx + int(g.integers(CELL - s + 1)), s))
        return out

    manifest = {"task": "photo", "seed": seed, "load_size": load_size, "cell": CELL, "crop_range": list(CROP_RANGE),
                "photos": PHOTOS, "cells": {k: [list(c) for c in v] for k, v in split_cells.items()}, "crops": {}}
    for split, folder, n, transform in (("A", "trainA", n_train, None), ("B", "trainB", n_train, dusk_transform)):
        (root / folder).mkdir(exist_ok=True)
        for f in (root / folder).glob("*.png"):
            f.unlink()
        bx = boxes(split, n)
        for i, (name, y, x, s) in enumerate(bx):
            img = crop_photo(photos[name], (y, x, s), load_size)
            _write(transform(img) if transform else img, root / folder / f"{i:04d}.png")
        manifest["crops"][split] = [list(b) for b in bx]
    # Held out: resized like a training crop, then the centre crop_size window (what the networks see).
    bx = boxes("test", n_test)
    xs = np.stack([_centre(crop_photo(photos[name], (y, x, s), load_size), crop_size) for name, y, x, s in bx])
    txs = np.stack([dusk_transform(x) for x in xs])
    manifest["crops"]["test"] = [list(b) for b in bx]
    (root / "task.json").write_text(json.dumps(manifest))
    return TaskData("photo", root / "trainA", root / "trainB", xs, txs)


TASKS: dict[str, Task] = {
    "demo": Task("demo", "procedural summer landscapes → winter (engine.demo's colour map)", demo_transform,
                 _build_demo),
    "photo": Task("photo", "real photographs (scikit-image's bundled photos) → dusk colour grade", dusk_transform,
                  _build_photo),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]
