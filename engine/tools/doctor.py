"""``python -m engine doctor``: what this machine offers the engine, checked by running it.

Versions (torch, CUDA, cuDNN), the device, whether bf16 is native and TF32 available, whether
``torch.compile`` works here, a 20-step training run of each generator family and a translation round
trip on the device with their speed, and the peak memory of one training step at the ``paper`` preset. Each check
reports ok / not ok with its figure; a failing check is reported, never raised. The app's
Help → System check shows the same report.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from engine import __version__, devices
from engine.config import preset
from engine.data import open_domains
from engine.devices import resolve_device
from engine.io.translate import TranslationModel
from engine.models.networks import build_generator
from engine.training.family_choice import FAMILIES
from engine.training.trainer import Trainer

__all__ = ["Check", "run_doctor", "format_report", "add_cli"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    value: str
    detail: str = ""


def _check(name: str, fn: Callable[[], tuple[bool, str, str]]) -> Check:
    try:
        ok, value, detail = fn()
        ok = bool(ok)
    except Exception as e:  # a check that breaks is a failed check, with its reason
        return Check(name, False, f"failed: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}",
                     traceback.format_exc(limit=3))
    return Check(name, ok, value, detail)


def _folders(root: Path, size: int, n: int = 6) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    out = []
    for name in ("A", "B"):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.png")
        out.append(d)
    return out[0], out[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource  # noqa: PLC0415 - POSIX only; imported where the CPU figure is taken

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_doctor(device: str = "auto", *, paper_step: bool = True) -> list[Check]:
    dev = resolve_device(device)
    checks = [Check("engine", True, f"CycleGAN Studio {__version__}, Python {platform.python_version()}, "
                                    f"{platform.system()} {platform.machine()}"),
              Check("torch", True, f"{torch.__version__}; CUDA {torch.version.cuda or 'none'}; "
                                   f"cuDNN {torch.backends.cudnn.version() if torch.cuda.is_available() else 'none'}")]

    def device_info():
        if dev.type == "cuda":
            p = torch.cuda.get_device_properties(dev)
            return True, f"{p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}", ""
        return True, f"{dev.type}: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, " \
                     f"{torch.backends.cpu.get_cpu_capability()}", ""

    checks.append(_check("device", device_info))
    checks.append(_check("bf16", lambda: (True, "native: amp=auto computes in bf16" if devices.native_bf16(dev) else
                                          "not native: amp=auto stays in fp32 (bf16 would be emulated, slower)", "")))
    if dev.type == "cuda":
        checks.append(_check("tf32", lambda: (True, "available" if torch.cuda.get_device_capability(dev)[0] >= 8
                                              else "not available (compute capability < 8)", "")))

    def compiles():
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).to(dev)
        x = torch.randn(1, 3, 32, 32, device=dev)
        t = time.perf_counter()
        y = torch.compile(net)(x)
        _sync(dev)
        ok = torch.allclose(y, net(x), atol=1e-4)
        return ok, (f"works ({time.perf_counter() - t:.1f} s to compile a small net)" if ok
                    else "gives other results"), ""

    checks.append(_check("torch.compile", compiles))
    with tempfile.TemporaryDirectory(prefix="cyclegan-doctor-") as tmp:
        a, b = _folders(Path(tmp), 72)

        def training():
            # Every family auto may keep, under the amp the user's runs get: a kernel that fails or is slow for one
            # family on this machine (the local family's wide blurs hung under native bf16 once) shows here.
            rates, failed, precision = [], [], "fp32"
            for family in FAMILIES:
                cfg = preset("cpu-quick").with_values(netG=family, max_steps=20, log_every=20, eval_every=10**6,
                                                      preview_every=10**6, save_every=10**6, val_fraction=0.0,
                                                      val_min=0, device=dev.type)
                t = Trainer(cfg, *open_domains(a, b, cfg), device=dev)
                start = time.perf_counter()
                reports = list(t.run())
                _sync(dev)
                seconds = time.perf_counter() - start
                if reports[-1].reason != "completed" or t.step != 20:
                    failed.append(f"{family} ({getattr(reports[-1], 'message', '') or reports[-1].reason})")
                rates.append(f"{family} {20 / seconds:.2f} it/s")
                precision = "bf16" if t.speed.amp else "fp32"
            value = f"20 cpu-quick steps of each family ({precision}): {', '.join(rates)}"
            return not failed, value + (f"; did not finish: {', '.join(failed)}" if failed else ""), ""

        checks.append(_check("training", training))

        def round_trip():
            cfg = preset("cpu-quick").with_values(netG="resnet")
            net = build_generator(cfg).to(dev)
            model = TranslationModel(net, None, cfg, "doctor")
            img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (512, 512, 3), dtype=np.uint8))
            start = time.perf_counter()
            out = model.translate(img, "AtoB")
            seconds = time.perf_counter() - start
            on_cpu = TranslationModel(build_generator(cfg), None, cfg, "cpu")
            on_cpu.G.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
            diff = np.abs(np.asarray(out, int) - np.asarray(on_cpu.translate(img, "AtoB"), int)).max()
            return diff <= 2, (f"512×512 in {seconds * 1000:.0f} ms; "
                               f"largest difference from the CPU {diff} grey levels"), ""

        checks.append(_check("translate", round_trip))

    if paper_step:
        def paper_memory():
            cfg = preset("paper").with_values(netG="resnet", max_steps=1, device=dev.type, val_fraction=0.0, val_min=0)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with tempfile.TemporaryDirectory(prefix="cyclegan-doctor-") as tmp2:
                a2, b2 = _folders(Path(tmp2), 286, n=2)
                t = Trainer(cfg, *open_domains(a2, b2, cfg), device=dev)
                x, y = t.batches.batch(0)
                start = time.perf_counter()
                t.train_step(x, y)
                _sync(dev)
                seconds = time.perf_counter() - start
            return True, f"one 256-px paper step: {seconds:.1f} s, peak memory {_peak_memory_mb(dev):.0f} MB", ""

        checks.append(_check("paper preset", paper_memory))
    return checks


def format_report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'ok ' if c.ok else 'NO '} {c.name:<{width}}  {c.value}" for c in checks)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check this machine: versions, device, bf16, compile, a short run")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument("--quick", action="store_true", help="skip the paper-preset memory check (slow on a CPU)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    checks = run_doctor(args.device, paper_step=not args.quick)
    if args.json:
        print(json.dumps({"checks": [asdict(c) for c in checks], "ok": all(c.ok for c in checks)}))
    else:
        print(format_report(checks))
    sys.stdout.flush()
    return 0 if all(c.ok for c in checks) else 1
