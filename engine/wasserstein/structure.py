"""A critic-free distance that sees structure as well as colour: sliced W1 on the bands of a Laplacian pyramid.

The W monitor's 8-px patches at the training scale hardly tell a blurred or smeared picture from a sharp one
(a grey mush can read closer to the target than a roughly right colour grade). Here each image is split into
three bands: the detail lost by halving it, the detail lost by halving it again, and what is left at a quarter
of the size (colour and tone over regions 4 px wide and more). Each band is cut into 8 × 8 patches, and the two
samples' patch sets are compared by the sliced Wasserstein distance (fixed random projections, so every
sample is measured along the same directions). A band's distance is divided by the target band's mean absolute value,
so blur (missing detail), invented texture (extra detail) and wrong colour all count on one scale, and the
bands are summed.

The interval is a bootstrap over the compared crops (whole crops are resampled, not patches, which are
correlated within a crop); a distance and its bootstrap replicates share their resamples of the target, so
ratios of two candidates' distances are paired.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn

from engine.wasserstein.monitor import patches_of

__all__ = ["pyramid_bands", "band_patches", "structure_distances", "LEVELS"]

LEVELS = 3  # two detail bands and the low-pass image at a quarter of the size
_QUANTILES = 512  # points on which two samples' quantile functions are compared


def pyramid_bands(images: torch.Tensor, levels: int = LEVELS) -> list[torch.Tensor]:
    """(N, C, H, W) → [detail at 1/1, detail at 1/2, …, low-pass at 1/2^(levels-1)] (H, W divisible by that)."""
    bands, cur = [], images
    for _ in range(levels - 1):
        low = Fn.avg_pool2d(cur, 2)
        bands.append(cur - Fn.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False))
        cur = low
    return [*bands, cur]


def band_patches(images: torch.Tensor, patch: int = 8, stride: int = 4, levels: int = LEVELS) -> list[torch.Tensor]:
    """Each band's patch × patch squares on the stride grid, flattened: one (n_l, C · patch²) tensor per band."""
    return [patches_of(b, min(patch, b.shape[-1]), stride) for b in pyramid_bands(images, levels)]


def _sliced(a: torch.Tensor, b: torch.Tensor, rng: np.random.Generator, n: int, projections: np.ndarray) -> float:
    pa = a[rng.choice(len(a), size=min(n, len(a)), replace=False)].double().numpy()
    pb = b[rng.choice(len(b), size=min(n, len(b)), replace=False)].double().numpy()
    # W1 along each direction from the two quantile functions on a common grid, averaged over the directions.
    grid = (np.arange(_QUANTILES) + 0.5) / _QUANTILES
    qa = np.quantile(pa @ projections, grid, axis=0)
    qb = np.quantile(pb @ projections, grid, axis=0)
    return float(np.abs(qa - qb).mean())


def structure_distances(target: torch.Tensor, candidates: dict[str, torch.Tensor], *, seed: int = 0,
                        n_boot: int = 12, n_projections: int = 64, max_patches: int = 2000
                        ) -> dict[str, tuple[float, np.ndarray]]:
    """{name: (distance, bootstrap replicates)} of each candidate's crops from the target's crops.

    ``target`` and every candidate: (N, 3, H, W) in [-1, 1], H and W divisible by 4. Replicate i of every
    candidate uses the same resample of the target, so candidate/identity ratios can be taken replicate by
    replicate.
    """
    rng = np.random.default_rng(seed)
    dim = 3 * 8 * 8
    projections = rng.standard_normal((dim, n_projections))
    projections /= np.linalg.norm(projections, axis=0, keepdims=True)
    target_bands = band_patches(target)
    scale = [float(b.abs().mean()) or 1.0 for b in target_bands]

    def distance(t_bands, c_bands, r) -> float:
        return sum(_sliced(t, c, r, max_patches, projections[: t.shape[1]]) / s
                   for t, c, s in zip(t_bands, c_bands, scale))

    resamples = [np.random.default_rng(seed + 1 + i).integers(len(target), size=len(target)) for i in range(n_boot)]
    boot_targets = [band_patches(target[idx]) for idx in resamples]
    out = {}
    for name, crops in candidates.items():
        bands = band_patches(crops)
        d = distance(target_bands, bands, np.random.default_rng(seed))
        reps = np.empty(n_boot)
        for i, t_bands in enumerate(boot_targets):
            r = np.random.default_rng(seed + 1000 + i)
            idx = r.integers(len(crops), size=len(crops))
            reps[i] = distance(t_bands, band_patches(crops[idx]), r)
        out[name] = (d, reps)
    return out
