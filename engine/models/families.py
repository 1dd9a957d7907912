"""Generator families that keep the picture: a per-pixel colour map, and the colour map with a local detail path.

The paper's ResNet generator (``engine.models.networks``) downsamples by 4 and redraws every output
pixel from its features: it can learn any change, textures and shapes included, but fine detail must
be relearnt before it comes back, and in a short run a colour grade comes out smeared. The families
here are CycleGAN generators too (the same objective, step and monitor), built so that what they
cannot change passes through untouched:

* ``colour``: out(p) = c(x(p)), one small MLP (1×1 convolutions) applied to each pixel by itself. It
  learns any global colour or tone change (a grade, a tone curve, a channel mix, greyscale, sepia) and
  nothing that depends on a pixel's neighbours. It is exact at any resolution, has no reach (a tile
  needs no margin) and exports as a 3D LUT (``.cube``).
* ``local``: a per-pixel map of each pixel together with its neighbourhood seen at a few scales (Gaussian
  blurs up to σ 4 px, the luma's gradient; a reach of 13 px each way): sharpening, a small blur, edge effects,
  a pencil sketch's dodge, outlines, on top of a grade. It cannot draw shapes or textures wider than that.

A map starts as a random draw fitted to pass every colour through (``start_as_identity``; ``map_start`` in the
config): the run begins at the untouched picture and the objective moves it only where the folders differ.
From the bare random draw, as the paper's generators start, the identity and cycle losses pull the map back
towards a faithful one within a few dozen steps, but not always to the right one: it may keep swapped hues, or
reverse light and dark. A local generator starts as a colour map: its map ignores the filtered channels until it
learns to use them.

State dicts name their family by their keys (``colour.*``) and the shape of the map's first layer, so a file
says by itself what to build (``family_arch_from_state_dict``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as Fn
from torch import nn

from engine.images import LUMA
from engine.models.channel_order import order_indices

__all__ = ["ColourGenerator", "LocalGenerator", "COLOUR_WIDTH", "family_arch_from_state_dict", "family_from_arch",
           "start_as_identity", "IDENTITY_FIT_STEPS"]

COLOUR_WIDTH = 64           # hidden channels of the per-pixel MLP
COLOUR_DEPTH = 3            # hidden layers of the per-pixel MLP


def _mlp(width: int, depth: int, inputs: int = 3) -> nn.Sequential:
    """inputs → width (→ width)… → 3 channels by 1×1 convolutions with LeakyReLU between them."""
    layers: list[nn.Module] = []
    c = inputs
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, kernel_size=1), nn.LeakyReLU(0.2, inplace=True)]
        c = width
    layers.append(nn.Conv2d(c, 3, kernel_size=1))
    return nn.Sequential(*layers)


class ColourGenerator(nn.Module):
    """Per-pixel colour map: out(p) = tanh(h(x(p))), h an MLP over the pixel's RGB alone."""

    family = "colour"

    def __init__(self, width: int = COLOUR_WIDTH, depth: int = COLOUR_DEPTH):
        super().__init__()
        self.width, self.depth = width, depth
        self.colour = _mlp(width, depth)
        self.reach = 0  # each output pixel sees its own input pixel alone
        self.peak_channels = width  # the widest full-resolution activation (a tile's memory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.colour(x))


