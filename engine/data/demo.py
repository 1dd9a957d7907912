"""The built-in demo dataset: procedural "summer → winter" landscapes, with ground truth.

Nothing can be downloaded, so the data is drawn: ``render_scene`` paints a random
landscape (sky gradient, sun, clouds, hills, a lake, trees, houses) in summer colours.
Domain A holds such scenes; domain B holds ``demo_transform`` (T) applied to *other*,
independently drawn scenes, so the two training domains are unpaired. T is a fixed,
smooth, per-pixel colour map — greens turn to snow, the blue sky to a pale grey-blue,
trunks and shadows darken — so a convolutional generator can learn it exactly, and the
test split also stores the true answer: ``testA_to_B/x.png == T(testA/x.png)``, which the
quality plot and ``python -m engine score`` compare against.

    out_dir/trainA  trainB  testA  testB  testA_to_B  demo.json
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

__all__ = ["make_demo_dataset", "render_scene", "demo_transform", "is_demo_dataset", "ground_truth_dir",
           "SUBFOLDERS"]

SUBFOLDERS = ("trainA", "trainB", "testA", "testB", "testA_to_B")
MARKER = "demo.json"
_KIND = "cyclegan-studio-demo"


# --- drawing ----------------------------------------------------------------------------------
# Shapes are painted with anti-aliased coverage masks computed only inside their bounding box.
# Coordinates are in pixels; ``_Canvas.cover`` takes a signed distance (negative inside).

class _Canvas:
    def __init__(self, size: int):
        self.size = size
        self.img = np.zeros((size, size, 3), np.float32)
        c = np.arange(size, dtype=np.float32) + 0.5
        self.ys, self.xs = c[:, None], c[None, :]

    def _box(self, x0: float, y0: float, x1: float, y1: float):
        s = self.size
        r0, r1 = max(0, int(y0) - 1), min(s, int(np.ceil(y1)) + 1)
        c0, c1 = max(0, int(x0) - 1), min(s, int(np.ceil(x1)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def paint(self, box, dist: np.ndarray, colour) -> None:
        """Blend ``colour`` (RGB, or an (h, w, 3) array) where ``dist`` < 0, with a 1-px soft edge."""
        alpha = np.clip(0.5 - dist, 0.0, 1.0)[..., None]
        region = self.img[box]
        region += (np.asarray(colour, np.float32) - region) * alpha

    def circle(self, cx: float, cy: float, r: float, colour) -> None:
        box = self._box(cx - r, cy - r, cx + r, cy + r)
        if box is not None:
            ys, xs = self.ys[box[0]], self.xs[:, box[1]]
            self.paint(box, np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) - r, colour)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, colour) -> None:
        box = self._box(cx - rx, cy - ry, cx + rx, cy + ry)
        if box is not None:
            ys, xs = self.ys[box[0]], self.xs[:, box[1]]
            # Distance to an ellipse, approximated by scaling the normalised radius by the smaller axis.
            self.paint(box, (np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2) - 1.0) * min(rx, ry), colour)

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour) -> None:
        box = self._box(x0, y0, x1, y1)
        if box is not None:
            ys, xs = self.ys[box[0]], self.xs[:, box[1]]
            cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
            self.paint(box, np.maximum(np.abs(xs - cx) - hw, np.abs(ys - cy) - hh), colour)

    def triangle(self, apex_x: float, apex_y: float, half_w: float, base_y: float, colour) -> None:
        """An isosceles triangle pointing up: apex, and a base from apex_x ± half_w at base_y."""
        box = self._box(apex_x - half_w, apex_y, apex_x + half_w, base_y)
        if box is not None:
            ys, xs = self.ys[box[0]], self.xs[:, box[1]]
            h = base_y - apex_y
            norm = np.hypot(h, half_w)
            side = (h * np.abs(xs - apex_x) - half_w * (ys - apex_y)) / norm  # distance to the slanted sides
            self.paint(box, np.maximum(side, ys - base_y), colour)


def _jitter(rng: np.random.Generator, colour, amount: float = 0.05) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32), 0, 1)


def _ridge(rng: np.random.Generator, size: int, base: float, amp: float) -> np.ndarray:
    """A hill line: the y (pixels) of the ground at each column, a sum of a few sines."""
    x = np.arange(size, dtype=np.float32) / size
    y = np.full(size, base, np.float32)
    for k in range(3):
        f = rng.uniform(0.5, 2.5) * (k + 1)
        y += amp / (k + 1) * np.sin(2 * np.pi * f * x + rng.uniform(0, 2 * np.pi))
    return y * size


def render_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random summer landscape, uint8 (size, size, 3)."""
    cv = _Canvas(size)
    s = float(size)
    horizon = rng.uniform(0.42, 0.62)

    # Sky: a vertical gradient from a deep blue at the top to a pale blue at the horizon.
    top = _jitter(rng, (0.22, 0.45, 0.88))
    low = _jitter(rng, (0.62, 0.80, 0.97), 0.03)
    t = np.clip(cv.ys / (horizon * s), 0, 1)[..., None]  # (size, 1, 1)
    cv.img[:] = top + (low - top) * t

    # Sun and clouds.
    if rng.random() < 0.8:
        cv.circle(rng.uniform(0.1, 0.9) * s, rng.uniform(0.08, 0.3) * horizon * s + 0.05 * s,
                  rng.uniform(0.05, 0.09) * s, _jitter(rng, (1.0, 0.88, 0.35), 0.04))
    for _ in range(rng.integers(0, 4)):
        cx, cy, r = rng.uniform(0, 1) * s, rng.uniform(0.06, 0.7) * horizon * s, rng.uniform(0.03, 0.06) * s
        white = _jitter(rng, (0.97, 0.97, 0.98), 0.02)
        for dx in (-1.2, 0.0, 1.2):
            cv.circle(cx + dx * r, cy + (0.25 * r if dx else 0.0), r * (0.8 if dx else 1.1), white)

    # Hills, back to front: each layer is filled below its ridge line, darker towards the front.
    greens = [(0.46, 0.70, 0.38), (0.34, 0.62, 0.24), (0.22, 0.52, 0.16)]
    n_layers = int(rng.integers(2, 4))
    ground = None
    for j in range(n_layers):
        base = horizon + (j / n_layers) * (0.92 - horizon) * 0.6
        ground = _ridge(rng, size, base, rng.uniform(0.02, 0.06))
        col = _jitter(rng, greens[j + 3 - n_layers], 0.04)
        shade = np.clip((cv.ys - ground[None, :]) / s, 0, 1)[..., None] * 0.25  # darker further down
        fill = col * (1.0 - shade)
        alpha = np.clip(cv.ys - ground[None, :] + 0.5, 0, 1)[..., None]
        cv.img += (fill - cv.img) * alpha

    # A lake in the foreground, sometimes.
    if rng.random() < 0.35:
        cv.ellipse(rng.uniform(0.2, 0.8) * s, rng.uniform(0.82, 0.95) * s, rng.uniform(0.15, 0.3) * s,
                   rng.uniform(0.04, 0.07) * s, _jitter(rng, (0.20, 0.42, 0.80), 0.04))

    # Houses and trees stand on the front ridge; the further down, the larger (nearer).
    objects = [("house", x) for x in rng.uniform(0.08, 0.92, rng.integers(0, 3))]
    objects += [("tree", x) for x in rng.uniform(0.02, 0.98, rng.integers(3, 11))]
    objects = [objects[k] for k in rng.permutation(len(objects))]
    for kind, fx in objects:
        x = fx * s
        gy = float(ground[min(size - 1, int(x))]) + rng.uniform(0.0, 0.25) * (s - float(ground[min(size - 1, int(x))]))
        scale = 0.6 + 0.8 * (gy / s)
        if kind == "tree":
            trunk_h, trunk_w = 0.07 * s * scale, 0.018 * s * scale
            cv.rect(x - trunk_w, gy - trunk_h, x + trunk_w, gy, _jitter(rng, (0.40, 0.25, 0.12), 0.04))
            if rng.random() < 0.5:  # a pine: stacked triangles
                w, h = 0.06 * s * scale, 0.16 * s * scale
                col = _jitter(rng, (0.10, 0.38, 0.16), 0.04)
                for k in range(2):
                    cv.triangle(x, gy - trunk_h - h + k * 0.35 * h, w * (1 - 0.25 * k),
                                gy - trunk_h * 0.6 + k * 0.1 * h, col)
            else:  # a broadleaf: a round crown
                r = 0.055 * s * scale
                col = _jitter(rng, (0.18, 0.50, 0.14), 0.05)
                cv.circle(x, gy - trunk_h - r * 0.7, r, col)
                cv.circle(x - r * 0.45, gy - trunk_h - r * 0.3, r * 0.7, col * 0.92)
        else:
            w, h = 0.09 * s * scale, 0.07 * s * scale
            wall = _jitter(rng, [(0.80, 0.26, 0.20), (0.90, 0.82, 0.62), (0.95, 0.90, 0.35)][rng.integers(0, 3)], 0.04)
            roof = _jitter(rng, [(0.45, 0.12, 0.10), (0.35, 0.22, 0.15), (0.30, 0.30, 0.34)][rng.integers(0, 3)], 0.04)
            cv.rect(x - w, gy - h, x + w, gy, wall)
            cv.triangle(x, gy - h - 0.8 * w, w * 1.15, gy - h + 0.5, roof)
            cv.rect(x - 0.18 * w, gy - 0.55 * h, x + 0.18 * w, gy, (0.28, 0.17, 0.10))
            for side in (-1, 1):
                wx = x + side * 0.6 * w
                cv.rect(wx - 0.16 * w, gy - 0.8 * h, wx + 0.16 * w, gy - 0.45 * h, (0.98, 0.93, 0.60))
    return np.clip(np.rint(cv.img * 255.0), 0, 255).astype(np.uint8)


