"""Images between their three forms: uint8 arrays (H, W, 3), PIL images, and float tensors in [-1, 1].

The networks see (B, 3, H, W) float tensors with 0 → −1 and 255 → 1; files, previews and
scores use 8-bit values. The conversion is written once, here: x = u/127.5 − 1 on the way
in, u = round((x + 1)·127.5) clamped to [0, 255] on the way out, so a uint8 image survives
the round trip pixel for pixel.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["LUMA", "to_uint8_image", "uint8_to_tensor", "to_unit_range", "pil_to_tensor", "tensor_to_pil", "quantize"]

LUMA = (0.299, 0.587, 0.114)  # an RGB pixel's luma weights (ITU-R BT.601)


def quantize(t: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats → the float values 0.0 … 255.0 of the uint8 image they would be saved as."""
    x = torch.nan_to_num(t.detach().float(), nan=0.0)
    return ((x + 1.0) * 127.5).round_().clamp_(0, 255)


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (B, 3, H, W) in [-1, 1] → a uint8 (H, W, 3) or (B, H, W, 3) numpy copy."""
    if t.dim() not in (3, 4):
        raise ValueError(f"expected a (3, H, W) or (B, 3, H, W) tensor, got shape {tuple(t.shape)}")
    x = quantize(t).to(torch.uint8)
    x = x.permute(1, 2, 0) if x.dim() == 3 else x.permute(0, 2, 3, 1)
    # x is a fresh tensor, so its contiguous numpy view is already a copy nobody else holds.
    return x.cpu().contiguous().numpy()


def uint8_to_tensor(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (B, H, W, 3) → float32 (3, H, W) or (B, 3, H, W) in [-1, 1]."""
    arr = np.asarray(a)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) or (B, H, W, 3) array, got {arr.dtype} {arr.shape}")
    t = torch.from_numpy(np.array(arr, dtype=np.float32)).div_(127.5).sub_(1.0)  # a writable float copy
    return t.permute(2, 0, 1).contiguous() if t.dim() == 3 else t.permute(0, 3, 1, 2).contiguous()


def to_unit_range(t: torch.Tensor) -> torch.Tensor:
    """A uint8 tensor (0 … 255, any shape) → a new float32 tensor in [-1, 1]; a float tensor already in
    [-1, 1] → float32 (itself when it already is)."""
    return t.float().div_(127.5).sub_(1.0) if t.dtype == torch.uint8 else t.float()


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image of any mode → (1, 3, H, W) float32 in [-1, 1]."""
    return uint8_to_tensor(np.asarray(img.convert("RGB"), dtype=np.uint8)).unsqueeze(0)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] → an RGB PIL image."""
    return Image.fromarray(to_uint8_image(t[0] if t.dim() == 4 else t), "RGB")
