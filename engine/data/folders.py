"""Image folders: a recursive scan, a decode-once check, an in-memory cache, held-out splits.

One domain is an ``ImageFolder``: its files are found by a recursive scan (``engine.data.scan``),
each is decoded once (on a small thread pool) to check it and to fill the cache
(``engine.data.store``), and files that cannot be used are listed in ``skipped`` with a specific
reason instead of stopping the run.

Preprocessing follows the paper's reference implementation (``resize_and_crop``): resize to
``load_size × load_size`` (bicubic) once, at decode time; the cache holds the resized images
as uint8 tensors ``(3, load_size, load_size)``. Cropping and flipping happen later, on
tensors (``engine.data.batches``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from engine.data.decode import IMAGE_EXTENSIONS, Skipped, _decode, _resized_tensor, _Undecodable
from engine.data.scan import scan_folder, scan_workers, summarise_skipped
from engine.data.store import ImageStore
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import Config

log = logging.getLogger(__name__)

__all__ = ["ImageFolder", "open_domain", "open_domains", "same_folder", "check_pair"]


class ImageFolder:
    """One domain: the usable images under ``root`` (recursively), decoded once and cached.

    Scanning decodes every file once on a small thread pool, to check it and to fill the
    cache (uint8 ``(3, h, w)`` tensors, kept while they fit ``cache_mb``). With ``load_size``
    every image is resized to ``load_size`` × ``load_size`` (the paper's resize_and_crop);
    with ``load_size=None`` images keep their own resolution (``crop`` preprocessing). Files that
    fail are listed in ``skipped`` with a reason; images smaller than ``min_size`` (the crop) are
    upscaled and named in ``warnings``. ``files`` may give the file list instead of scanning.
    Raises ``DataError`` when nothing usable is found.
    """

    root: str
    name: str
    files: list[str]
    skipped: list[Skipped]
    warnings: list[str]

    def __init__(self, root, *, load_size: int | None, max_pixels: int = 80_000_000, cache_mb: int = 2048,
                 min_size: int = 0, name: str = "A", files=None):
        root = os.path.abspath(os.fspath(root))
        if not os.path.exists(root):
            raise DataError(f"{root}: folder not found")
        if not os.path.isdir(root):
            raise DataError(f"{root}: not a folder")
        if load_size is not None and load_size < 1:
            raise ValueError(f"load_size must be positive, got {load_size}")
        if files is None:
            candidates, skipped = scan_folder(root)
        else:
            candidates, skipped = [os.path.abspath(os.fspath(p)) for p in files], []
        if not candidates:
            raise DataError(f"{root}: nothing usable found in the {name} folder: no image files "
                            f"({', '.join(IMAGE_EXTENSIONS)})"
                            + (f"; skipped: {summarise_skipped(skipped)}" if skipped else ""))
        store = ImageStore(root, name, load_size, min_size, max_pixels, max(0, int(cache_mb)) << 20,
                           [], [], skipped, [])

        def check(item: tuple[int, str]):
            p, path = item
            try:
                t, size = _resized_tensor(path, load_size, max_pixels, min_size)
            except _Undecodable as e:
                return None, None, e.reason
            # Keep the tensor only if it can be cached (by scan position; renumbered below).
            return store.keep(p, t), size, None

        with ThreadPoolExecutor(max_workers=min(scan_workers(), len(candidates)),
                                thread_name_prefix=f"scan-{name}") as pool:
            results = list(pool.map(check, enumerate(candidates)))

        scanned, store.cache = store.cache, {}
        for p, (path, (_, size, reason)) in enumerate(zip(candidates, results)):
            if reason is not None:
                skipped.append(Skipped(path, reason))
                continue
            if p in scanned:
                store.cache[len(store.paths)] = scanned[p]
            w, h = size
            if min(w, h) < min_size:
                after = f"{load_size}×{load_size}" if load_size else f"a {min_size} px shorter side"
                store.warnings.append(f"{path}: {w}×{h} px is smaller than the {min_size} px crop; upscaled to {after}")
            store.paths.append(path)
            store.sizes.append((w, h))
        if skipped:
            log.warning("%s: %d file(s) skipped: %s", root, len(skipped), summarise_skipped(skipped))
            for s in skipped:
                log.debug("skipped %s: %s", s.path, s.reason)
        if store.warnings:
            log.warning("%s: %d image(s) smaller than the %d px crop were upscaled", root, len(store.warnings),
                        min_size)
        if not store.paths:
            raise DataError(f"{root}: nothing usable found in the {name} folder: none of its "
                            f"{len(candidates)} image file(s) could be decoded ({summarise_skipped(skipped)})")
        log.info("%s: %d images for domain %s (%d cached, %d skipped)", root, len(store.paths), name,
                 len(store.cache), len(skipped))
        self._init_view(store, list(range(len(store.paths))), name)

    def _init_view(self, store: ImageStore, index: list[int], name: str) -> None:
        self._store = store
        self._index = index
        self.root = store.root
        self.name = name
        self.files = [store.paths[k] for k in index]
        self.skipped = store.skipped  # shared: files that fail later show up in every view
        self.warnings = store.warnings

    @classmethod
    def _view(cls, store: ImageStore, index: list[int], name: str) -> "ImageFolder":
        view = cls.__new__(cls)
        view._init_view(store, index, name)
        return view

    @property
    def load_size(self) -> int | None:
        """The square size every image is resized to, or None when images keep their own resolution."""
        return self._store.load_size

    @property
    def min_side(self) -> int:
        """The shorter side every image has at least (smaller ones are enlarged)."""
        return self._store.load_size or self._store.min_side

    def scale(self) -> float:
        """The median factor by which the networks see this view's images, relative to their files:
        load_size/√(w·h) when resized to a square, 1 at their own resolution (more for enlarged ones)."""
        st = self._store
        if st.load_size:
            factors = [st.load_size / math.sqrt(w * h) for w, h in (st.sizes[k] for k in self._index)]
        else:
            factors = [max(1.0, st.min_side / min(w, h)) for w, h in (st.sizes[k] for k in self._index)]
        return float(np.median(factors)) if factors else 1.0

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"ImageFolder({self.root!r}, name={self.name!r}, n={len(self)}, load_size={self.load_size})"

    def check_present(self) -> None:
        """Raise ``DataGoneError`` when the root folder is no longer there."""
        self._store.check_present()

    def get(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 ``(3, h, w)`` (``load_size`` square when resized), from the cache when it is there.

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
                        f"every image failed to decode ({summarise_skipped(self.skipped)})")

    def thumbnail(self, index: int, size: int = 96) -> np.ndarray:
        """A small uint8 ``(h, w, 3)`` picture of image ``index`` at its own aspect ratio (max side ``size``)."""
        if not 0 <= index < len(self._index):
            raise IndexError(f"image index {index} out of range for {len(self._index)} images")
        try:
            img, _ = _decode(self.files[index], self._store.max_pixels, draft=(size, size))
            img.thumbnail((size, size), Image.Resampling.BICUBIC)
        except _Undecodable:
            t = self.get(index)  # what training uses instead, square
            img = Image.fromarray(np.ascontiguousarray(t.permute(1, 2, 0).numpy()))
            img = img.resize((size, size), Image.Resampling.BICUBIC)
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

    def training_split(self, val_fraction: float, val_min: int, seed: int, shard: tuple[int, int] = (0, 1)
                       ) -> tuple["ImageFolder", "ImageFolder"]:
        """``split()``, with the training part cut to ``shard = (rank, world_size)``'s share."""
        train, val = self.split(val_fraction, val_min, seed)
        return train.shard(*shard), val

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


def open_domain(path, cfg: "Config", name: str, *, cache: bool = True) -> ImageFolder:
    """One domain folder, scanned and decoded with the config's data settings (without keeping the
    pixels when ``cache`` is False: a check only). Raises ``DataError``."""
    d = cfg.data
    load_size = d.load_size if cfg.preprocess_in_force == "resize_and_crop" else None
    return ImageFolder(path, load_size=load_size, max_pixels=d.max_pixels, cache_mb=d.cache_mb if cache else 0,
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