# --- the summer → winter map T ----------------------------------------------------------------
# An affine colour matrix (rows: output R, G, B) followed by a per-channel tone curve, fitted by
# weighted least squares to hand-picked pairs (grass → snow white, sky → pale grey-blue, trunk →
# dark grey-brown, …). Every output leans on G minus R: greens go white, reds and browns darken.
# The S-shaped tone curve then lifts the snow to white and keeps shadows dark.
_T_MATRIX = np.array([[-0.26, 1.36, -0.16],
                      [-0.49, 1.54, -0.12],
                      [-0.63, 1.55, -0.04]], np.float32)
_T_OFFSET = np.array([0.12, 0.11, 0.15], np.float32)


def _tone(v: np.ndarray) -> np.ndarray:
    """A smooth S-shaped tone curve on [0, 1] (cubic smoothstep blended with the identity)."""
    v = np.clip(v, 0.0, 1.0)
    return 0.35 * v + 0.65 * v * v * (3.0 - 2.0 * v)


def demo_transform(img: np.ndarray) -> np.ndarray:
    """T: summer → winter, per pixel and deterministic. uint8 (H, W, 3) → uint8 (H, W, 3)."""
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {a.dtype} {a.shape}")
    x = a.astype(np.float64) / 255.0
    # Written out per channel rather than as a matmul, whose BLAS kernel (and rounding) can
    # depend on the array's shape: T must give the same bytes for a pixel wherever it is.
    m, b = _T_MATRIX.astype(np.float64), _T_OFFSET.astype(np.float64)
    y = _tone(x[..., 0:1] * m[:, 0] + x[..., 1:2] * m[:, 1] + x[..., 2:3] * m[:, 2] + b)
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


