"""How the step runs on its device: precision, memory format and compiled passes. None of it changes the maths.

* **Autocast** to bf16 (``amp``): with ``auto`` only where the device computes bf16 natively
  (``engine.devices.native_bf16``), with ``on`` wherever asked (emulated bf16 on a CPU without
  AVX512-BF16 or AMX is slower than fp32). Weights and optimiser state stay fp32.
* **channels_last** (NHWC): on CPU, oneDNN's convolution backward is ~3× faster than in NCHW
  at these sizes. But torch 2.14's CPU backward through a ConvTranspose2d generator in NHWC is
  wrong at batch size 1 (F(G(a)) gradients off by ~0.1 even in float64; resize-conv and batch 2
  are exact), so on CPU the transposed-conv generators stay NCHW. The critics are exact in NHWC.
* **torch.compile** of the generators' passes and, except for wgan-gp (whose penalty needs a
  double backward, which compiled graphs do not support), the critics'. ``auto`` compiles on
  CUDA for long runs only (``LONG_RUN_STEPS`` steps or ``LONG_RUN_MINUTES`` minutes).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, ContextManager

import torch
from torch import nn

from engine import devices
from engine.config import Config

log = logging.getLogger(__name__)

LONG_RUN_STEPS, LONG_RUN_MINUTES = 2000, 10.0

__all__ = ["SpeedOptions"]


class SpeedOptions:
    def __init__(self, cfg: Config, device: torch.device):
        self.device = device
        amp = cfg.output.amp
        native = devices.native_bf16(device)  # looked up on the module, so that tests can stand in for either CPU
        self.amp = device.type in ("cuda", "cpu") and (amp == "on" or amp == "auto" and native)
        if amp == "on" and self.amp and not native:
            log.warning("bf16 is emulated on this %s: autocast will be slower than fp32 (amp=auto avoids that)",
                        device.type)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.channels_last_critics = cfg.output.channels_last
        self.channels_last_generators = cfg.output.channels_last and (device.type == "cuda"
                                                                     or cfg.model.upsample == "resize")
        s = cfg.schedule
        long_run = s.minutes >= LONG_RUN_MINUTES or (s.max_steps or 10**9) >= LONG_RUN_STEPS
        self.compile = cfg.output.compile == "on" or (cfg.output.compile == "auto" and device.type == "cuda"
                                                      and long_run)
        self.compile_critics = self.compile and cfg.objective.gan_mode != "wgan-gp"

    def autocast(self) -> ContextManager:
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
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

    def critic_of(self, critic: nn.Module) -> nn.Module:
        """The module the step's losses call for a critic (compiled where enabled and safe)."""
        return torch.compile(critic) if self.compile_critics else critic
