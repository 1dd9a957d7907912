"""The maps T of the quality tasks (``engine.tools.tasks``): deterministic image transforms with known answers.

Each takes and returns uint8 (H, W, 3). The global ones are per pixel (a pixel's output depends on
that pixel alone); the local ones read a neighbourhood through a separable Gaussian blur.
"""

from __future__ import annotations

import numpy as np

from engine import images

__all__ = ["LUMA", "dusk_transform", "faded_transform", "sepia_transform", "grey_transform", "falsecolor_transform",
           "sketch_transform", "cartoon_transform", "sharpen_transform", "tone_transform", "blur_transform",
           "edges_transform", "vignette_transform", "bloom_transform"]


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


LUMA = np.array(images.LUMA)
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
    luma = (x * LUMA).sum(-1, keepdims=True)
    y = luma + 0.5 * (x - luma)
    y = np.clip(y, 0, 1) ** 1.6 * np.array([0.88, 0.94, 1.0]) + np.array([0.0, 0.02, 0.10])
    return _u8(np.clip(y, 0, 1))


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def sepia_transform(img: np.ndarray) -> np.ndarray:
    """Classic sepia: every colour onto one brown line, so B → A must guess the colours back."""
    return _u8(np.clip(_mix(_check(img), _SEPIA), 0, 1))


def grey_transform(img: np.ndarray) -> np.ndarray:
    """Colour → greyscale (ITU-R 601 luma), kept as three equal channels."""
    luma = (_check(img) * LUMA).sum(-1, keepdims=True)
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
    luma = (_check(img) * LUMA).sum(-1)
    blurred_negative = _gauss(1.0 - luma, 3.0)
    sketch = np.clip(luma / np.maximum(1.0 - blurred_negative, 1e-3), 0, 1)
    return _u8(np.repeat(sketch[..., None], 3, axis=-1))


def cartoon_transform(img: np.ndarray) -> np.ndarray:
    """A cartoon: colours smoothed (σ 1.5) and posterised to 4 levels, dark outlines where the luma edges are strong."""
    x = _check(img)
    smooth = _gauss(x, 1.5)
    poster = np.floor(np.clip(smooth, 0, 0.9999) * 4) / 3
    luma = (x * LUMA).sum(-1)
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
    highlights = np.maximum((x * LUMA).sum(-1) - 0.55, 0.0) / 0.45
    glow = _gauss(highlights, 6.0)[..., None] * np.array([1.0, 0.9, 0.7])
    return _u8(np.clip(0.85 * x + 0.8 * glow, 0, 1))
