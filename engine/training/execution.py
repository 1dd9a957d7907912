"""How the step runs on its device: precision, memory format and compiled passes. None of it changes the maths.

* **Autocast** to bf16 on CUDA (``amp``); weights and optimiser state stay fp32.
* **channels_last** (NHWC): on CPU, oneDNN's convolution backward is ~3× faster than in NCHW
  at these sizes. But torch 2.14's CPU backward through a ConvTranspose2d generator in NHWC is
  wrong at batch size 1 (F(G(a)) gradients off by ~0.1 even in float64; resize-conv and batch 2
  are exact), so on CPU the transposed-conv generators stay NCHW. The critics are exact in NHWC.
* **torch.compile** (CUDA) of the generators' forward passes only: the critics sit on the
  gradient-penalty path (double backward).
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch
from torch import nn

from engine.config import Config

__all__ = ["Execution"]


class Execution:
    def __init__(self, cfg: Config, device: torch.device):
        self.device = device
        self.amp = device.type == "cuda" and cfg.output.amp
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.channels_last_critics = cfg.output.channels_last
        self.channels_last_generators = cfg.output.channels_last and (device.type == "cuda"
                                                                     or cfg.model.upsample == "resize")
        self.compile = cfg.output.compile and device.type == "cuda"

    def autocast(self) -> ContextManager:
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, generators: list[nn.Module], critics: list[nn.Module]) -> None:
        """Put the networks' weights in the memory format their inputs will have."""
        for net in generators:
            if self.channels_last_generators:
                net.to(memory_format=torch.channels_last)
        for net in critics:
            if self.channels_last_critics:
                net.to(memory_format=torch.channels_last)

    def generator_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last_generators:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def forward_of(self, generator: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        """The callable the step uses for a generator's training passes (compiled where enabled)."""
        return torch.compile(generator) if self.compile else generator
