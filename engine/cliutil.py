"""Pieces every CLI command shares: one-line usage errors and the config arguments."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from engine.config import PRESETS, RECIPES, Config, preset, with_recipe

__all__ = ["UsageError", "Parser", "load_config", "add_config_args", "positive_int", "nonneg_float", "positive_float",
           "add_checkpoint_arg", "byte_size"]


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
                        "generator families on your folders and keeps the one whose translations come closest to the target), "
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
                   help="for a run folder: its latest checkpoint (default), the best one by the W monitor, or a step's")


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
