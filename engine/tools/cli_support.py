"""Pieces every CLI command shares: one-line usage errors, the config arguments, and progress output."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable, TextIO

from tqdm import tqdm

from engine.config import PRESETS, RECIPES, Config, preset, with_recipe
from engine.training.metric_keys import best_steps, describe_best
from engine.wasserstein.monitor import WAYS, Reading

__all__ = ["UsageError", "Parser", "load_config", "add_config_args", "positive_int", "nonneg_float", "positive_float",
           "add_checkpoint_arg", "byte_size", "RunProgress", "tile_progress", "eval_line"]


class UsageError(Exception):
    """A bad argument; printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message}")


def load_config(args) -> Config:
    """--preset, then --recipe, then --config FILE.json over it, then --set key=value over that."""
    cfg = preset(getattr(args, "preset", None) or "cpu-quick")
    if getattr(args, "recipe", None):
        cfg = with_recipe(cfg, args.recipe)
    if getattr(args, "config", None):
        p = Path(args.config)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot read config {p}: {e.strerror or e}") from None
        cfg = Config.from_json(text, base=cfg)
    if getattr(args, "set", None):
        cfg = cfg.with_overrides(args.set)
    if getattr(args, "steps", None) is not None:
        cfg = cfg.with_values(max_steps=args.steps)
    if getattr(args, "minutes", None) is not None:
        cfg = cfg.with_values(minutes=args.minutes)
    if getattr(args, "time_limit", None) is not None:
        cfg = cfg.with_values(time_limit=args.time_limit)
    if getattr(args, "stop_on_plateau", False):
        cfg = cfg.with_values(stop_on_plateau=True)
    if getattr(args, "device", None):
        cfg = cfg.with_values(device=args.device)
    return cfg


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    v = nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu-quick", help="starting point (default cpu-quick)")
    p.add_argument("--recipe", choices=sorted(RECIPES),
                   help="training method at the preset's sizes: auto (the default: tries the colour, local and resnet "
                        "generator families on your folders and keeps the one whose translations come closest "
                        "to the target), "
                        "paper (the published method) or studio (the paper's ResNet with resize upsampling and a "
                        "generator average). --config and --set still win")
    p.add_argument("--config", metavar="FILE.json", help="a config file (as written to RUN_DIR/config.json)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override one setting, e.g. --set crop_size=64 (repeatable)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])


def checkpoint_choice(text: str) -> str | int:
    if text in ("best", "latest"):
        return text
    try:
        step = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected best, latest or a step number, got {text!r}") from None
    if step < 0:
        raise argparse.ArgumentTypeError(f"expected best, latest or a step number, got {text!r}")
    return step


def add_checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=checkpoint_choice, default="latest", metavar="best|latest|STEP",
                   help="for a run folder: its latest checkpoint (default), the best one by the held-out monitor "
                        "(each direction's generator at its own best step), or a step's")


def byte_size(text: str) -> int:
    """'512M', '2G', '1.5g', '800000000' → bytes."""
    t = text.strip().upper().rstrip("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 512M or 2G, got {text!r}") from None
    if not math.isfinite(value) or value < 64 << 20:
        raise argparse.ArgumentTypeError(f"expected at least 64M, got {text!r}")
    return int(value)


# --- progress output --------------------------------------------------------------------------
class RunProgress:
    """A run's progress on ``stream`` (stdout). On a terminal: one bar redrawn in place, the report's line
    beside it. Elsewhere (a pipe, a log file): one line per report, which scripts read (``step N/M ...``).
    ``quiet``: no progress at all; ``write`` still prints."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._bar: tqdm | None = None

    def update(self, progress: float, line: str) -> None:
        """Show ``line``; ``progress`` (0 … 1, the share of the run done) fills the bar."""
        if self.quiet:
            return
        if not self.tty:
            print(line, file=self.stream, flush=True)
            return
        if self._bar is None:
            # tqdm: an in-place bar that lines written through tqdm.write (warnings, the family choice) do not
            # tear. The line carries the figures (our it/s and ETA exclude pauses and scoring, tqdm's would not).
            self._bar = tqdm(total=1.0, file=self.stream, bar_format="{bar:20}| {desc}", dynamic_ncols=True)
        self._bar.n = min(max(float(progress), 0.0), 1.0)
        self._bar.set_description_str(line)  # redraws

    def write(self, message: str, file: TextIO | None = None) -> None:
        """A line of its own (above the bar, which is redrawn below it)."""
        if self._bar is not None:
            tqdm.write(message, file=file or self.stream)
        else:
            print(message, file=file or self.stream, flush=True)

    def close(self) -> None:
        """Leave the bar where it is, finished with; later lines go below it."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def tile_progress(name: str, stream: TextIO | None = None, route: Callable[[], str] | None = None
                  ) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback for one image's tiles: a tqdm bar on a terminal, else one line
    (``NAME: N tiles``, or ``NAME: ROUTE``, how ``route()`` says it went) when the image is done."""
    stream = stream or sys.stderr
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not stream.isatty():
            if done == total:
                pieces = f"{total} tile{'s' if total != 1 else ''}"
                how = route() if route is not None else ""
                line = f"{how} ({pieces})" if "tiles" in how else (how or pieces)
                print(f"{name}: {line}", file=stream, flush=True)
            return
        if bar is None:
            bar = tqdm(total=total, desc=name, unit="tile", file=stream, dynamic_ncols=True)  # tqdm: tiles of one image
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress


def eval_line(step: int, metrics: dict[str, float], previous: dict[str, float] | None = None) -> str:
    """One held-out evaluation for the log: the W monitor's standing per direction (``Reading.standing``, the
    rule the app's W plot shows), with ground truth the PSNR, and best.pt's step(s); "" without the first two."""
    parts = []
    for way, source, target in WAYS:
        reading = Reading.from_metrics(metrics, way)
        if reading is not None:
            words = reading.standing(Reading.from_metrics(previous or {}, way))[1]
            doubt = reading.doubt()
            parts.append(f"{source}→{target} {words}" + (f" (not trustworthy: {doubt})" if doubt else ""))
    psnr = [f"{source}→{target} {metrics[f'psnr_{way}']:.2f} dB" for way, source, target in WAYS
            if f"psnr_{way}" in metrics]
    if psnr:
        parts.append("PSNR " + ", ".join(psnr))
    if parts and best_steps(metrics):
        parts.append(f"best.pt: {describe_best(best_steps(metrics))}")
    return f"held-out at step {step}: " + " · ".join(parts) if parts else ""
