"""Which devices this machine offers, and turning a device name into a ``torch.device``."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "available_devices"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_devices() -> list[str]:
    """The device names that work here, cpu first."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if _mps_available():
        out.append("mps")
    return out


def resolve_device(name: str = "auto") -> torch.device:
    """auto → cuda, then mps, then cpu. A named device that is not there is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; valid choices: auto, cpu, cuda, mps")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use cpu or auto")
    if name == "mps" and not _mps_available():
        raise ValueError("device 'mps' was requested but MPS is not available; use cpu or auto")
    return torch.device(name)
