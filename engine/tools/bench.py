"""``python -m engine bench``: how fast a full training step runs, against the hardware's own limit.

The peak is measured in the same run on the same device: a large fp32 matmul (and a bf16
one on CUDA when autocast is on). Achieved GFLOP/s is FLOPs per step, counted by
``torch.utils.flop_counter.FlopCounterMode``, times steps per second. Convolutions and
matmuls are counted (forward, backward and the gradient penalty's double backward); the
elementwise work (norms, activations, padding, the optimiser) is not, so the ratio is a
fair "how close to the matmul roofline" figure, not an overcount.
"""

from __future__ import annotations

import argparse
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

from engine.config import Config
from engine.data import open_domains
from engine.devices import resolve_device
from engine.io.tiling import DEFAULT_MEMORY
from engine.io.translate import TranslationModel, memory_left
from engine.models.networks import build_generator, translate_tensor
from engine.tools.cli_support import UsageError, add_config_args, byte_size, load_config, positive_int
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
    precision: str = "fp32"            # what the step computes in (bf16 autocast or fp32)
    compiled: bool = False
    compile_s: float | None = None     # extra time of the first steps, when compiled
    peak_fp32_gflops: float = 0.0      # both peaks, measured in the same run
    peak_bf16_gflops: float = 0.0
    eval_s: float | None = None        # one held-out evaluation (with the W monitor), after the first
    eval_share: float | None = None    # its share of training time at the config's eval_every
    label: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                        repeats: int = 5, min_s: float = 0.05) -> float:
    """Best-of-``repeats`` GFLOP/s of an n×n by n×n matmul (2n³ FLOPs).

    Without ``n``, the size doubles from 256 until one product takes ``min_s`` (long enough to time), up to
    8192 on CUDA and 2048 elsewhere: an emulated bf16 matmul on a CPU without AVX-512 runs at about
    1 GFLOP/s, where one 2048² product would take half a minute."""
    top = n or (8192 if device.type == "cuda" else 2048)
    n = n or 256
    while True:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if n >= top or time.perf_counter() - t >= min_s:
            break
        n *= 2
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


EVAL_FOLDER = 200  # images per domain of the synthetic folders ``--evals`` holds out from: the task suite's size


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


def measure_peaks(device: torch.device) -> dict[str, float]:
    """The fp32 and the bf16 matmul peaks of ``device`` (bf16 as the device computes it: emulated or not)."""
    return {"fp32": measure_peak_gflops(device, torch.float32), "bf16": measure_peak_gflops(device, torch.bfloat16)}


def bench_training(cfg: Config, *, steps: int = 20, warmup: int = 3, data: tuple[str, str] | None = None,
                   preset_name: str = "custom", peaks: dict[str, float] | None = None, evals: int = 0,
                   label: str = "") -> BenchResult:
    """Time full training steps after warm-up; on real folders when ``data`` is given. With ``evals``, also
    time that many held-out evaluations (the W monitor's included) after a first one, with the config's held-out
    split of ``EVAL_FOLDER`` images per domain (or of ``data``)."""
    cfg = one_family(cfg) if evals else one_family(cfg).with_values(val_fraction=0.0, val_min=0)
    with tempfile.TemporaryDirectory(prefix="cyclegan-bench-") as tmp:
        if data is None:
            dir_a, dir_b = _synthetic_folders(Path(tmp), cfg, n=EVAL_FOLDER if evals else 8)
        else:
            dir_a, dir_b = data
        ds_a, ds_b = open_domains(dir_a, dir_b, cfg)
        cfg_run = cfg.with_values(max_steps=max(cfg.schedule.max_steps, warmup + steps + 2), log_every=100_000,
                                  preview_every=10**6, eval_every=10**6, save_every=10**6)
        # FLOPs are those of the uncompiled step: the same arithmetic, and a counter sees every op of it.
        counter = Trainer(cfg_run.with_values(compile="off"), ds_a, ds_b, run_dir=None)
        trainer = Trainer(cfg_run, ds_a, ds_b, run_dir=None)
        dev = trainer.device
        bs, c = cfg.data.batch_size, cfg.data.crop_size
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        wait_fraction = None
        compile_s = None
        if data is None:
            g = torch.Generator().manual_seed(0)
            real_a = (torch.rand(bs, 3, c, c, generator=g) * 2 - 1).to(dev)
            real_b = (torch.rand(bs, 3, c, c, generator=g) * 2 - 1).to(dev)
            flops = count_step_flops(counter, real_a, real_b)
            times = []
            for _ in range(max(warmup, 2)):
                t = time.perf_counter()
                trainer.train_step(real_a, real_b)
                _sync(dev)
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(real_a, real_b)
            _sync(dev)
            elapsed = time.perf_counter() - t
            if trainer.speed.compile:
                compile_s = max(0.0, times[0] - elapsed / steps)
        else:
            real_a, real_b = trainer.batches.batch(0)
            flops = count_step_flops(counter, real_a, real_b)
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
        eval_s = eval_share = None
        if evals:
            trainer.evaluator.evaluate()  # the first measures the monitor's reference levels as well
            t = time.perf_counter()
            for _ in range(evals):
                trainer.evaluator.evaluate()
            eval_s = (time.perf_counter() - t) / evals
            eval_share = eval_s / (eval_s + cfg.schedule.eval_every / its)
        peaks = peaks or measure_peaks(dev)
        precision = "bf16" if trainer.speed.amp else "fp32"
        peak = peaks[precision]
        mem = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else _peak_rss_mb()
        gflop = flops / 1e9
        return BenchResult(preset_name, str(dev), torch.get_num_threads(), bs, c, steps, its, its * bs, gflop,
                           gflop * its, peak, precision, gflop * its / peak, wait_fraction, mem, precision,
                           trainer.speed.compile, compile_s, peaks["fp32"], peaks["bf16"], eval_s, eval_share,
                           label)


