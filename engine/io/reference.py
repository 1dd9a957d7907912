"""The reference implementation's published generators, read safely.

The reference PyTorch CycleGAN publishes each generator as a plain ``state_dict`` written
with ``torch.save`` (``latest_net_G.pth``, or ``latest_net_G_A.pth`` / ``latest_net_G_B.pth``).
``engine.models.networks.ResnetGenerator`` has that layout index for index, so reading one is:
load the file weights-only, read the architecture off its keys and shapes, ``load_state_dict``.
A file whose pickle would build objects or run code is refused before anything runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from engine.config import Config, preset, with_recipe
from engine.errors import CheckpointError, ConfigError
from engine.io.checkpoint_files import torch_load_weights_only
from engine.models.networks import generator_arch_from_state_dict, generator_from_state_dict

log = logging.getLogger(__name__)

__all__ = ["read_reference_state_dict", "load_reference_generators"]

# Keys a training script may wrap a state_dict under, most specific first.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "netG", "G", "generator", "model", "params")


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                          for k, v in obj.items())


def _unwrap_state_dict(obj: Any, what: str) -> dict[str, torch.Tensor]:
    """A plain state_dict, or one wrapped one level deep ({"state_dict": …} and the like)."""
    if _is_tensor_dict(obj):
        sd = dict(obj)
    elif isinstance(obj, Mapping):
        inner = [obj[k] for k in _WRAPPER_KEYS if k in obj and _is_tensor_dict(obj[k])]
        if not inner:
            # Any one nested dict of tensors will do, as long as there is exactly one.
            inner = [v for v in obj.values() if _is_tensor_dict(v)]
            if len(inner) != 1:
                raise CheckpointError(f"{what} holds no generator state_dict (top-level keys: "
                                      f"{', '.join(map(str, list(obj)[:8]))})")
        sd = dict(inner[0])
    else:
        raise CheckpointError(f"{what} holds a {type(obj).__name__}, not a generator state_dict")
    # Saved from a DataParallel wrapper without unwrapping it first.
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def read_reference_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a reference ``.pth`` weights-only: tensors and plain containers only, never code."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    obj = torch_load_weights_only(p, kind="PyTorch file")
    return _unwrap_state_dict(obj, str(p))


def _explain_non_generator(sd: Mapping[str, torch.Tensor], what: str) -> None:
    """Name the common wrong file (a discriminator) before the generic 'not a generator' message."""
    first = sd.get("model.0.weight")
    if "model.1.weight" not in sd and first is not None and first.ndim == 4 and tuple(first.shape[2:]) == (4, 4):
        raise CheckpointError(f"{what} looks like a PatchGAN discriminator (latest_net_D*.pth); "
                              "import the generator files (latest_net_G*.pth) instead")


def _reference_generator(path: str | os.PathLike) -> tuple[nn.Module, dict[str, int | str]]:
    sd = read_reference_state_dict(path)
    _explain_non_generator(sd, str(path))
    net = generator_from_state_dict(sd, str(path))  # drops stray InstanceNorm running stats, names mismatches
    arch = generator_arch_from_state_dict(net.state_dict())
    return net, arch


def _config_for(arch: Mapping[str, int | str]) -> Config | None:
    """The paper's recipe with the file's architecture, so a saved model describes itself."""
    if arch["input_nc"] != 3 or arch["output_nc"] != 3:
        return None  # the config tree assumes RGB in and out
    try:
        return with_recipe(preset("paper"), "paper").with_values(
            ngf=arch["ngf"], n_blocks=arch["n_blocks"], upsample=arch["upsample"], input_skip=arch["input_skip"])
    except ConfigError as e:
        log.warning("imported generator does not fit a config (%s); saving it without one", e)
        return None


def load_reference_generators(path: str | os.PathLike, other: str | os.PathLike | None = None
                              ) -> tuple[nn.Module, nn.Module | None, Config | None, str]:
    """Reference generator file(s) → (G, F, config, source): ``path`` becomes A→B (G), ``other`` (if given) B→A (F)."""
    G, arch = _reference_generator(path)
    F, arch_f = _reference_generator(other) if other is not None else (None, arch)
    cfg = _config_for(arch) if arch_f == arch else None
    if arch_f != arch:
        log.warning("the two generators differ in architecture (%s vs %s); the model is saved without a config",
                    arch, arch_f)
    source = str(path) if other is None else f"{path} + {other}"
    return G, F, cfg, source
