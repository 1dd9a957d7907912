"""Image folders for CycleGAN: scan, robust decode, in-memory cache, unpaired sampling, augmentation.

One domain is an ``ImageFolder``: its files are found by a recursive scan, each is decoded
once (on a small thread pool) to check it and to fill the cache, and files that cannot be
used are listed in ``skipped`` with a specific reason instead of stopping the run.

Preprocessing follows the paper's reference implementation (``resize_and_crop``): resize to
``load_size × load_size`` (bicubic), random ``crop_size`` crop, random horizontal flip, map
to [-1, 1]. The resize happens once, at decode time; the cache holds the resized images as
uint8 tensors ``(3, load_size, load_size)``, and crop and flip run on tensors, on the
training device.

``UnpairedBatches.batch(step)`` is a pure function of ``(seed, step)``: nothing depends on
the global RNG or on the order batches are asked for, so a run resumed at step N sees the
same batches as one that never stopped.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataError",
    "DataGoneError",
    "Skipped",
    "load_image",
    "ImageFolder",
    "open_domain",
    "open_domains",
    "same_folder",
    "check_pair",
    "UnpairedBatches",
    "to_uint8_image",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Formats PIL may open. EPS is left out: PIL renders it by running Ghostscript on the file.
_EXCLUDED_FORMATS = frozenset({"EPS"})
# PIL's own decompression-bomb limit is a module global; we switch it off only while a header
# is parsed (under this lock) and apply the caller's ``max_pixels`` to the header size instead.
_PIL_LIMIT_LOCK = threading.Lock()


class DataError(Exception):
    """A data problem with a clear, user-facing message that names the file or folder."""


class DataGoneError(DataError):
    """A domain's folder disappeared (deleted, renamed, unmounted) while it was in use."""


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


