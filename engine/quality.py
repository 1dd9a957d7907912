"""Scoring translations against ground truth: PSNR of G(x) against T(x) on held-out pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .config import Config
from .data import IMAGE_EXTENSIONS, load_image

__all__ = ["psnr", "GroundTruth"]


def psnr(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(peak² / MSE). Infinite for identical inputs."""
    a = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).double()
    b = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y).double()
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _to_tensor(img: Image.Image, size: int) -> torch.Tensor:
    img = img.resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


@dataclass
class GroundTruth:
    """Pairs (x, T(x)) of held-out images: x from domain A, T(x) its true translation to B."""

    x: torch.Tensor    # (N, 3, S, S) in [-1, 1]
    tx: torch.Tensor   # (N, 3, S, S) in [-1, 1]

    @classmethod
    def from_dirs(cls, dir_x, dir_tx, size: int, limit: int = 16) -> "GroundTruth":
        names = sorted(p.name for p in Path(dir_x).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        names = [n for n in names if (Path(dir_tx) / n).is_file()][:limit]
        if not names:
            raise ValueError(f"no image pairs between {dir_x} and {dir_tx}")
        xs = torch.stack([_to_tensor(load_image(Path(dir_x) / n), size) for n in names])
        txs = torch.stack([_to_tensor(load_image(Path(dir_tx) / n), size) for n in names])
        return cls(xs, txs)

    @classmethod
    def from_demo_dir(cls, demo_dir, cfg: Config) -> "GroundTruth":
        return cls.from_dirs(Path(demo_dir) / "testA", Path(demo_dir) / "testA_to_B", cfg.data.crop_size)

    @staticmethod
    def _u8(t: torch.Tensor) -> torch.Tensor:
        return ((t.float().clamp(-1, 1) + 1) * 127.5).round()

    @torch.no_grad()
    def score(self, G: torch.nn.Module, F: torch.nn.Module, device: torch.device | str = "cpu") -> dict[str, float]:
        """psnr_AtoB = PSNR(G(x), T(x)); psnr_BtoA = PSNR(F(T(x)), x); psnr_cycle = PSNR(F(G(x)), x);
        psnr_identity = PSNR(x, T(x)), the do-nothing baseline. Computed on 8-bit values."""
        was = G.training, F.training
        G.eval(), F.eval()
        x, tx = self.x.to(device), self.tx.to(device)
        gx = G(x)
        out = {
            "psnr_AtoB": psnr(self._u8(gx), self._u8(tx)),
            "psnr_BtoA": psnr(self._u8(F(tx)), self._u8(x)),
            "psnr_cycle": psnr(self._u8(F(gx)), self._u8(x)),
            "psnr_identity": psnr(self._u8(x), self._u8(tx)),
        }
        G.train(was[0]), F.train(was[1])
        return out
