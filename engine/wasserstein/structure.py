"""A critic-free distance that sees structure as well as colour: sliced W1 on the bands of a Laplacian pyramid.

The W monitor's 8-px patches at the training scale hardly tell a blurred or smeared picture from a sharp one
(a grey mush can read closer to the target than a roughly right colour grade). Here each image is split into
three bands: the detail lost by halving it, the detail lost by halving it again, and what is left at a quarter
of the size (colour and tone over regions 4 px wide and more). Each band is cut into 8 × 8 patches, and the two
samples' patch sets are compared by the sliced Wasserstein distance (fixed random projections, so every
sample is measured along the same directions). A band's distance is divided by the target band's mean absolute value,
so blur (missing detail), invented texture (extra detail) and wrong colour all count on one scale. The bands
are then summed (``combine="sum"``), or their geometric mean is taken (``combine="geometric"``, ``READING``: the
reading of the W monitor and of the family search). Over the untranslated images' distance, the sum weighs
each band's ratio by how far apart the two domains are in it; the geometric mean weighs the bands alike, so a
candidate that closes the gap in one band cannot hide that it doubled it in another. On the pencil sketch the
two domains differ most in colour and tone (white paper against photographs): by the sum, colour maps that turned
sketches into tinted sketches, twice as far from photographs as the sketches in both detail bands, read as close
as a ResNet that had the paper's tone right and its detail wrong (0.876 against 0.863, a tie kept for the local
generator: 7.7 dB against the ResNet's 16.0); by the geometric mean 1.00 against 0.86.

The interval is a bootstrap over the compared crops (whole crops are resampled, not patches, which are
correlated within a crop); a distance and its bootstrap replicates share their resamples of the target, so
ratios of two candidates' distances are paired.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn

__all__ = ["patches_of", "pyramid_bands", "band_patches", "band_distances", "RealSide", "structure_distances",
           "combine_bands", "LEVELS", "COMBINE", "READING"]

LEVELS = 3  # two detail bands and the low-pass image at a quarter of the size
COMBINE = ("sum", "geometric")  # how the bands' distances make one (see the module docstring)
# How the W monitor's structure reading and the ``auto`` family search make the bands one: each band counts by its
# ratio to the untranslated images'. Summed, the band where the domains differ most outweighs the others: on the
# pencil sketch it was colour and tone, and tinted sketches tied with the ResNet's sketches.
READING = "geometric"


def patches_of(images: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """(N, C, H, W) → (N · rows · cols, C · size²): every size × size square on the stride grid, flattened."""
    p = Fn.unfold(images, kernel_size=size, stride=stride)  # (N, C·size², L)
    return p.transpose(1, 2).reshape(-1, p.shape[1]).contiguous()


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


def _sliced(a: np.ndarray, b: np.ndarray, projections: np.ndarray) -> float:
    """Sliced W1 of two equal-sized patch sets: along each direction the two sorted projections are the two
    quantile functions, and W1 is the mean gap between them."""
    return _quantile_gap(np.sort(a @ projections, axis=0), b, projections)


def _quantile_gap(sorted_a: np.ndarray, b: np.ndarray, projections: np.ndarray) -> float:
    """``_sliced`` where one side's projections are already sorted."""
    return float(np.abs(sorted_a - np.sort(b @ projections, axis=0)).mean())


def _draw(bands: list[torch.Tensor], crops: np.ndarray, n_crops: int, rng: np.random.Generator, n: int
          ) -> list[np.ndarray]:
    """``n`` patches of each band, drawn from the crops listed in ``crops`` (a resample of range(n_crops), with
    repeats): a crop uniformly from the list, then a place in it uniformly."""
    out = []
    for band in bands:
        per = len(band) // n_crops
        rows = crops[rng.integers(len(crops), size=n)] * per + rng.integers(per, size=n)
        out.append(band[torch.from_numpy(rows)].numpy())
    return out


def combine_bands(distances: np.ndarray, combine: str) -> np.ndarray:
    """The bands' distances (last axis) made one: their sum, or their geometric mean (``COMBINE``)."""
    if combine == "sum":
        return distances.sum(-1)
    if combine == "geometric":  # a band at 0 (only a sample against itself) is held at a tiny distance
        return np.exp(np.log(np.maximum(distances, 1e-12)).mean(-1))
    raise ValueError(f"combine must be one of {COMBINE}, not {combine!r}")


