"""A checkpoint whose pickle would create a file when unpickled: the classic malicious download."""

import builtins
from pathlib import Path

import torch


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def make_evil_checkpoint(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "cyclegan-studio", "format_version": 1, "config": "{}", "step": 1,
                "models": {"G": Evil(str(marker))}}, path)
    return path
