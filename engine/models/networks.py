"""Generators and discriminators/critics, with the reference implementation's parameter layout.

The layouts match the reference PyTorch CycleGAN code index for index, so that its
published ``latest_net_G*.pth`` state_dicts load without renaming:

ResNet generator (n_blocks = 9):  model.0 pad · 1 conv7 · 2 norm · 3 relu ·
  4/7 stride-2 convs (+norm, relu) · 10–18 residual blocks (conv_block.1, conv_block.5) ·
  19/22 up stages (+norm, relu) · 25 pad · 26 conv7 · 27 tanh.
PatchGAN (n_layers_D = 3): model.0/2/5/8/11 convs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import nn

from engine.config import Config
from engine.errors import CheckpointError
from engine.models.channel_order import inverse_order
from engine.models.families import (
    ColourGenerator,
    LocalGenerator,
    family_arch_from_state_dict,
    family_from_arch,
    start_as_identity,
)

__all__ = [
    "ResnetBlock",
    "ResnetGenerator",
    "NLayerDiscriminator",
    "build_generator",
    "build_critic",
    "init_weights",
    "init_unnormalised",
    "count_parameters",
    "generator_arch_from_state_dict",
    "generator_from_state_dict",
    "pad_to_multiple",
    "translate_tensor",
]


def _norm_layer(kind: str):
    if kind == "instance":
        # Instance norm without affine or running stats, as the reference.
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "layer":
        # Layer norm over (C, H, W) for conv features: one group. Per-sample, so safe under a gradient penalty.
        return lambda c: nn.GroupNorm(1, c)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid choices: instance, layer, none")


class ResnetBlock(nn.Module):
    """conv-norm-relu-conv-norm with a skip connection; reflect padding keeps the border statistics."""

    def __init__(self, dim: int, norm_layer, use_bias: bool):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResizeConv(nn.Module):
    """Nearest-neighbour ×2 upsample then a 3×3 conv: no uneven kernel overlap, so no checkerboard."""

    def __init__(self, c_in: int, c_out: int, use_bias: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, padding_mode="reflect", bias=use_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResnetGenerator(nn.Module):
    """The paper's generator: c7s1-ngf, d2ngf, d4ngf, n_blocks × R4ngf, u2ngf, ungf, c7s1-3, tanh."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", upsample: str = "transpose", input_skip: bool = False):
        super().__init__()
        norm_layer = _norm_layer(norm)
        use_bias = norm != "batch"  # instance norm has no affine shift, so the convs keep their bias
        self.input_nc, self.output_nc, self.ngf, self.n_blocks = input_nc, output_nc, ngf, n_blocks
        self.upsample_kind = upsample
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # downsample: (B, ngf, H, W) → (B, 4ngf, H/4, W/4)
            mult = 2 ** i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm_layer, use_bias) for _ in range(n_blocks)]
        for i in range(2):  # upsample back to (B, ngf, H, W)
            mult = 2 ** (2 - i)
            if upsample == "transpose":
                up: nn.Module = nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2,
                                                   padding=1, output_padding=1, bias=use_bias)
            elif upsample == "resize":
                up = ResizeConv(ngf * mult, ngf * mult // 2, use_bias)
            else:
                raise ValueError(f"unknown upsample {upsample!r}; valid choices: transpose, resize")
            layers += [up, norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)
        self.input_skip = input_skip
        # Saved only with the skip on, so that a state_dict says by itself whether the generator
        # has it (generator_arch_from_state_dict) and the reference layout keeps its keys. Always
        # present as an attribute, so that TorchScript compiles either branch of forward().
        self.register_buffer("skip_scale", torch.tensor(0.999), persistent=input_skip)

    def zero_last_conv(self) -> None:
        """Zero the output conv: with the input skip the generator then starts as the exact identity."""
        last = self.model[-2]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        if not self.input_skip:
            return y
        # The network predicts the change in the tanh's input space: out = tanh(atanh(s·x) + h),
        # where y = tanh(h) is the network's own output. Every colour is reachable from any input,
        # the output stays in [−1, 1] and, unlike a clamp, no pixel loses its gradient; s = 0.999
        # keeps atanh finite at ±1. Computed by the addition theorem, tanh(a + b) =
        # (tanh a + tanh b) / (1 + tanh a · tanh b), so no atanh is evaluated and the graph
        # (TorchScript, ONNX) is plain arithmetic on the reference network's output.
        t = x.clamp(-1.0, 1.0) * self.skip_scale
        return (t + y) / (1.0 + t * y)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: (B, 3, H, W) → (B, 1, ~H/2^n, ~W/2^n) patch scores. n_layers=3 sees 70×70 patches.

    ``score(x)`` averages the patches into one scalar per image: the critic value f(x)
    that the Wasserstein losses, the gradient penalty and the W estimate all use.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False):
        super().__init__()
        norm_layer = _norm_layer(norm)
        use_bias = True  # instance/layer norm without a separate shift, and "none", all keep conv biases
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        kw, padw = 4, 1
        layers: list[nn.Module] = [sn(nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw)),
                                   nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [sn(nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias)),
                       norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [sn(nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias)),
                   norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [sn(nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw))]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 1, h, w) patch map → (B,) one scalar per image
        return self.model(x).mean(dim=(1, 2, 3))


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Normal(0, 0.02) for conv weights, zero bias, as the paper; norm weights (if any) N(1, 0.02)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GroupNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def build_generator(cfg: Config, *, inverse: bool = False) -> nn.Module:
    """G: A → B, or with ``inverse`` F: B → A (a per-pixel map then starts at the inverse channel order)."""
    m = cfg.model
    if cfg.is_per_pixel:
        # PyTorch's default initialisation (Kaiming-uniform): no norms to restore the paper's N(0, 0.02) scale,
        # then, unless the config asks for a random map, fitted to pass colours through in the channel order
        # (``auto`` is resolved from the folders by the trainer; where nothing resolved it: untouched)
        net = ColourGenerator() if m.netG == "colour" else LocalGenerator()
        if m.map_start != "identity":
            return net
        order = cfg.channel_order
        return start_as_identity(net, order=inverse_order(order) if inverse else order)
    if m.netG != "resnet":
        raise ValueError(f"no generator to build for netG={m.netG!r}: valid choices are colour, local and resnet "
                         "(auto is resolved to one of them by the family search before anything is built)")
    net = ResnetGenerator(3, 3, m.ngf, m.n_blocks, m.norm, m.upsample, m.input_skip)
    if m.norm == "none":
        init_unnormalised(net)
    else:
        init_weights(net)
    if m.input_skip:
        net.zero_last_conv()
    return net