class RealSide:
    """The real target's side of ``band_distances``, prepared once: the projections, each band's scale, and the sorted
    projections of the target's patch draws (the draw compared, then one per bootstrap resample of its crops).
    A reading against it depends on nothing else, so a monitor reading many candidates, or one candidate at every
    evaluation, against one real side prepares it once: about 0.5 MB per band and draw (64 projections of 2,000
    patches) where the crops' bands were 20–80 MB, cut up again at every reading.

    ``target``: (N, 3, H, W) in [-1, 1], H and W divisible by 4. Draw 0 and resample i are seeded on their own
    (``seed + 1``, ``seed + 2 + i``), so a side prepared with more resamples reads a request for fewer exactly as
    a side prepared with that many would.
    """

    def __init__(self, target: torch.Tensor, *, seed: int = 0, n_boot: int = 12, n_projections: int = 64,
                 n_patches: int = 2000):
        self.seed, self.n_boot, self.n_patches = seed, n_boot, n_patches
        rng = np.random.default_rng(seed)
        bands = band_patches(target)
        projections = rng.standard_normal((bands[0].shape[1], n_projections))
        self.projections = (projections / np.linalg.norm(projections, axis=0, keepdims=True)).astype(np.float32)
        self.scale = [float(b.abs().mean()) or 1.0 for b in bands]
        n_t = len(target)
        draws = [_draw(bands, np.arange(n_t), n_t, np.random.default_rng(seed + 1), n_patches)]
        for i in range(n_boot):
            r = np.random.default_rng(seed + 2 + i)
            draws.append(_draw(bands, r.integers(n_t, size=n_t), n_t, r, n_patches))
        self.dims = [t.shape[1] for t in draws[0]]  # each band's patch length (C · patch²)
        # (draws, bands) of (n_patches, n_projections): each draw's quantile functions along the projections
        self.sorted = [[np.sort(t @ self.projections[:dim], axis=0) for t, dim in zip(draw, self.dims)]
                       for draw in draws]

    def distance(self, draw: int, candidate: list[np.ndarray]) -> np.ndarray:
        """Each band's sliced W1 of a candidate's patch draw from the target's draw ``draw`` (0: the draw compared,
        i: resample i), over the target band's mean absolute value (as ``_sliced``)."""
        # projected along the target band's own length, so a candidate's patches of another length are refused
        return np.array([_quantile_gap(t, c, self.projections[:dim]) / s
                         for t, c, s, dim in zip(self.sorted[draw], candidate, self.scale, self.dims)])


def band_distances(target: torch.Tensor | RealSide, candidates: dict[str, torch.Tensor], *, seed: int = 0,
                   n_boot: int = 12, n_projections: int = 64, n_patches: int = 2000
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (distance per band (LEVELS,), bootstrap replicates (n_boot, LEVELS))} of each candidate's crops from
    the target's crops, each band's sliced W1 over the target band's mean absolute value.

    ``target`` (or its ``RealSide``, prepared with as many resamples or more; its seed and sizes then stand for
    ``seed``, ``n_projections`` and ``n_patches``) and every candidate: (N, 3, H, W) in [-1, 1], H and W divisible
    by 4. Each band is compared on ``n_patches`` patches drawn from each side. Replicate i of every candidate uses
    the same resample of the target's crops, so candidate/identity ratios can be taken replicate by replicate.
    """
    real = target if isinstance(target, RealSide) else RealSide(target, seed=seed, n_boot=n_boot,
                                                                n_projections=n_projections, n_patches=n_patches)
    if n_boot > real.n_boot:
        raise ValueError(f"the real side was prepared with {real.n_boot} resamples, not {n_boot}")
    seed, n_patches = real.seed, real.n_patches
    out = {}
    for name, crops in candidates.items():
        bands, n_c = band_patches(crops), len(crops)
        d = real.distance(0, _draw(bands, np.arange(n_c), n_c, np.random.default_rng(seed + 1000), n_patches))
        reps = np.empty((n_boot, len(d)))
        for i in range(n_boot):
            r = np.random.default_rng(seed + 2000 + i)
            reps[i] = real.distance(i + 1, _draw(bands, r.integers(n_c, size=n_c), n_c, r, n_patches))
        out[name] = (d, reps)
    return out


def structure_distances(target: torch.Tensor | RealSide, candidates: dict[str, torch.Tensor], *, seed: int = 0,
                        n_boot: int = 12, n_projections: int = 64, n_patches: int = 2000, combine: str = "sum"
                        ) -> dict[str, tuple[float, np.ndarray]]:
    """{name: (distance, bootstrap replicates)} of each candidate's crops from the target's crops: the bands of
    ``band_distances`` made one by ``combine`` (``COMBINE``), its replicates paired in the same way."""
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}, not {combine!r}")
    bands = band_distances(target, candidates, seed=seed, n_boot=n_boot, n_projections=n_projections,
                           n_patches=n_patches)
    return {name: (float(combine_bands(d, combine)), combine_bands(reps, combine)) for name, (d, reps) in bands.items()}
