"""Decoding one image file robustly: any mode to RGB, EXIF rotation, decompression-bomb guard.

A file that cannot be used raises ``_Undecodable`` (a ``DataError``) whose ``reason`` is the
short explanation the skipped-files list shows.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "Skipped", "load_image"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_EXCLUDED_FORMATS = frozenset({"EPS"})
# PIL's own decompression-bomb limit is a module global; we switch it off only while a header
# is parsed (under this lock) and apply the caller's ``max_pixels`` to the header size instead.
_PIL_LIMIT_LOCK = threading.Lock()


class _Undecodable(DataError):
    """One file cannot be used; ``reason`` is the short explanation shown in the skipped list."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


# --- decoding --------------------------------------------------------------------------------

@functools.cache
def _open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in Image.ID if f not in _EXCLUDED_FORMATS)


def _open_header(f) -> Image.Image:
    """``Image.open`` (lazy: reads the header only) with PIL's global pixel limit switched off."""
    with _PIL_LIMIT_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(f, formats=_open_formats())
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _decode_failure(e: BaseException, fmt: str) -> str:
    msg = str(e)
    if isinstance(e, EOFError) or "truncated" in msg or "end of file" in msg.lower():
        return f"truncated {fmt}"
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"refused by PIL's decompression-bomb guard ({msg})"
    if isinstance(e, MemoryError):
        return f"out of memory while decoding the {fmt}"
    return f"cannot decode {fmt} ({msg or type(e).__name__})"


def _grey_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grey image as 8 bits.

    I;16 is scaled by 255/65535 (so 65535 → 255 and 257·v → v). Mode I holds 16-bit data when
    its values fit in 0..65535 and more than 8 bits are used; otherwise, and for F outside
    [0, 1], the image's own range is stretched to 0..255.
    """
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        scaled = a / 257.0
    elif mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        scaled = a
    elif mode == "I" and lo >= 0.0 and hi <= 65535.0:
        scaled = a / 257.0
    else:
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode as RGB. Transparency is composited over white, as an image viewer shows it."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = _grey_to_uint8(np.array(im), mode)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    try:
        return im.convert("RGB")
    except ValueError:
        raise ValueError(f"unsupported colour mode {mode}") from None


def _decode(path, max_pixels: int, draft: tuple[int, int] | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode one file to an upright RGB image; also return its full-resolution upright size.

    ``draft`` lets JPEG decode at a reduced scale (1/2, 1/4, 1/8) that is still at least that
    size: much faster for photos that will be resized down anyway. Raises ``_Undecodable``.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise _Undecodable(path, "file not found") from None
    except PermissionError:
        raise _Undecodable(path, "permission denied") from None
    except IsADirectoryError:
        raise _Undecodable(path, "a folder, not a file") from None
    except OSError as e:
        raise _Undecodable(path, f"cannot open ({e.strerror or e})") from None
    with f:
        try:
            if os.fstat(f.fileno()).st_size == 0:
                raise _Undecodable(path, "empty file (0 bytes)")
            im = _open_header(f)
        except _Undecodable:
            raise
        except UnidentifiedImageError:
            raise _Undecodable(path, "not an image (cannot identify image file)") from None
        except PermissionError:
            raise _Undecodable(path, "permission denied") from None
        except Exception as e:  # noqa: BLE001 - any header parser error is a reason to skip the file
            if isinstance(e, EOFError) or "truncated" in str(e).lower():
                raise _Undecodable(path, "truncated file (it ends inside the image header)") from None
            raise _Undecodable(path, f"unreadable image header ({e or type(e).__name__})") from None
        with im:
            fmt = im.format or "image"
            w, h = im.size
            # The bomb guard: refuse from the header's size alone, before anything is allocated.
            if w * h > max_pixels:
                raise _Undecodable(path, f"refused: {w * h} pixels exceeds the limit of {max_pixels} (max_pixels)")
            if w <= 0 or h <= 0:
                raise _Undecodable(path, f"invalid image size {w}×{h}")
            try:
                if draft is not None:
                    im.draft(None, draft)
                im.load()  # animated GIF/WebP: the first frame, which open() selected
            except Exception as e:  # noqa: BLE001 - truncated, corrupt, bomb, out of memory ...
                raise _Undecodable(path, _decode_failure(e, fmt)) from None
            loaded_size = im.size
            try:
                upright = ImageOps.exif_transpose(im)
            except Exception:  # noqa: BLE001 - a corrupt EXIF block: keep the pixels as stored
                log.debug("%s: unreadable EXIF orientation, image used as stored", path, exc_info=True)
                upright = im.copy()
            try:
                rgb = _to_rgb(upright)
            except Exception as e:  # noqa: BLE001
                raise _Undecodable(path, f"cannot convert {fmt} ({im.mode}) to RGB: {e}") from None
    swapped = upright.size != loaded_size
    return rgb, ((h, w) if swapped else (w, h))


def load_image(path, max_pixels: int = 80_000_000) -> Image.Image:
    """An image file as an upright RGB PIL image.

    EXIF orientation is applied; every PIL mode is converted (16-bit and float grey scaled,
    CMYK, palette, transparency composited over white); animated files give their first
    frame. Images with more than ``max_pixels`` pixels are refused from the header alone.
    Raises ``DataError("{path}: {reason}")``.
    """
    return _decode(path, max_pixels)[0]


def _resized_tensor(path, load_size: int | None, max_pixels: int, min_side: int = 0
                    ) -> tuple[torch.Tensor, tuple[int, int]]:
    """(uint8 tensor (3, h, w), original upright size (w, h)).

    With ``load_size``: resized to ``load_size`` × ``load_size`` (the paper's resize_and_crop). Without:
    at the file's own resolution, except that an image whose shorter side is under ``min_side`` is
    enlarged (aspect kept) until it is ``min_side``, so that a crop of that size fits.
    """
    img, size = _decode(path, max_pixels, draft=(load_size, load_size) if load_size else None)
    if load_size:
        target = (load_size, load_size)
    else:
        w, h = img.size
        k = max(1.0, min_side / max(1, min(w, h)))
        target = (max(min_side, round(w * k)), max(min_side, round(h * k)))
    if img.size != target:
        img = img.resize(target, Image.Resampling.BICUBIC)
    arr = np.array(img, dtype=np.uint8)  # a writable copy: torch refuses read-only arrays quietly only with a warning
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), size