def bench_variants(cfg: Config, variants: list[str], **kw) -> list[BenchResult]:
    """One result per variant (comma-separated ``key=value`` overrides of ``cfg``), measured one after another
    in this process against peaks measured once: a side-by-side comparison on the same machine, same minute."""
    dev = resolve_device(cfg.output.device)
    peaks = measure_peaks(dev)
    out = []
    for v in variants:
        overrides = [a for a in v.split(",") if a.strip()] if v not in ("", "base") else []
        out.append(bench_training(cfg.with_overrides(overrides), peaks=peaks, label=v or "base", **kw))
    return out


def bench_translate(cfg: Config, size: tuple[int, int] = (512, 512), repeats: int = 3, max_memory: int = DEFAULT_MEMORY,
                    tile: int | None = None) -> dict[str, float]:
    """Time translating one W×H image as ``translate`` does (tiles when it does not fit ``max_memory``) against
    the whole image's FLOP-limited time (its FLOPs ÷ the fp32 matmul peak), with the process's peak memory."""
    cfg = one_family(cfg)
    dev = resolve_device(cfg.output.device)
    net = build_generator(cfg).to(dev).eval()
    w, h = size
    model = TranslationModel(net, None, cfg, "bench")
    probe = 256
    with FlopCounterMode(display=False) as fc:
        translate_tensor(net, torch.zeros(1, 3, probe, probe, device=dev))
    flops = float(fc.get_total_flops()) * (w * h) / (probe * probe)  # convolutions: FLOPs ∝ pixels
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    tiles = []
    best = math.inf
    left = memory_left(max_memory, net)  # once, as translate_files does: what a repeat frees, the next reuses
    for _ in range(repeats):
        t = time.perf_counter()
        model.translate(img, "AtoB", tile=tile, max_memory=left, progress=lambda d, n: tiles.append(n))
        _sync(dev)
        best = min(best, time.perf_counter() - t)
    peak = measure_peak_gflops(dev)
    bound = flops / 1e9 / peak
    mem = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else _peak_rss_mb()
    return {"width": w, "height": h, "seconds": best, "gflop": flops / 1e9, "flop_limited_seconds": bound,
            "ratio_to_flop_limited": best / bound, "peak_gflops": peak, "tiles": tiles[-1] if tiles else 1,
            "route": model.last_route, "max_memory_mb": max_memory / 2**20, "peak_memory_mb": mem}


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time full training steps against the measured matmul peak")
    add_config_args(p)
    p.add_argument("--steps", type=positive_int, default=20, help="timed steps after warm-up (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--data", nargs=2, metavar=("DIR_A", "DIR_B"), help="benchmark the whole pipeline on real folders")
    p.add_argument("--translate", type=image_size, metavar="SIZE|WxH",
                   help="instead, time translating one image of this size (tiled when it does not fit --max-memory)")
    p.add_argument("--max-memory", type=byte_size, default=DEFAULT_MEMORY, metavar="SIZE",
                   help="with --translate: the most memory the process may hold, as for translate (default 2G)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="with --translate: time this many translations and report the fastest (default 3)")
    p.add_argument("--variants", nargs="+", metavar="K=V[,K=V]",
                   help="measure each variant of the config one after another in this run, e.g. amp=off amp=on "
                        "compile=on ('base': the config itself)")
    p.add_argument("--evals", type=int, default=0, metavar="N",
                   help="also time N held-out evaluations (with the W monitor) and report their share of training time")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_cli)


