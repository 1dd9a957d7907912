"""Translating images of any size in bounded memory: overlapping tiles, cropped by the receptive field.

A generator's output pixel depends on the input pixels within its receptive field (``reach``
pixels each way). The image is cut into tiles; each tile is translated with a ``margin`` of
extra context on every side and only its centre is kept. With ``margin`` ≥ ``reach`` the kept
pixels see exactly what they would see in the whole image, so for a generator without
normalisation the result equals the whole-image pass (up to float rounding, well inside
1/255). Memory then grows with the tile, not with the image.

Instance normalisation would make every tile normalise by its own statistics, and seams would
show. For such generators (the paper's, reference ``.pth`` files) a statistics pass first runs a
sample of full-resolution crops, spread over the image, through the generator as one batch whose
norms pool their statistics over the whole sample; the tiles are then normalised with those
estimates of the whole image's statistics. The estimate is the only difference from a
whole-image pass. (A pass over the whole image at reduced size was measured first and dropped:
finer detail has more variance, and its statistics were 18–23 dB PSNR away.)
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

from engine.errors import EngineError
from engine.models.networks import pad_to_multiple

__all__ = ["OutOfMemory", "receptive_reach", "bytes_per_pixel", "tile_for_memory", "translate_tiled", "DEFAULT_MEMORY"]

DEFAULT_MEMORY = 2 << 30   # 2 GiB: what a tile's activations may use when nothing else says


class OutOfMemory(EngineError):
    """A translation did not fit in memory. The message says which tile size or --max-memory to use."""


def receptive_reach(net: nn.Module) -> int:
    """How many pixels each way an output pixel of a ResNet generator can see, from its layers' shapes,
    rounded up to a multiple of 4 (the generator's downsampling). Convs at 1/s resolution count s×."""
    reach, scale = 0, 1
    for m in net.modules():
        if isinstance(m, nn.ReflectionPad2d):
            reach += m.padding[0] * scale
        elif isinstance(m, nn.Conv2d):
            k, st, pad = m.kernel_size[0], m.stride[0], m.padding[0] if isinstance(m.padding, tuple) else 0
            if st == 2:
                reach += (k // 2) * scale
                scale *= 2
            elif pad:  # a resize-conv's own padding (the reflect pads above count the others)
                reach += pad * scale
        elif isinstance(m, nn.ConvTranspose2d):  # an output pixel sees ±k//2 input pixels, at the input's scale
            reach += (m.kernel_size[0] // 2) * scale
            scale //= 2
        elif type(m).__name__ == "ResizeConv":
            scale //= 2
    return int(math.ceil(reach / 4) * 4)


def bytes_per_pixel(net: nn.Module) -> int:
    """Peak activation bytes per input pixel, fp32: the widest full-resolution layer (ngf channels; 2·ngf
    entering a resize upsampling's conv) times the tensors of that size alive at once: about four without
    normalisation (input, conv output, the next conv's padded input and output), about twelve with
    instance norm, whose statistics pass and frozen-statistics hooks keep the norm's own output, the
    re-normalised copy and the variance's temporaries alive as well. Measured: a 24-MP image through
    the default generator (ngf 32, instance norm, resize) peaked near 2.6 kB per tile pixel."""
    ngf = getattr(net, "ngf", 64)
    wide = 2 * ngf if getattr(net, "upsample_kind", "transpose") == "resize" else ngf
    live = 12 if _has_norms(net) else 4
    return 4 * live * max(wide, 3 * 4)


def tile_for_memory(net: nn.Module, memory: int, image_hw: tuple[int, int]) -> int:
    """The largest square tile (a multiple of 4, at least 64) whose activations, with margins, fit ``memory``;
    the whole image when it fits at once."""
    h, w = image_hw
    margin = receptive_reach(net)
    per_px = bytes_per_pixel(net)
    if (h + 8) * (w + 8) * per_px <= memory:
        return max(h, w)
    side = int(math.sqrt(memory / per_px)) - 2 * margin
    return max(64, side // 4 * 4)


@contextmanager
def _frozen_norms(net: nn.Module, stats: list[tuple[torch.Tensor, torch.Tensor]] | None,
                  record: list[tuple[torch.Tensor, torch.Tensor]] | None) -> Iterator[None]:
    """Instance norms of ``net`` either record their per-channel (mean, var) into ``record`` or normalise
    with the given ``stats`` (one pair per norm layer, in order) instead of the tile's own."""
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    handles = []
    for i, norm in enumerate(norms):
        def hook(module, args, output, i=i):
            x = args[0]
            if record is not None:  # pooled over the batch and the positions; this batch is normalised with it
                mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
                record.append((mean, var))
            else:
                mean, var = stats[i]
            return (x - mean) / torch.sqrt(var + module.eps)
        handles.append(norm.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _has_norms(net: nn.Module) -> bool:
    return any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


@torch.no_grad()
def _whole_image_stats(net: nn.Module, x: torch.Tensor, crop: int, budget_px: int, as_float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each instance norm's per-channel (mean, var) for the whole image, estimated in one pass over a sample
    of full-resolution crops spread over it: the crops go through the generator as one batch, and every
    norm pools its statistics over the whole batch (so each layer already sees the earlier ones normalised
    the same way). As many ``crop``-px crops as ``budget_px`` allows, at least four."""
    h, w = x.shape[-2:]
    crop = max(16, min(crop, h, w) // 4 * 4)
    n = max(4, budget_px // (crop * crop))
    rows = max(1, min(round(math.sqrt(n * h / w)), h // crop))
    cols = max(1, min(n // rows, w // crop))
    ys = [round((h - crop) * (i + 0.5) / rows) for i in range(rows)]
    xs = [round((w - crop) * (j + 0.5) / cols) for j in range(cols)]
    device = next(net.parameters()).device
    batch = torch.cat([as_float(x[:, :, y:y + crop, c:c + crop]) for y in ys for c in xs]).to(device)
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    with _frozen_norms(net, None, record):
        net(batch)
    return record


@torch.no_grad()
def translate_tiled(net: nn.Module, x: torch.Tensor, *, tile: int, progress: Callable[[int, int], None] | None = None,
                    out_dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """(1, 3, H, W) image → the translation, (1, 3, H, W), assembled from ``tile`` × ``tile`` tiles.

    ``x`` is uint8 (0 … 255) or float in [-1, 1]; it may live on the CPU while ``net`` runs on another
    device: each tile moves there and back, and only tiles are ever converted to float.
    ``out_dtype`` uint8 returns 8-bit values (0 … 255) and keeps the whole result small;
    float32 returns [-1, 1]. ``progress(done, total)`` is called after each tile.
    """
    device = next(net.parameters()).device
    _, c, h, w = x.shape
    margin = receptive_reach(net)
    tile = max(4, tile // 4 * 4)
    as_float = (lambda t: t.float().div_(127.5).sub_(1.0)) if x.dtype == torch.uint8 else (lambda t: t.float())
    out = torch.empty((1, c, h, w), dtype=out_dtype)
    rows, cols = range(0, h, tile), range(0, w, tile)
    total, done = len(rows) * len(cols), 0
    try:
        stats = None
        if _has_norms(net) and (h > tile or w > tile):  # the statistics pass is as large as a tile: inside the guard
            stats = _whole_image_stats(net, x, tile + 2 * margin, (tile + 2 * margin) ** 2, as_float)
        for y0 in rows:
            for x0 in cols:
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                # the tile with its margin, clipped to the image (the image border pads as the whole pass would)
                ty0, tx0, ty1, tx1 = max(0, y0 - margin), max(0, x0 - margin), min(h, y1 + margin), min(w, x1 + margin)
                piece = as_float(x[:, :, ty0:ty1, tx0:tx1].to(device))
                padded, (ph, pw) = pad_to_multiple(piece, 4)
                with _frozen_norms(net, stats, None) if stats is not None else _nullcontext():
                    y = net(padded)[..., :ph, :pw]
                y = y[..., y0 - ty0:y0 - ty0 + (y1 - y0), x0 - tx0:x0 - tx0 + (x1 - x0)].float().cpu()
                out[..., y0:y1, x0:x1] = y.clamp(-1, 1).add(1).mul(127.5).round() if out_dtype == torch.uint8 else y
                done += 1
                if progress is not None:
                    progress(done, total)
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as e:
        if not isinstance(e, (torch.OutOfMemoryError, MemoryError)) and "allocate" not in str(e):
            raise
        raise OutOfMemory(f"a {tile}×{tile}-px tile did not fit in memory ({str(e).splitlines()[0][:80]}): "
                          f"use a smaller tile, e.g. --tile {max(64, tile // 2)}, or a smaller --max-memory") from None
    return out


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield
