"""``python -m engine bench``: how fast a full training step runs, against the hardware's own limit.

The peak is measured in the same run on the same device: a large fp32 matmul (and a bf16
one on CUDA when autocast is on). Achieved GFLOP/s is FLOPs per step, counted by
``torch.utils.flop_counter.FlopCounterMode``, times steps per second. Convolutions and
matmuls are counted (forward, backward and the gradient penalty's double backward); the
elementwise work (norms, activations, padding, the optimiser) is not, so the ratio is a
fair "how close to the matmul roofline" figure, not an overcount.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from engine.cliutil import UsageError, add_config_args, load_config, positive_int
from engine.config import Config
from engine.data import open_domains
from engine.devices import resolve_device
from engine.models.networks import build_generator, translate_tensor
from engine.training.trainer import Trainer

__all__ = ["BenchResult", "measure_peak_gflops", "count_step_flops", "bench_training", "bench_translate"]


@dataclass(frozen=True)
class BenchResult:
    preset: str
    device: str
    threads: int
    batch_size: int
    crop_size: int
    steps: int
    its_per_s: float
    images_per_s: float
    gflop_per_step: float
    gflops: float
    peak_gflops: float
    peak_dtype: str
    peak_ratio: float
    data_wait_fraction: float | None
    peak_memory_mb: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                        repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an n×n by n×n matmul (2n³ FLOPs)."""
    if n is None:
        n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    _sync(device)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def count_step_flops(trainer, real_a: torch.Tensor, real_b: torch.Tensor) -> float:
    """FLOPs of one full training step (this runs one step)."""
    with FlopCounterMode(display=False) as fc:
        trainer.train_step(real_a, real_b)
    return float(fc.get_total_flops())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _synthetic_folders(root: Path, cfg: Config, n: int = 8) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    dirs = []
    for name in ("A", "B"):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = rng.integers(0, 256, size=(cfg.data.load_size, cfg.data.load_size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")
        dirs.append(d)
    return dirs[0], dirs[1]


def bench_training(cfg: Config, *, steps: int = 20, warmup: int = 3, data: tuple[str, str] | None = None,
                   preset_name: str = "custom") -> BenchResult:
    """Time full training steps after warm-up; on real folders when ``data`` is given."""
    cfg = cfg.with_values(val_fraction=0.0, val_min=0)
    with tempfile.TemporaryDirectory(prefix="cyclegan-bench-") as tmp:
        if data is None:
            dir_a, dir_b = _synthetic_folders(Path(tmp), cfg)
        else:
            dir_a, dir_b = data
        ds_a, ds_b = open_domains(dir_a, dir_b, cfg)
        cfg_run = cfg.with_values(max_steps=max(cfg.schedule.max_steps, warmup + steps + 2), log_every=100_000,
                                  preview_every=10**6, eval_every=10**6, save_every=10**6)
        trainer = Trainer(cfg_run, ds_a, ds_b, run_dir=None)
        dev = trainer.device
        bs, c = cfg.data.batch_size, cfg.data.crop_size
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        wait_fraction = None
        if data is None:
            g = torch.Generator().manual_seed(0)
            real_a = (torch.rand(bs, 3, c, c, generator=g) * 2 - 1).to(dev)
            real_b = (torch.rand(bs, 3, c, c, generator=g) * 2 - 1).to(dev)
            flops = count_step_flops(trainer, real_a, real_b)
            for _ in range(warmup):
                trainer.train_step(real_a, real_b)
            _sync(dev)
            t = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(real_a, real_b)
            _sync(dev)
            elapsed = time.perf_counter() - t
        else:
            real_a, real_b = trainer.batches.batch(0)
            flops = count_step_flops(trainer, real_a, real_b)
            for _ in trainer.run(stop_at=warmup):
                pass
            trainer.data_wait_s = 0.0
            t = time.perf_counter()
            for _ in trainer.run(stop_at=warmup + steps):
                pass
            _sync(dev)
            elapsed = time.perf_counter() - t
            wait_fraction = trainer.data_wait_s / elapsed
        its = steps / elapsed
        use_bf16 = dev.type == "cuda" and cfg.output.amp
        peak = measure_peak_gflops(dev, torch.bfloat16 if use_bf16 else torch.float32)
        mem = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else _peak_rss_mb()
        gflop = flops / 1e9
        return BenchResult(preset_name, str(dev), torch.get_num_threads(), bs, c, steps, its, its * bs, gflop,
                           gflop * its, peak, "bf16" if use_bf16 else "fp32", gflop * its / peak, wait_fraction, mem)


def bench_translate(cfg: Config, size: int = 512, repeats: int = 3) -> dict[str, float]:
    """Time one generator pass on a size×size image against its FLOP-limited time (FLOPs ÷ peak)."""
    dev = resolve_device(cfg.output.device)
    net = build_generator(cfg).to(dev).eval()
    x = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    with FlopCounterMode(display=False) as fc:
        translate_tensor(net, x)
    flops = float(fc.get_total_flops())
    translate_tensor(net, x)
    _sync(dev)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        translate_tensor(net, x)
        _sync(dev)
        best = min(best, time.perf_counter() - t)
    peak = measure_peak_gflops(dev)
    bound = flops / 1e9 / peak
    return {"size": size, "seconds": best, "gflop": flops / 1e9, "flop_limited_seconds": bound,
            "ratio_to_flop_limited": best / bound, "peak_gflops": peak}


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time full training steps against the measured matmul peak")
    add_config_args(p)
    p.add_argument("--steps", type=positive_int, default=20, help="timed steps after warm-up (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--data", nargs=2, metavar=("DIR_A", "DIR_B"), help="benchmark the whole pipeline on real folders")
    p.add_argument("--translate", type=positive_int, metavar="SIZE",
                   help="instead, time translating one SIZE×SIZE image")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    steps = args.steps
    args.steps = None  # --steps here counts timed steps; it is not the config's max_steps
    cfg = load_config(args)
    if args.translate:
        r = bench_translate(cfg, args.translate)
        if args.json:
            print(json.dumps(r))
        else:
            print(f"translate {r['size']}×{r['size']}: {r['seconds'] * 1000:.0f} ms, {r['gflop']:.1f} GFLOP, "
                  f"FLOP-limited {r['flop_limited_seconds'] * 1000:.0f} ms at {r['peak_gflops']:.0f} GFLOP/s "
                  f"→ {r['ratio_to_flop_limited']:.2f}× the limit")
        return 0
    if args.warmup < 0:
        raise UsageError("--warmup must be non-negative")
    res = bench_training(cfg, steps=steps, warmup=args.warmup, data=tuple(args.data) if args.data else None,
                         preset_name=args.preset)
    if args.json:
        keys = ("its_per_s", "images_per_s", "gflop_per_step", "gflops", "peak_gflops", "peak_ratio",
                "data_wait_fraction", "peak_memory_mb")
        d = asdict(res)
        print(json.dumps({**{k: d[k] for k in keys}, **{k: v for k, v in d.items() if k not in keys}}))
    else:
        print(f"preset {res.preset} on {res.device} ({res.threads} threads), batch {res.batch_size}, "
              f"crop {res.crop_size}, {res.steps} steps")
        print(f"  {res.its_per_s:.2f} it/s, {res.images_per_s:.2f} images/s")
        print(f"  {res.gflop_per_step:.2f} GFLOP/step → {res.gflops:.1f} GFLOP/s achieved")
        print(f"  peak ({res.peak_dtype} matmul) {res.peak_gflops:.1f} GFLOP/s → {100 * res.peak_ratio:.0f}% of peak")
        if res.data_wait_fraction is not None:
            print(f"  waiting for data: {100 * res.data_wait_fraction:.1f}% of step time")
        print(f"  peak memory {res.peak_memory_mb:.0f} MB")
    sys.stdout.flush()
    return 0
