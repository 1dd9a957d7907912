"""Translation tasks with known answers: the suite every recipe and default is judged on.

A task has a fixed, deterministic map T: A → B. ``Task.build(root, seed=…)`` writes two
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


# --- the maps T --------------------------------------------------------------------------------------
# Each takes and returns uint8 (H, W, 3) and is deterministic. The global ones are per pixel (a pixel's
# output depends on that pixel alone); the local ones read a neighbourhood through PIL's filters.

def _check(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {a.dtype} {a.shape}")
    return a.astype(np.float64) / 255.0


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _mix(x: np.ndarray, m: np.ndarray, offset=0.0) -> np.ndarray:
    """Per-pixel colour matrix, written per channel so that a pixel's bytes never depend on the array's shape."""
    return x[..., 0:1] * m[:, 0] + x[..., 1:2] * m[:, 1] + x[..., 2:3] * m[:, 2] + offset


_LUMA = np.array([0.299, 0.587, 0.114])
_DUSK_MATRIX = np.array([[0.95, 0.10, 0.00], [0.06, 0.70, 0.04], [0.00, 0.06, 0.62]])
_DUSK_OFFSET = np.array([0.0, 0.0, 0.12])
_DUSK_GAMMA = np.array([1.35, 1.5, 1.25])


def dusk_transform(img: np.ndarray) -> np.ndarray:
    """Day → dusk: a warm, dimmed grade with lifted, bluish shadows (3×3 matrix, blue offset, per-channel gamma)."""
    y = np.clip(_mix(_check(img), _DUSK_MATRIX, _DUSK_OFFSET), 0.0, 1.0) ** _DUSK_GAMMA
    return _u8(y)


def faded_transform(img: np.ndarray) -> np.ndarray:
    """A faded print: half the saturation, a darker tone curve (γ 1.6), a blue tint."""
    x = _check(img)
    luma = (x * _LUMA).sum(-1, keepdims=True)
    y = luma + 0.5 * (x - luma)
    y = np.clip(y, 0, 1) ** 1.6 * np.array([0.88, 0.94, 1.0]) + np.array([0.0, 0.02, 0.10])
    return _u8(np.clip(y, 0, 1))


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def sepia_transform(img: np.ndarray) -> np.ndarray:
    """Classic sepia: every colour onto one brown line, so B → A must guess the colours back."""
    return _u8(np.clip(_mix(_check(img), _SEPIA), 0, 1))


def grey_transform(img: np.ndarray) -> np.ndarray:
    """Colour → greyscale (ITU-R 601 luma), kept as three equal channels."""
    luma = (_check(img) * _LUMA).sum(-1, keepdims=True)
    return _u8(np.repeat(luma, 3, axis=-1))


def falsecolor_transform(img: np.ndarray) -> np.ndarray:
    """False colour: the channels rotated (R ← B, G ← R, B ← G) and the contrast raised by 1.3 about mid-grey."""
    x = _check(img)[..., [2, 0, 1]]
    return _u8(np.clip((x - 0.5) * 1.3 + 0.5, 0, 1))


def _gauss(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (H, W[, C]) in float64: separable, truncated at 3σ, edges mirrored."""
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in (0, 1):
        pad = [(r, r) if ax == axis else (0, 0) for ax in range(a.ndim)]
        padded = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        a = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(k))
    return a


def sketch_transform(img: np.ndarray) -> np.ndarray:
    """A pencil sketch: greyscale colour-dodged with its blurred negative (σ 3 px: about a 12-px neighbourhood)."""
    luma = (_check(img) * _LUMA).sum(-1)
    blurred_negative = _gauss(1.0 - luma, 3.0)
    sketch = np.clip(luma / np.maximum(1.0 - blurred_negative, 1e-3), 0, 1)
    return _u8(np.repeat(sketch[..., None], 3, axis=-1))


def cartoon_transform(img: np.ndarray) -> np.ndarray:
    """A cartoon: colours smoothed (σ 1.5) and posterised to 4 levels, dark outlines where the luma edges are strong."""
    x = _check(img)
    smooth = _gauss(x, 1.5)
    poster = np.floor(np.clip(smooth, 0, 0.9999) * 4) / 3
    luma = (x * _LUMA).sum(-1)
    gy, gx = np.gradient(_gauss(luma, 1.0))
    edge = np.hypot(gx, gy) > 0.06
    poster[edge] *= 0.25
    return _u8(poster)


def sharpen_transform(img: np.ndarray) -> np.ndarray:
    """Unsharp masking: x + 1.5·(x − blur(x)) with σ 2 px, clipped."""
    x = _check(img)
    return _u8(np.clip(x + 1.5 * (x - _gauss(x, 2.0)), 0, 1))


def tone_transform(img: np.ndarray) -> np.ndarray:
    """A pure tone curve, the same on every channel: an S-curve (more mid-tone contrast) with lifted blacks and
    lowered whites, then slightly brightened (γ 0.85)."""
    x = _check(img)
    s = 0.25 * x + 0.75 * x * x * (3.0 - 2.0 * x)  # mostly smoothstep: steeper in the mid-tones
    return _u8(np.clip(0.06 + 0.88 * s, 0, 1) ** 0.85)


def blur_transform(img: np.ndarray) -> np.ndarray:
    """A small Gaussian blur, σ 1.5 px (a reach of 5 px): B → A must sharpen back what it can."""
    return _u8(np.clip(_gauss(_check(img), 1.5), 0, 1))


def edges_transform(img: np.ndarray) -> np.ndarray:
    """Edge enhancement: x + 1.2·(x − blur(x)) with σ 0.8 px (a reach of 3 px), clipped."""
    x = _check(img)
    return _u8(np.clip(x + 1.2 * (x - _gauss(x, 0.8)), 0, 1))


def vignette_transform(img: np.ndarray) -> np.ndarray:
    """A vignette: every pixel darkened by 1 − 0.55·r², r its distance from the image's centre over the half
    diagonal (the corners keep 45 %). The change depends on where a pixel is, not on what it is."""
    x = _check(img)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    return _u8(x * (1.0 - 0.55 * r2)[..., None])


def bloom_transform(img: np.ndarray) -> np.ndarray:
    """A warm bloom: the highlights (luma above 0.55) spread as a glow of σ 6 px (a reach of 18 px) over a
    slightly dimmed picture."""
    x = _check(img)
    highlights = np.maximum((x * _LUMA).sum(-1) - 0.55, 0.0) / 0.45
    glow = _gauss(highlights, 6.0)[..., None] * np.array([1.0, 0.9, 0.7])
    return _u8(np.clip(0.85 * x + 0.8 * glow, 0, 1))


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
        luma = float(m @ _LUMA)
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
        pick = np.random.default_rng([seed, 7, ord(split)]).choice(len(windows), size=n_train, replace=n_train > len(windows),
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