def _resized_tensor(path, load_size: int, max_pixels: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(uint8 tensor (3, load_size, load_size), original upright size)."""
    img, size = _decode(path, max_pixels, draft=(load_size, load_size))
    if img.size != (load_size, load_size):
        img = img.resize((load_size, load_size), Image.Resampling.BICUBIC)
    arr = np.array(img, dtype=np.uint8)  # a writable copy: torch refuses read-only arrays quietly only with a warning
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), size


# --- scanning ---------------------------------------------------------------------------------

def _scan(root: str) -> tuple[list[str], list[Skipped]]:
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


def _summary(skipped: Iterable[Skipped], limit: int = 3) -> str:
    counts = Counter(s.reason for s in skipped)
    parts = [f"{n} × {reason}" if n > 1 else reason for reason, n in counts.most_common(limit)]
    if len(counts) > limit:
        parts.append(f"{len(counts) - limit} other reasons")
    return "; ".join(parts)


def _workers() -> int:
    # PIL releases the GIL while decoding. Few threads: each may hold a full-size decoded photo.
    return max(1, min(4, os.cpu_count() or 1))


class _Store:
    """The decoded images of one folder, shared by an ImageFolder and its split views."""

    def __init__(self, root: str, name: str, load_size: int, max_pixels: int, capacity: int,
                 paths: list[str], skipped: list[Skipped], warnings: list[str]):
        self.root = root
        self.name = name
        self.load_size = load_size
        self.max_pixels = max_pixels
        self.capacity = capacity  # images with index < capacity are kept in memory
        self.paths = paths
        self.skipped = skipped
        self.warnings = warnings
        self.cache: dict[int, torch.Tensor] = {}
        self.bad: set[int] = set()
        self.lock = threading.Lock()

    def check_present(self) -> None:
        if not os.path.isdir(self.root):
            raise DataGoneError(f"{self.root}: the {self.name} folder has disappeared (deleted, renamed or "
                                "unmounted) while in use")

    def load(self, k: int) -> torch.Tensor | None:
        """Image k, from the cache or decoded; None when the file has become unusable."""
        t = self.cache.get(k)
        if t is not None or k in self.bad:
            return t
        try:
            t, _ = _resized_tensor(self.paths[k], self.load_size, self.max_pixels)
        except _Undecodable as e:
            self.check_present()
            with self.lock:
                if k not in self.bad:
                    self.bad.add(k)
                    self.skipped.append(Skipped(e.path, e.reason))
                    log.warning("%s: %s; skipped from now on, another image of %s stands in", e.path, e.reason,
                                self.name)
            return None
        if k < self.capacity:
            with self.lock:
                t = self.cache.setdefault(k, t)
        return t


class ImageFolder:
    """One domain: the usable images under ``root`` (recursively), decoded and resized.

    Scanning decodes every file once on a small thread pool, to check it and to fill the
    cache (uint8 ``(3, load_size, load_size)`` tensors, kept while they fit ``cache_mb``).
    Files that fail are listed in ``skipped`` with a reason; images smaller than
    ``min_size`` (the crop) are upscaled and named in ``warnings``. ``files`` may give the
    file list instead of scanning. Raises ``DataError`` when nothing usable is found.
    """

    root: str
    name: str
    files: list[str]
    skipped: list[Skipped]
    warnings: list[str]

    def __init__(self, root, *, load_size: int, max_pixels: int = 80_000_000, cache_mb: int = 2048,
                 min_size: int = 0, name: str = "A", files=None):
        root = os.path.abspath(os.fspath(root))
        if not os.path.exists(root):
            raise DataError(f"{root}: folder not found")
        if not os.path.isdir(root):
            raise DataError(f"{root}: not a folder")
        if load_size < 1:
            raise ValueError(f"load_size must be positive, got {load_size}")
        if files is None:
            candidates, skipped = _scan(root)
        else:
            candidates, skipped = [os.path.abspath(os.fspath(p)) for p in files], []
        entry_bytes = 3 * load_size * load_size
        capacity = max(0, int(cache_mb)) * (1 << 20) // entry_bytes
        if not candidates:
            raise DataError(f"{root}: nothing usable found in the {name} folder: no image files "
                            f"({', '.join(IMAGE_EXTENSIONS)})"
                            + (f"; skipped: {_summary(skipped)}" if skipped else ""))

        def check(item: tuple[int, str]):
            p, path = item
            try:
                t, size = _resized_tensor(path, load_size, max_pixels)
            except _Undecodable as e:
                return None, None, e.reason
            # Keep the tensor only if it can be cached: usable index ≤ scan position < capacity.
            return (t if p < capacity else None), size, None

        with ThreadPoolExecutor(max_workers=min(_workers(), len(candidates)),
                                thread_name_prefix=f"scan-{name}") as pool:
            results = list(pool.map(check, enumerate(candidates)))

        paths: list[str] = []
        warnings: list[str] = []
        cache: dict[int, torch.Tensor] = {}
        for path, (t, size, reason) in zip(candidates, results):
            if reason is not None:
                skipped.append(Skipped(path, reason))
                continue
            if t is not None:
                cache[len(paths)] = t
            w, h = size
            if min(w, h) < min_size:
                warnings.append(f"{path}: {w}×{h} px is smaller than the {min_size} px crop; "
                                f"upscaled to {load_size}×{load_size}")
            paths.append(path)
        if skipped:
            log.warning("%s: %d file(s) skipped: %s", root, len(skipped), _summary(skipped))
            for s in skipped:
                log.debug("skipped %s: %s", s.path, s.reason)
        if warnings:
            log.warning("%s: %d image(s) smaller than the %d px crop were upscaled", root, len(warnings), min_size)
        if not paths:
            raise DataError(f"{root}: nothing usable found in the {name} folder: none of its "
                            f"{len(candidates)} image file(s) could be decoded ({_summary(skipped)})")
        log.info("%s: %d images for domain %s (%d cached, %d skipped)", root, len(paths), name, len(cache),
                 len(skipped))
        store = _Store(root, name, load_size, max_pixels, capacity, paths, skipped, warnings)
        store.cache = cache
        self._init_view(store, list(range(len(paths))), name)

    def _init_view(self, store: _Store, index: list[int], name: str) -> None:
        self._store = store
        self._index = index
        self.root = store.root
        self.name = name
        self.files = [store.paths[k] for k in index]
        self.skipped = store.skipped  # shared: files that fail later show up in every view
        self.warnings = store.warnings

    @classmethod
    def _view(cls, store: _Store, index: list[int], name: str) -> "ImageFolder":
        view = cls.__new__(cls)
        view._init_view(store, index, name)
        return view

    @property
    def load_size(self) -> int:
        return self._store.load_size

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"ImageFolder({self.root!r}, name={self.name!r}, n={len(self)}, load_size={self.load_size})"

    def check_present(self) -> None:
        """Raise ``DataGoneError`` when the root folder is no longer there."""
        self._store.check_present()

    def get(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 ``(3, load_size, load_size)``, from the cache when it is there.

        A file that fails now (truncated, deleted) is added to ``skipped`` and the next usable
        image of this view stands in for it, so the substitution is deterministic.
        """
        n = len(self._index)
        if not 0 <= index < n:
            raise IndexError(f"image index {index} out of range for {n} images")
        for j in range(n):
            t = self._store.load(self._index[(index + j) % n])
            if t is not None:
                return t
        raise DataError(f"{self.root}: nothing usable found in the {self.name} folder any more: "
                        f"every image failed to decode ({_summary(self.skipped)})")

    def thumbnail(self, index: int, size: int = 96) -> np.ndarray:
        """A small uint8 ``(h, w, 3)`` picture of image ``index`` at its own aspect ratio (max side ``size``)."""
        if not 0 <= index < len(self._index):
            raise IndexError(f"image index {index} out of range for {len(self._index)} images")
        try:
            img, _ = _decode(self.files[index], self._store.max_pixels, draft=(size, size))
            img.thumbnail((size, size), Image.Resampling.BICUBIC)
        except _Undecodable:
            t = self.get(index)  # what training uses instead, square
            img = Image.fromarray(np.ascontiguousarray(t.permute(1, 2, 0).numpy())).resize((size, size), Image.Resampling.BICUBIC)
        return np.array(img, dtype=np.uint8)

    def split(self, val_fraction: float, val_min: int, seed: int) -> tuple["ImageFolder", "ImageFolder"]:
        """(train, val) views of this domain that share its cache; val is never trained on.

        The held-out count is ``max(val_min, round(val_fraction · n))``, or 0 when
        ``val_fraction`` is 0. It is held out only if the training part keeps more images
        than the held-out part (``n ≥ 2·n_val + 1``); otherwise nothing is held out, so tiny
        folders still train. Which images are held out is decided by a hash of
        (seed, file path relative to the root): deterministic in the seed and independent of
        the other files, so adding images to a folder moves few others across the split.
        """
        n = len(self)
        n_val = max(int(val_min), math.floor(val_fraction * n + 0.5)) if val_fraction > 0 else 0
        if n < 2 * n_val + 1:
            if n_val:
                log.info("%s: %d images are too few to hold out %d; nothing held out", self.root, n, n_val)
            n_val = 0

        def key(pos: int) -> bytes:
            rel = os.path.relpath(self.files[pos], self.root).replace(os.sep, "/")
            return hashlib.blake2b(repr(("split", int(seed), rel)).encode(), digest_size=16).digest()

        held = set(sorted(range(n), key=key)[:n_val])
        train = [k for pos, k in enumerate(self._index) if pos not in held]
        val = [k for pos, k in enumerate(self._index) if pos in held]
        return (ImageFolder._view(self._store, train, self.name),
                ImageFolder._view(self._store, val, f"{self.name} (held out)"))


    def shard(self, rank: int, world_size: int) -> "ImageFolder":
        """The images of this view at positions rank, rank + world_size, …: one rank's disjoint shard.

        The shards of all ranks partition the view, so in every epoch each image is trained on by
        exactly one rank (distributed training).
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        if world_size == 1:
            return self
        index = self._index[rank::world_size]
        if not index:
            raise DataError(f"{self.root}: {len(self)} images are too few to give each of {world_size} processes one")
        return ImageFolder._view(self._store, index, self.name)


# --- pairs of domains -------------------------------------------------------------------------

def same_folder(a, b) -> bool:
    """Whether two paths name the same folder (through symlinks, ``..`` or case-insensitive file systems)."""
    a, b = os.fspath(a), os.fspath(b)
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_pair(ds_a: ImageFolder, ds_b: ImageFolder) -> list[str]:
    """Problems with using these two domains together (empty when there are none)."""
    if same_folder(ds_a.root, ds_b.root):
        return [f"A and B are the same folder ({ds_a.root}): choose two different domains"]
    real_a = {os.path.realpath(p) for p in ds_a.files}
    shared = sum(os.path.realpath(p) in real_a for p in ds_b.files)
    if shared:
        return [f"{shared} image(s) are in both A ({ds_a.root}) and B ({ds_b.root}); one folder probably "
                "contains the other: choose two separate folders"]
    return []


def open_domain(path, cfg: "Config", name: str) -> ImageFolder:
    """One domain folder, scanned and decoded with the config's data settings. Raises ``DataError``."""
    d = cfg.data
    return ImageFolder(path, load_size=d.load_size, max_pixels=d.max_pixels, cache_mb=d.cache_mb,
                       min_size=d.crop_size, name=name)


def open_domains(path_a, path_b, cfg: "Config") -> tuple[ImageFolder, ImageFolder]:
    """Both domains. Refuses (``DataError``) the same folder for A and B, or folders sharing images."""
    if same_folder(path_a, path_b):
        raise DataError(f"A and B are the same folder ({os.path.abspath(os.fspath(path_a))}): "
                        "choose two different domains")
    ds_a = open_domain(path_a, cfg, "A")
    ds_b = open_domain(path_b, cfg, "B")
    problems = check_pair(ds_a, ds_b)
    if problems:
        raise DataError("; ".join(problems))
    return ds_a, ds_b


# --- unpaired sampling ------------------------------------------------------------------------

def _seed_of(*parts) -> int:
    """A well-mixed 63-bit seed from a tuple: nearby inputs give unrelated streams."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _generator(*parts) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(_seed_of(*parts))
    return g


class UnpairedBatches:
    """Batches of (A, B) crops as a pure function of (seed, step).

    Sample i = step·batch_size + k. An epoch is N = max(|A|, |B|) samples; in epoch
    e = i // N, A is walked through a permutation of A seeded by (seed, e), at position
    (i mod N) mod |A|; the B image is drawn uniformly with a generator seeded by (seed, i),
    so the pairs are unpaired. Crop offsets and flips come from generators seeded by
    (seed, i, domain). Each seed has a purpose tag so no two streams coincide.
    """

    def __init__(self, a: ImageFolder, b: ImageFolder, *, batch_size: int, crop_size: int, flip: bool, seed: int,
                 device="cpu"):
        if len(a) == 0 or len(b) == 0:
            raise DataError(f"cannot sample batches: domain {a.name if len(a) == 0 else b.name} has no images")
        for ds in (a, b):
            if crop_size > ds.load_size:
                raise ValueError(f"crop_size={crop_size} exceeds the {ds.name} images' load_size={ds.load_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.a, self.b = a, b
        self.batch_size = int(batch_size)
        self.crop_size = int(crop_size)
        self.flip = bool(flip)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.samples_per_epoch = max(len(a), len(b))
        self.steps_per_epoch = math.ceil(self.samples_per_epoch / self.batch_size)
        self._perms: dict[int, torch.Tensor] = {}
        self._perm_lock = threading.Lock()

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def _perm_a(self, epoch: int) -> torch.Tensor:
        with self._perm_lock:
            p = self._perms.get(epoch)
            if p is None:
                p = torch.randperm(len(self.a), generator=_generator("perm", self.seed, epoch, "A"))
                if len(self._perms) >= 4:
                    self._perms.pop(next(iter(self._perms)))
                self._perms[epoch] = p
            return p

    def indices(self, i: int) -> tuple[int, int]:
        """(A index, B index) of sample i."""
        n = self.samples_per_epoch
        ia = int(self._perm_a(i // n)[(i % n) % len(self.a)])
        ib = int(torch.randint(len(self.b), (), generator=_generator("pick", self.seed, i, "B")))
        return ia, ib

    def _augment(self, images: list[torch.Tensor], params: list[tuple[int, int, bool]]) -> torch.Tensor:
        """uint8 (3, L, L) images → float32 (B, 3, c, c) crops in [-1, 1], on the device."""
        c = self.crop_size
        full = torch.stack(images).to(self.device, non_blocking=True)
        out = torch.empty((len(images), 3, c, c), dtype=torch.float32, device=self.device)
        for k, (y, x, flip) in enumerate(params):
            crop = full[k, :, y:y + c, x:x + c]
            out[k] = crop.flip(-1) if flip else crop
        return out.div_(127.5).sub_(1.0)

    def _random_params(self, ds: ImageFolder, i: int, domain: str) -> tuple[int, int, bool]:
        g = _generator("aug", self.seed, i, domain)
        span = ds.load_size - self.crop_size
        y, x = (int(v) for v in torch.randint(0, span + 1, (2,), generator=g))
        flip = bool(torch.rand((), generator=g) < 0.5)
        return y, x, flip and self.flip

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 (batch_size, 3, crop, crop) for A and for B, in [-1, 1], on the device."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        self.a.check_present()
        self.b.check_present()
        imgs_a, imgs_b, par_a, par_b = [], [], [], []
        for k in range(self.batch_size):
            i = step * self.batch_size + k
            ia, ib = self.indices(i)
            imgs_a.append(self.a.get(ia))
            imgs_b.append(self.b.get(ib))
            par_a.append(self._random_params(self.a, i, "A"))
            par_b.append(self._random_params(self.b, i, "B"))
        return self._augment(imgs_a, par_a), self._augment(imgs_b, par_b)

    def fixed(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n images of each domain (cycling if a domain has fewer), centre crop, no flip."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.a.check_present()
        self.b.check_present()
        out = []
        for ds in (self.a, self.b):
            off = (ds.load_size - self.crop_size) // 2
            out.append(self._augment([ds.get(j % len(ds)) for j in range(n)], [(off, off, False)] * n))
        return out[0], out[1]

    def prefetch(self, start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches start_step, start_step + 1, … made ahead on a background thread (queue of 2).

        Closing the generator (or dropping it) stops and joins the thread. An error in a batch
        (``DataGoneError`` …) is raised here, at the batch it belongs to.
        """
        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce() -> None:
            step = start_step
            while not stop.is_set():
                try:
                    item = (True, self.batch(step))
                except BaseException as e:  # noqa: BLE001 - handed to the consumer
                    item = (False, e)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if not item[0]:
                    return
                step += 1

        thread = threading.Thread(target=produce, name="batch-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    ok, value = q.get(timeout=0.1)
                except queue.Empty:
                    if not thread.is_alive() and q.empty():
                        raise RuntimeError("the batch prefetch thread ended unexpectedly") from None
                    continue
                if not ok:
                    raise value
                yield value
        finally:
            stop.set()
            thread.join()


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (B, 3, H, W) in [-1, 1] → a uint8 (H, W, 3) or (B, H, W, 3) numpy copy."""
    if t.dim() not in (3, 4):
        raise ValueError(f"expected a (3, H, W) or (B, 3, H, W) tensor, got shape {tuple(t.shape)}")
    x = torch.nan_to_num(t.detach().float(), nan=0.0)
    x = ((x + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    x = x.permute(1, 2, 0) if x.dim() == 3 else x.permute(0, 2, 3, 1)
    # x is a fresh tensor, so its contiguous numpy view is already a copy nobody else holds.
    return x.cpu().contiguous().numpy()
