"""Scores against ground truth: PSNR, and held-out pairs (x, T(x)) whose true translation is known.

A leaf module: it scores whatever generators it is handed and knows nothing about how they
were trained or where the pairs came from (the demo data, a quality task). Images are scored
at their own size, each translated whole, on 8-bit values, as a user would see them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.stats
import torch
from PIL import Image

from engine.data.decode import IMAGE_EXTENSIONS, load_image
from engine.data.demo import ground_truth_dir
from engine.images import quantize, uint8_to_tensor
from engine.models.networks import translate_tensor

__all__ = ["psnr", "spearman", "GroundTruth", "demo_ground_truth"]


def psnr(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(peak² / MSE). Infinite for identical inputs."""
    a = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).double()
    b = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y).double()
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's on the ranks, ties sharing their mean rank); nan when either side is
    constant or shorter than 3."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"spearman: {len(a)} values against {len(b)}")
    if len(a) < 3:
        return math.nan
    ra, rb = scipy.stats.rankdata(a), scipy.stats.rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else math.nan


def _pooled_psnr(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """PSNR of the mean squared error over all pixels of all pairs (images of different sizes weigh by area)."""
    se = sum(float(((a.double() - b.double()) ** 2).sum()) for a, b in pairs)
    n = sum(a.numel() for a, _ in pairs)
    return math.inf if se == 0 else 10.0 * math.log10(255.0 ** 2 * n / se)


@dataclass
class GroundTruth:
    """Pairs (x, T(x)) of held-out images: x from domain A, T(x) its true translation to B.

    ``x`` and ``tx`` are lists of (3, H, W) tensors in [-1, 1]; sizes may differ between pairs.
    """

    x: list[torch.Tensor]
    tx: list[torch.Tensor]

    def __post_init__(self) -> None:
        if isinstance(self.x, torch.Tensor):
            self.x = list(self.x)
        if isinstance(self.tx, torch.Tensor):
            self.tx = list(self.tx)
        if len(self.x) != len(self.tx) or not self.x:
            raise ValueError(f"expected equal, non-empty lists of images, got {len(self.x)} and {len(self.tx)}")
        for a, b in zip(self.x, self.tx):
            if a.shape != b.shape or a.dim() != 3 or a.shape[0] != 3:
                raise ValueError(f"each pair must be two (3, H, W) images of one size, got {tuple(a.shape)} "
                                 f"and {tuple(b.shape)}")

    def __len__(self) -> int:
        return len(self.x)

    @classmethod
    def from_dirs(cls, dir_x, dir_tx, size: int | None = None, limit: int = 16) -> "GroundTruth":
        """Same-named image files in two folders; resized to ``size`` × ``size`` when given, else at their own size."""
        names = sorted(p.name for p in Path(dir_x).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        names = [n for n in names if (Path(dir_tx) / n).is_file()][:limit]
        if not names:
            raise ValueError(f"no image pairs between {dir_x} and {dir_tx}")

        def read(path: Path) -> torch.Tensor:
            img = load_image(path)
            if size is not None:
                img = img.resize((size, size), Image.Resampling.BICUBIC)
            return uint8_to_tensor(np.asarray(img, dtype=np.uint8))

        return cls([read(Path(dir_x) / n) for n in names], [read(Path(dir_tx) / n) for n in names])

    @classmethod
    def from_arrays(cls, x: Sequence[np.ndarray], tx: Sequence[np.ndarray]) -> "GroundTruth":
        """From uint8 (H, W, 3) images (a list, or an (N, H, W, 3) array) and their true translations."""
        return cls([uint8_to_tensor(a) for a in x], [uint8_to_tensor(a) for a in tx])

    @torch.no_grad()
    def translate(self, net: torch.nn.Module, images: Sequence[torch.Tensor],
                  device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """Each image through ``net`` at its own size; same-size images go together, as a batch."""
        out: list[torch.Tensor | None] = [None] * len(images)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            by_size.setdefault(tuple(im.shape), []).append(i)
        for idx in by_size.values():
            for start in range(0, len(idx), 16):
                chunk = idx[start:start + 16]
                y = translate_tensor(net, torch.stack([images[i] for i in chunk]).to(device)).float().cpu()
                for k, i in enumerate(chunk):
                    out[i] = y[k]
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def score(self, G: torch.nn.Module, F: torch.nn.Module, device: torch.device | str = "cpu") -> dict[str, float]:
        """psnr_AtoB = PSNR(G(x), T(x)); psnr_BtoA = PSNR(F(T(x)), x); psnr_cycle = PSNR(F(G(x)), x);
        psnr_identity = PSNR(x, T(x)), the do-nothing baseline; moved_AtoB = mean |G(x) − x| / mean |T(x) − x|.
        On 8-bit values, pooled over all pairs."""
        was = G.training, F.training
        G.eval(), F.eval()
        try:
            gx = self.translate(G, self.x, device)
            ftx = self.translate(F, self.tx, device)
            fgx = self.translate(F, gx, device)
        finally:
            G.train(was[0]), F.train(was[1])
        q = quantize
        moved = sum(float((q(g) - q(x)).abs().sum()) for g, x in zip(gx, self.x))
        needed = sum(float((q(t) - q(x)).abs().sum()) for t, x in zip(self.tx, self.x))
        return {
            "psnr_AtoB": _pooled_psnr([(q(a), q(b)) for a, b in zip(gx, self.tx)]),
            "psnr_BtoA": _pooled_psnr([(q(a), q(b)) for a, b in zip(ftx, self.x)]),
            "psnr_cycle": _pooled_psnr([(q(a), q(b)) for a, b in zip(fgx, self.x)]),
            "psnr_identity": _pooled_psnr([(q(a), q(b)) for a, b in zip(self.x, self.tx)]),
            # How far G moved x, as a share of how far T moves it: 0 for the identity, 1 for a move as large as T's.
            "moved_AtoB": moved / needed if needed > 0 else math.inf,
        }

    def identity_psnr(self) -> float:
        return _pooled_psnr([(quantize(a), quantize(b)) for a, b in zip(self.x, self.tx)])


def demo_ground_truth(path_a, size: int) -> GroundTruth | None:
    """The held-out pairs (testA, testA_to_B) when ``path_a`` is the demo data's trainA, resized to
    ``size``; None for any other folder."""
    gt_dir = ground_truth_dir(path_a)
    if gt_dir is None:
        return None
    return GroundTruth.from_dirs(gt_dir.parent / "testA", gt_dir, size)
