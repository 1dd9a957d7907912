"""A per-pixel colour map as a 3D look-up table: the ``.cube`` export, and fast translation of large photos.

A colour generator's output pixel depends on its input pixel alone (``engine.models.families``), so the whole
map is its values on the RGB cube. Sampled on a size³ grid and interpolated trilinearly, as grading tools
apply a ``.cube`` file, it costs a few gathers a pixel instead of a 64-wide MLP: a 24-MP photo takes
seconds, in memory that does not grow with the photo beyond its own pixels.

The interpolation is checked, not assumed: before a photo is translated through the table, the network itself
translates a sample of the photo's own pixels, and the table is used only when it stays within half a grey
level of them, so the saved pixels are at most one grey level from the network's (rounding). A map with
sharper bends gets a finer grid, and one too sharp for that goes through the network as before.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

__all__ = ["CUBE_SIZE", "TRANSLATE_SIZES", "cube_lut", "apply_lut", "lut_for_image", "translate_by_lut"]

CUBE_SIZE = 33                # grid points per axis of an exported 3D LUT (33³: the size grading tools expect)
TRANSLATE_SIZES = (65, 129)   # the grids tried, coarse first, for translating (65: 4 grey levels apart)
CHECK_PIXELS = 65536          # the photo's pixels the network translates itself to check the table
TOLERANCE = 0.5               # grey levels between the table and the network, before rounding
CHUNK = 1 << 20               # pixels interpolated at once (about 40 MB of temporaries)


def cube_lut(net: nn.Module, size: int = CUBE_SIZE) -> torch.Tensor:
    """A per-pixel generator sampled on a size³ grid of RGB in [0, 1]: (size, size, size, 3) in [0, 1], indexed
    [b, g, r] (red changes fastest, the .cube order)."""
    axis = torch.linspace(0.0, 1.0, size)
    b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
    rgb = torch.stack([r, g, b], dim=0).reshape(1, 3, size * size, size)  # one "image" whose pixels are the grid
    device = next(net.parameters()).device
    with torch.no_grad():
        out = net(rgb.to(device) * 2.0 - 1.0).float().cpu().clamp(-1.0, 1.0)
    return ((out + 1.0) / 2.0).reshape(3, size, size, size).permute(1, 2, 3, 0)


def apply_lut(lut: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] through a (size, size, size, 3) LUT indexed [b, g, r], trilinearly, as grading
    tools apply a .cube file; same shape and range out."""
    grid = x.permute(0, 2, 3, 1).unsqueeze(1)  # (B, 1, H, W, 3): (x, y, z) = (r, g, b) in [-1, 1]
    table = lut.permute(3, 0, 1, 2).unsqueeze(0).expand(x.shape[0], -1, -1, -1, -1)  # (B, 3, D=b, H=g, W=r)
    out = Fn.grid_sample(table * 2.0 - 1.0, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.squeeze(2)


def _grey_levels(table: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3) uint8 pixels through a (1, 3, size, size, size) table of grey levels: (N, 3) float grey levels."""
    grid = pixels.float().div_(127.5).sub_(1.0).view(1, 1, 1, -1, 3)
    out = Fn.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.view(3, -1).t()


def lut_for_image(net: nn.Module, pixels: np.ndarray, seed: int = 0) -> torch.Tensor | None:
    """The coarsest of ``TRANSLATE_SIZES`` whose table stays within ``TOLERANCE`` grey levels of ``net`` on a
    sample of ``pixels`` ((N, 3) uint8), as a (1, 3, size, size, size) table of grey levels (0…255); None when
    none does."""
    rng = np.random.default_rng(seed)
    n = len(pixels)
    sample = torch.from_numpy(pixels[rng.choice(n, CHECK_PIXELS, replace=False)] if n > CHECK_PIXELS
                              else np.array(pixels))  # a copy: a PIL image's array is read-only
    device = next(net.parameters()).device
    with torch.no_grad():  # the network on the sample itself: (1, 3, 1, N) is an image whose pixels are the sample
        x = sample.float().div(127.5).sub(1.0).t().reshape(1, 3, 1, -1).to(device)
        exact = ((net(x).float().cpu().clamp(-1.0, 1.0) + 1.0) * 127.5).view(3, -1).t()
    for size in TRANSLATE_SIZES:
        table = (cube_lut(net, size) * 255.0).permute(3, 0, 1, 2).unsqueeze(0).contiguous()
        if (_grey_levels(table, sample) - exact).abs().max().item() <= TOLERANCE:
            return table
    return None


def translate_by_lut(table: torch.Tensor, image: np.ndarray,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """An (H, W, 3) uint8 image through a table of ``lut_for_image``, ``CHUNK`` pixels at a time: (H, W, 3) uint8."""
    flat = np.ascontiguousarray(image).reshape(-1, 3)
    out = np.empty(flat.shape, dtype=np.uint8)
    chunks = max(1, -(-len(flat) // CHUNK))
    with torch.no_grad():
        for i in range(chunks):
            part = slice(i * CHUNK, (i + 1) * CHUNK)
            levels = _grey_levels(table, torch.from_numpy(flat[part].copy()))  # copied: a PIL array is read-only
            out[part] = levels.round_().clamp_(0, 255).to(torch.uint8).numpy()
            if progress is not None:
                progress(i + 1, chunks)
    return out.reshape(image.shape)
