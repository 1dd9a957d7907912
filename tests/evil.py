"""Files whose pickle would create a file when unpickled: the classic malicious download."""

import builtins
from pathlib import Path

import torch


class Evil:
    """Unpickling this opens ``path`` for writing, creating it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def make_evil_checkpoint(path: Path, marker: Path) -> Path:
    """A CycleGAN Studio checkpoint, format marker and all, with an object where a generator's weights belong."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "cyclegan-studio", "format_version": 1, "config": "{}", "step": 1,
                "models": {"G": Evil(str(marker))}}, path)
    return path


def make_evil_reference(path: Path, marker: Path) -> Path:
    """A reference-layout state dict (``latest_net_G.pth``) with an object in place of one weight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model.1.weight": Evil(str(marker)), "model.1.bias": torch.zeros(8)}, path)
    return path