def image_size(text: str) -> tuple[int, int]:
    try:
        w, _, h = text.lower().partition("x")
        size = (int(w), int(h or w))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE or WxH, e.g. 512 or 6000x4000, got {text!r}") from None
    if min(size) < 8:
        raise argparse.ArgumentTypeError(f"an image is at least 8×8 px, got {text!r}")
    return size


_FIRST_KEYS = ("label", "its_per_s", "images_per_s", "gflop_per_step", "gflops", "precision", "compiled", "compile_s",
               "peak_gflops", "peak_ratio", "peak_fp32_gflops", "peak_bf16_gflops", "data_wait_fraction", "eval_s",
               "eval_share", "peak_memory_mb")


def _ordered(res: BenchResult) -> dict:
    d = asdict(res)
    return {**{k: d[k] for k in _FIRST_KEYS}, **{k: v for k, v in d.items() if k not in _FIRST_KEYS}}


def _describe(res: BenchResult) -> list[str]:
    lines = [f"{res.label or 'base'}: preset {res.preset} on {res.device} ({res.threads} threads), "
             f"batch {res.batch_size}, "
             f"crop {res.crop_size}, {res.steps} steps, {res.precision}{', compiled' if res.compiled else ''}",
             f"  {res.its_per_s:.2f} it/s, {res.images_per_s:.2f} images/s; {res.gflop_per_step:.2f} GFLOP/step → "
             f"{res.gflops:.1f} GFLOP/s = {100 * res.peak_ratio:.0f}% "
             f"of the {res.peak_dtype} peak ({res.peak_gflops:.1f})"]
    if res.compile_s is not None:
        lines.append(f"  compiling took {res.compile_s:.1f} s before the first step")
    if res.data_wait_fraction is not None:
        lines.append(f"  waiting for data: {100 * res.data_wait_fraction:.1f}% of step time")
    if res.eval_s is not None:
        lines.append(f"  one held-out evaluation (W monitor included): {res.eval_s:.2f} s = "
                     f"{100 * res.eval_share:.1f}% "
                     "of training time at the config's eval_every")
    lines.append(f"  peak memory {res.peak_memory_mb:.0f} MB")
    return lines


def one_family(cfg: Config) -> Config:
    """A benchmark times one generator: ``auto`` (a search that keeps one family) is timed as the ResNet, the
    slowest family it may keep. Pin another with ``--set netG=colour`` or ``netG=local``."""
    return cfg.with_values(netG="resnet") if cfg.model.netG == "auto" else cfg


def run_cli(args) -> int:
    steps = args.steps
    args.steps = None  # --steps here counts timed steps; it is not the config's max_steps
    cfg = load_config(args)
    if cfg.model.netG == "auto":
        print("netG=auto: timing the resnet family, the slowest that auto may keep (--set netG=colour|local for "
              "the others)", file=sys.stderr)
        cfg = one_family(cfg)
    if args.translate:
        r = bench_translate(cfg, args.translate, repeats=args.repeats, max_memory=args.max_memory)
        if args.json:
            print(json.dumps(r))
        else:
            print(f"translate {r['width']}×{r['height']} through {r['route']} ({r['tiles']} piece(s)): "
                  f"{r['seconds']:.2f} s, {r['gflop']:.1f} "
                  f"GFLOP, FLOP-limited {r['flop_limited_seconds']:.2f} s at {r['peak_gflops']:.0f} GFLOP/s → "
                  f"{r['ratio_to_flop_limited']:.2f}× the limit; peak memory {r['peak_memory_mb']:.0f} MB")
        return 0
    if args.warmup < 0:
        raise UsageError("--warmup must be non-negative")
    kw = dict(steps=steps, warmup=args.warmup, data=tuple(args.data) if args.data else None, preset_name=args.preset,
              evals=args.evals)
    results = bench_variants(cfg, args.variants, **kw) if args.variants else [bench_training(cfg, **kw)]
    if args.json:
        out = _ordered(results[0]) if not args.variants else {
            "peaks": {"fp32": results[0].peak_fp32_gflops, "bf16": results[0].peak_bf16_gflops},
            "variants": [_ordered(r) for r in results]}
        print(json.dumps(out))
    else:
        for r in results:
            print("\n".join(_describe(r)))
        if len(results) > 1:
            base = results[0]
            for r in results[1:]:
                print(f"{r.label}: {r.its_per_s / base.its_per_s:.2f}× the step rate of {base.label}")
    sys.stdout.flush()
    return 0
