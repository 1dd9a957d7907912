"""DiffAugment (Zhao et al., 2020): the critics see real and fake images through the same random,
differentiable augmentations, so that a critic cannot memorise a small training set while the
generators still get gradients through the augmentation.

Only geometric augmentations: translation (by up to 1/8 of the side, the gap zero-filled) and
cutout (a zeroed square of half the side). Colour augmentations are left out on purpose: in
image-to-image translation the colours are often what is being learned.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["diff_augment", "Augmented"]


def diff_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) → the same shape: each image shifted and cut out at its own random place."""
    b, _, h, w = x.shape
    dev = x.device
    shift = torch.randint(-(h // 8), h // 8 + 1, (b, 2), generator=generator).to(dev)
    ys = (torch.arange(h, device=dev)[None, :] - shift[:, :1]).clamp(-1, h)  # (B, H) source rows, -1/h: outside
    xs = (torch.arange(w, device=dev)[None, :] - shift[:, 1:]).clamp(-1, w)
    inside = ((ys >= 0) & (ys < h))[:, None, :, None] & ((xs >= 0) & (xs < w))[:, None, None, :]
    gathered = x[torch.arange(b, device=dev)[:, None, None], :, ys.clamp(0, h - 1)[:, :, None],
                 xs.clamp(0, w - 1)[:, None, :]].permute(0, 3, 1, 2)  # (B, C, H, W)
    out = gathered * inside
    cy = torch.randint(0, h, (b,), generator=generator).to(dev)[:, None, None]
    cx = torch.randint(0, w, (b,), generator=generator).to(dev)[:, None, None]
    yy, xx = torch.arange(h, device=dev)[None, :, None], torch.arange(w, device=dev)[None, None, :]
    keep = ~((yy - cy).abs() < h // 4) | ~((xx - cx).abs() < w // 4)  # a zeroed square of half the side
    return out * keep[:, None]


class Augmented(nn.Module):
    """A critic that sees its input through ``diff_augment``; draws come from ``generator``, set per step."""

    def __init__(self, critic: nn.Module):
        super().__init__()
        self.critic = critic
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(diff_augment(x, self.generator))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic.score(diff_augment(x, self.generator))
