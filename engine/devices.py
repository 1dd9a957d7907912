"""Which devices this machine offers, what they compute natively, and turning a device name into a ``torch.device``."""

from __future__ import annotations

import os
import platform
import subprocess

import torch

__all__ = ["resolve_device", "available_devices", "native_bf16", "memory_in_use"]


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


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _macos_arm_bf16() -> bool:
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return False
    try:
        out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "1"


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bf16 natively, not by emulation: CUDA with bf16 support; a CPU with
    AVX512-BF16 or AMX-BF16 (x86, from /proc/cpuinfo) or FEAT_BF16 (Apple silicon). Elsewhere oneDNN would
    convert to fp32 and back around every op, which is slower than fp32 itself."""
    d = torch.device(device)
    if d.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if d.type == "cpu":
        flags = _cpu_flags()
        return bool({"avx512_bf16", "amx_bf16"} & flags) or _macos_arm_bf16()
    return False


def memory_in_use(device: torch.device | str = "cpu") -> int:
    """Bytes this process holds now: on CUDA the tensors torch has allocated on the device; on the CPU the
    resident set (Linux: /proc/self/statm; elsewhere the peak so far, which is never less)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource  # noqa: PLC0415 - POSIX only: Windows has no resource module, and there nothing is counted
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform.system() == "Darwin" else peak * 1024)  # macOS counts bytes, Linux KiB