class _Blur(nn.Module):
    """A separable Gaussian blur of every channel, truncated at 3σ, the border reflected (as the photo would
    continue). Fixed: its kernel is not learnt and not saved.

    It computes in fp32 on a contiguous (NCHW) tensor, outside any autocast, and returns the input's dtype. A
    fixed filter gains nothing from bf16, and on CPUs with native bf16 (AVX512-BF16) oneDNN's depthwise bf16
    convolution of a channels-last tensor with a kernel 15 or more pixels wide never returns (torch 2.14.1;
    the σ 4 blur's kernel is 25 wide): under ``amp=auto`` the local family hung in its first step there."""

    def __init__(self, sigma: float):
        super().__init__()
        self.radius = math.ceil(3 * sigma)
        k = torch.exp(-0.5 * (torch.arange(-self.radius, self.radius + 1, dtype=torch.float32) / sigma) ** 2)
        self.register_buffer("kernel", k / k.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self._blur(x.float().contiguous()).to(x.dtype)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        c, r, k = x.shape[1], self.radius, self.kernel.float()
        x = Fn.conv2d(Fn.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return Fn.conv2d(Fn.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class LocalGenerator(nn.Module):
    """A per-pixel map of each pixel together with its neighbourhood seen at a few scales: out(p) =
    tanh(h(x(p), G_σ * x (p) for σ in SIGMAS, ∂x, ∂y of G_σ * luma (p) for σ in GRADIENT_SIGMAS)).

    The neighbourhood features are fixed (Gaussian blurs of the RGB image, the gradient of its blurred luma),
    so what is learnt is one per-pixel map, as in the colour family, of 16 numbers instead of 3. That expresses
    the local tasks exactly or nearly: a blur picks a blurred channel, an unsharp mask is x + a·(x − G_σ * x),
    a pencil sketch divides the luma by a blur of its negative, a cartoon's outlines are a gradient's length.
    It reaches ``reach`` px each way (3σ of the widest blur, and the derivative's pixel). Learnt filters were
    tried first: stacked 3×3 convolutions with ReLUs blurred the whole picture within a few hundred steps,
    and a learnt 19×19 filter bank trained twelve times slower than the colour map on a CPU. The map's
    weights for the neighbourhood start at zero, so a local generator starts as exactly a colour map."""

    family = "local"
    SIGMAS = (1.0, 2.0, 4.0)
    GRADIENT_SIGMAS = (1.0, 2.0)

    def __init__(self, width: int = COLOUR_WIDTH, depth: int = COLOUR_DEPTH):
        super().__init__()
        self.width, self.depth = width, depth
        self.blurs = nn.ModuleList([_Blur(s) for s in self.SIGMAS])
        self.gradient_blurs = nn.ModuleList([_Blur(s) for s in self.GRADIENT_SIGMAS])
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.colour = _mlp(width, depth, inputs=self.inputs)
        with torch.no_grad():
            self.colour[0].weight[:, 3:] = 0.0
        # How far each way an output pixel sees: the widest blur's radius, or a gradient's blur and its pixel.
        self.reach = max([math.ceil(3 * s) for s in self.SIGMAS] + [math.ceil(3 * s) + 1 for s in self.GRADIENT_SIGMAS])
        self.peak_channels = max(width, self.inputs)  # the widest full-resolution activation (a tile's memory)

    inputs = 3 + 3 * len(SIGMAS) + 2 * len(GRADIENT_SIGMAS)


    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B, ``inputs``, H, W): the pixel, its blurs, and its blurred luma's gradients."""
        feats = [x]
        for blur in self.blurs:
            feats.append(blur(x))
        luma = (x * self.luma.to(x.dtype)).sum(dim=1, keepdim=True)
        for blur in self.gradient_blurs:
            g = Fn.pad(blur(luma), (1, 1, 1, 1), mode="replicate")
            feats.append((g[:, :, 1:-1, 2:] - g[:, :, 1:-1, :-2]) * 0.5)
            feats.append((g[:, :, 2:, 1:-1] - g[:, :, :-2, 1:-1]) * 0.5)
        return torch.cat(feats, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.colour(self.features(x)))


def family_arch_from_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, object] | None:
    """{"family", "width", "depth"} of a colour or local generator's state dict (told apart by the inputs of its
    map's first layer: 3 for a colour map, ``LocalGenerator.inputs`` for a local one); None when the keys are not
    one of these families'. Raises ValueError for a damaged one."""
    convs = sorted({int(k.split(".")[1]) for k in sd if k.startswith("colour.") and k.endswith(".weight")})
    if not convs:
        return None
    first, last = sd[f"colour.{convs[0]}.weight"], sd[f"colour.{convs[-1]}.weight"]
    family = {3: "colour", LocalGenerator.inputs: "local"}.get(int(first.shape[1])) if first.ndim == 4 else None
    if family is None or tuple(first.shape[2:]) != (1, 1) or tuple(last.shape[:2]) != (3, first.shape[0]):
        raise ValueError(f"not a colour map: colour.{convs[0]}.weight has shape {tuple(first.shape)}")
    return {"family": family, "width": int(first.shape[0]), "depth": len(convs) - 1}


def family_from_arch(arch: dict[str, object]) -> nn.Module:
    """An untrained generator of the family and shape ``family_arch_from_state_dict`` read."""
    kind = LocalGenerator if arch["family"] == "local" else ColourGenerator
    return kind(arch["width"], arch["depth"])


IDENTITY_FIT_STEPS = 300    # Adam steps of ``start_as_identity``'s fit (0.8–1.1 s on one CPU thread, AVX2)
_FIT_SIDE = 32              # 32 × 32 random colours per step of that fit


def start_as_identity(net: nn.Module, steps: int = IDENTITY_FIT_STEPS, order: str = "rgb") -> nn.Module:
    """Fits a freshly drawn colour or local map so that it passes every colour through: tanh(h(x)) ≈ x over
    colours drawn uniformly from the RGB cube (from the global torch generator, so a seeded run starts alike);
    with another channel ``order`` (``engine.models.channel_order``), every colour with its channels reordered.
    The fit is an L1 regression of the whole MLP, not a zeroed last layer: every layer keeps its random draw's
    variety and learns from the first step. A local generator's neighbourhood inputs are held at zero throughout,
    so their weights stay at zero and it still starts as exactly a colour map.

    Why: from a random draw the map must first find its way back to the picture, and on two folders whose colour
    distributions it already matches the objective hardly cares which way: it can settle on a map that permutes
    hues (the small blur's crimson flag turned orange-red and a brown head of hair red, 0.8 dB under the untouched
    input after 1,400 steps), and about half of all draws start reversing light and dark. Started at the
    identity, it changes only what the folders ask for. The exact identity, tanh(atanh(s·x) + h(x)) with h's last
    layer zeroed, was tried first and stayed there on the faded print (16.0 dB, the identity's score): a fitted
    start moves from the first step (24.9 dB on the faded print after 1,400 steps, against 24.5 from a random
    draw)."""
    mlp: nn.Sequential = net.colour
    inputs = mlp[0].in_channels
    channels = list(order_indices(order))
    opt = torch.optim.Adam(mlp.parameters(), lr=3e-3)
    with torch.enable_grad(), torch.autocast("cpu", enabled=False):
        for _ in range(steps):
            x = torch.rand(1, 3, _FIT_SIDE, _FIT_SIDE) * 2 - 1  # one image of random colours
            feats = torch.cat([x, x.new_zeros(1, inputs - 3, _FIT_SIDE, _FIT_SIDE)], 1)
            loss = (torch.tanh(mlp(feats)) - x[:, channels]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    opt.zero_grad(set_to_none=True)  # nothing of the fit's left on the parameters
    return net
