"""Unpaired batches of (A, B) crops, as a pure function of (seed, step).

``UnpairedBatches.batch(step)`` depends on nothing but ``(seed, step)``: not on the global
RNG, not on the order batches are asked for. A run resumed at step N sees the same batches
as one that never stopped. Crop and flip run on uint8 tensors, on the training device.
"""

from __future__ import annotations

import hashlib
import math
import queue
import threading
from typing import Iterator

import torch

from engine.data.folders import ImageFolder
from engine.errors import DataError

__all__ = ["UnpairedBatches"]


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
            if crop_size > ds.min_side:
                raise ValueError(f"crop_size={crop_size} exceeds the {ds.name} images' shorter side {ds.min_side}")
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
        """uint8 (3, h, w) images → float32 (B, 3, c, c) crops in [-1, 1], on the device.

        The crops are cut on the host (images may differ in size) and only they are moved."""
        c = self.crop_size
        crops = [img[:, y:y + c, x:x + c] for img, (y, x, _) in zip(images, params)]
        out = torch.stack([crop.flip(-1) if flip else crop for crop, (_, _, flip) in zip(crops, params)])
        return out.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)

    def _random_params(self, image: torch.Tensor, i: int, domain: str) -> tuple[int, int, bool]:
        g = _generator("aug", self.seed, i, domain)
        h, w = image.shape[-2:]
        y = int(torch.randint(0, h - self.crop_size + 1, (), generator=g))
        x = int(torch.randint(0, w - self.crop_size + 1, (), generator=g))
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
            par_a.append(self._random_params(imgs_a[-1], i, "A"))
            par_b.append(self._random_params(imgs_b[-1], i, "B"))
        return self._augment(imgs_a, par_a), self._augment(imgs_b, par_b)

    def fixed(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n images of each domain (cycling if a domain has fewer), centre crop, no flip."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.a.check_present()
        self.b.check_present()
        out = []
        c = self.crop_size
        for ds in (self.a, self.b):
            images = [ds.get(j % len(ds)) for j in range(n)]
            params = [((im.shape[-2] - c) // 2, (im.shape[-1] - c) // 2, False) for im in images]
            out.append(self._augment(images, params))
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

