"""The history pool of generated images (Shrivastava et al.), as CycleGAN uses it.

The discriminator sees a mix of current fakes and older ones, which damps oscillation.
Randomness comes from a caller-supplied ``torch.Generator`` so that a resumed run draws
exactly what an uninterrupted run would have drawn.
"""

from __future__ import annotations

import torch

__all__ = ["ImagePool"]


class ImagePool:
    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Return a batch like ``images``: while the pool fills, the images themselves; then, per image,
        with probability ½ a stored older image (which the new one replaces) and otherwise the new image."""
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
                continue
            # Draw both numbers every time so the stream of draws does not depend on the branch.
            u = float(torch.rand((), generator=generator))
            idx = int(torch.randint(self.size, (), generator=generator))
            if u > 0.5:
                out.append(self.images[idx].clone())
                self.images[idx] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        stacked = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stacked}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        imgs = state["images"]
        self.images = [imgs[i:i + 1].to(device) for i in range(imgs.shape[0])] if imgs.numel() else []
        self.images = self.images[: self.size]