def init_unnormalised(net: ResnetGenerator) -> ResnetGenerator:
    """Initialisation for a generator without normalisation layers.

    The paper's N(0, 0.02) relies on instance norm to restore the scale after every conv; without
    it the signal shrinks by about 0.02·√fan_in per layer and the deep layers barely learn. Here
    every conv gets He (Kaiming) initialisation for ReLU, and the second conv of each residual
    block is zeroed (as in Fixup and "zero-init residual"), so each block starts as the identity
    and the activations keep their scale through any number of blocks.
    """
    for mod in net.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    for mod in net.modules():
        if isinstance(mod, ResnetBlock):
            second = [c for c in mod.conv_block if isinstance(c, nn.Conv2d)][-1]
            nn.init.zeros_(second.weight)
            if second.bias is not None:
                nn.init.zeros_(second.bias)
    return net


def build_critic(cfg: Config) -> nn.Module:
    m = cfg.model
    return init_weights(NLayerDiscriminator(3, m.ndf, cfg.critic_layers, m.norm_D, m.spectral_norm))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def generator_arch_from_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Work out (family, input_nc, output_nc, ngf, n_blocks, upsample, input_skip) of a ResNet generator from its
    keys and shapes; for a colour or local generator, ``family_arch_from_state_dict``'s description.

    Raises ValueError with a plain message when the state_dict is not a ResNet generator
    in the reference layout.
    """
    keys = [k for k in sd if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    if "model.1.weight" not in sd and any(k.startswith("colour.") for k in keys):
        return family_arch_from_state_dict(sd)  # a colour or local generator (engine.models.families)
    if "model.1.weight" not in sd:
        if any(k.startswith("model.model.") or ".submodule." in k for k in keys):
            raise ValueError("this is a U-Net generator; only ResNet generators are supported yet")
        raise ValueError("not a CycleGAN ResNet generator: there is no 'model.1.weight' (the first 7×7 conv)")
    first = sd["model.1.weight"]
    if first.ndim != 4 or tuple(first.shape[2:]) != (7, 7):
        raise ValueError(f"not a CycleGAN ResNet generator: model.1.weight has shape {tuple(first.shape)}, "
                         "expected (ngf, in, 7, 7)")
    ngf, input_nc = int(first.shape[0]), int(first.shape[1])
    blocks = {int(k.split(".")[1]) for k in keys if ".conv_block." in k}
    if not blocks:
        raise ValueError("not a CycleGAN ResNet generator: no residual blocks (model.N.conv_block.*) found")
    if sorted(blocks) != list(range(10, 10 + len(blocks))):
        raise ValueError(f"residual blocks at unexpected indices {sorted(blocks)}; expected 10, 11, …")
    n_blocks = len(blocks)
    up_idx = 10 + n_blocks
    upsample = "resize" if f"model.{up_idx}.conv.weight" in sd else "transpose"
    last = f"model.{up_idx + 7}.weight"
    if last not in sd:
        raise ValueError(f"not a CycleGAN ResNet generator: expected the last conv at {last!r}")
    output_nc = int(sd[last].shape[0])
    return {"family": "resnet", "input_nc": input_nc, "output_nc": output_nc, "ngf": ngf, "n_blocks": n_blocks,
            "upsample": upsample, "input_skip": "skip_scale" in sd}


def receptive_field(n_layers: int) -> int:
    """Receptive field of the PatchGAN in pixels (70 for n_layers = 3)."""
    rf = 1
    # layers from the output back: two stride-1 4×4 convs, then n_layers stride-2 4×4 convs
    for stride in [1, 1] + [2] * n_layers:
        rf = (rf - 1) * stride + 4
    return rf


assert math.isclose(receptive_field(3), 70)


def generator_from_state_dict(state: dict[str, torch.Tensor], what: str, norm: str = "instance") -> nn.Module:
    """A generator in eval mode built to fit ``state`` (a ResNet in the reference layout, or a colour or local
    generator, told apart by their keys); ``what`` names it in errors."""
    # Older reference files carry InstanceNorm running stats that a non-tracking norm does not use.
    state = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    try:
        arch = generator_arch_from_state_dict(state)
    except (ValueError, KeyError, IndexError) as e:
        raise CheckpointError(f"{what}: {e}") from None
    if arch["family"] != "resnet":
        net = family_from_arch(arch)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{what} does not fit a {arch['family']} generator: "
                                  f"{str(e).splitlines()[0][:300]}") from None
        return net.eval()
    net = ResnetGenerator(arch["input_nc"], arch["output_nc"], arch["ngf"], arch["n_blocks"], norm, arch["upsample"],
                          arch["input_skip"])
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{what} does not fit a ResNet generator: {str(e).splitlines()[0][:300]}") from None
    return net.eval()


# --- inference at any size ---------------------------------------------------------------------
def pad_to_multiple(x: torch.Tensor, m: int = 4, min_size: int = 8) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (B, C, H, W) on the bottom/right to multiples of m, at least ``min_size``.

    The generator's own reflection pads need at least 2 pixels at quarter resolution, hence
    ``min_size`` 8. Returns (padded, (H, W)) so the caller can crop back.
    """
    h, w = x.shape[-2:]
    ph, pw = max(min_size, h + (-h) % m) - h, max(min_size, w + (-w) % m) - w
    if ph or pw:
        # Reflect padding needs pad < size; tiny images fall back to replicating the edge.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = Fn.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def translate_tensor(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] → same size, through the generator."""
    padded, (h, w) = pad_to_multiple(x, 4)
    return net(padded)[..., :h, :w]