# --- the dataset ------------------------------------------------------------------------------

def is_demo_dataset(dir) -> bool:
    """Whether ``dir`` holds a demo dataset written by ``make_demo_dataset``."""
    d = Path(dir)
    try:
        meta = json.loads((d / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("kind") == _KIND and all((d / s).is_dir() for s in SUBFOLDERS)


def ground_truth_dir(path_a) -> Path | None:
    """DIR/testA_to_B for a domain-A folder DIR/trainA or DIR/testA (any A folder beside it), if it exists.

    None for a B folder (its direction has no ground truth) or when there is none.
    """
    p = Path(path_a)
    if p.name in ("trainB", "testB", "testA_to_B"):
        return None
    gt = p.parent / "testA_to_B"
    return gt if gt.is_dir() and (p.parent / "testA").is_dir() else None


def _prepare(out: Path) -> None:
    """Make ``out`` ready to write into. Old demo images are removed; anything else is never touched."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    ours = _is_marker(out / MARKER)
    for s in SUBFOLDERS:
        d = out / s
        if d.is_dir() and any(d.iterdir()):
            if not ours:
                raise ValueError(f"{out} already has a non-empty {s}/ that the demo did not write; "
                                 "choose an empty or new folder")
            for f in d.glob("*.png"):
                f.unlink()
    for s in SUBFOLDERS:
        (out / s).mkdir(parents=True, exist_ok=True)


def _is_marker(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("kind") == _KIND
    except (OSError, ValueError, AttributeError):
        return False


def _save(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, "PNG", compress_level=6)


def make_demo_dataset(out_dir, *, n_train: int = 150, n_test: int = 24, size: int = 128,
                      seed: int = 0) -> dict[str, int]:
    """Write the demo dataset into ``out_dir``; return the number of images per subfolder.

    Every image comes from its own random stream (seed, split, index), so the data is the
    same for a seed on every machine and A and B scenes are independent draws.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be at least 1, got {n_train} and {n_test}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    out = Path(out_dir)
    t0 = time.perf_counter()
    _prepare(out)
    # The marker goes first, so a run that was interrupted can be rerun into the same folder.
    meta = {"kind": _KIND, "seed": seed, "size": size, "n_train": n_train, "n_test": n_test,
            "domains": {"A": "summer landscapes", "B": "winter: demo_transform(other summer landscapes)"}}
    (out / MARKER).write_text(json.dumps(meta, indent=2))

    def scene(split: int, i: int) -> np.ndarray:
        return render_scene(np.random.default_rng([seed, split, i]), size)

    for i in range(n_train):
        _save(scene(0, i), out / "trainA" / f"{i:04d}.png")
        _save(demo_transform(scene(1, i)), out / "trainB" / f"{i:04d}.png")
    for i in range(n_test):
        a = scene(2, i)
        _save(a, out / "testA" / f"{i:04d}.png")
        _save(demo_transform(a), out / "testA_to_B" / f"{i:04d}.png")
        _save(demo_transform(scene(3, i)), out / "testB" / f"{i:04d}.png")
    counts = {"trainA": n_train, "trainB": n_train, "testA": n_test, "testB": n_test, "testA_to_B": n_test}
    log.info("demo dataset written to %s in %.1f s: %s", out, time.perf_counter() - t0, counts)
    return counts


# --- CLI (registered by engine.__main__) ------------------------------------------------------
