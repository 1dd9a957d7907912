"""The CLI's commands for files: ``demo-data``, ``export`` and ``import-reference``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from engine.data.demo import SUBFOLDERS, make_demo_dataset
from engine.errors import MissingExtraError
from engine.io.export import EXPORT_FORMATS, describe_arch, export_generator, format_for, import_reference, require_onnx
from engine.io.translate import TranslationModel
from engine.models.networks import generator_arch_from_state_dict
from engine.tools.cli_support import add_checkpoint_arg, positive_int

__all__ = ["add_cli"]


def cmd_demo_data(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    counts = make_demo_dataset(args.dir, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed)
    total = sum(f.stat().st_size for s in SUBFOLDERS for f in (Path(args.dir) / s).glob("*.png"))
    amount = f"{total / 1e6:.1f} MB" if total >= 1e5 else f"{total / 1e3:.0f} kB"
    print(f"demo data in {os.path.abspath(args.dir)}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f" ({args.size} px, {amount}, {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_import_reference(args: argparse.Namespace) -> int:
    path, model = import_reference(args.file, args.out, args.other)
    arch = generator_arch_from_state_dict(model.G.state_dict())
    print(f"wrote {path}: {model.describe_directions()}, {describe_arch(arch)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = format_for(out, args.format)
    try:
        if fmt == "onnx":
            require_onnx()  # before loading a large model
        model = TranslationModel.load(args.model, checkpoint=args.checkpoint)
        path = export_generator(model, args.direction, fmt, out)
    except MissingExtraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path}: {args.direction} generator as {fmt} ({size_mb:.1f} MB)")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("demo-data", help="write the built-in summer → winter demo dataset into DIR")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--n-train", type=positive_int, default=150, help="training images per domain (default 150)")
    p.add_argument("--n-test", type=positive_int, default=24, help="test images per domain (default 24)")
    p.add_argument("--size", type=positive_int, default=128, help="image size in pixels (default 128)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_demo_data)

    p = subparsers.add_parser(
        "import-reference", help="convert the reference implementation's latest_net_G*.pth into a model file")
    p.add_argument("file", metavar="FILE.pth", help="a generator state_dict; it becomes the A→B direction")
    p.add_argument("--other", metavar="FILE_B.pth", help="the B→A generator (e.g. latest_net_G_B.pth)")
    p.add_argument("--out", required=True, metavar="MODEL.safetensors")
    p.set_defaults(func=cmd_import_reference)

    p = subparsers.add_parser("export", help="write one generator as safetensors, ONNX or TorchScript")
    p.add_argument("model", metavar="MODEL", help="a run folder, checkpoint, .safetensors model or reference .pth")
    p.add_argument("--format", choices=EXPORT_FORMATS, help="default: from the --out suffix (.safetensors, .onnx, .pt)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB")
    p.add_argument("--out", required=True, metavar="FILE")
    add_checkpoint_arg(p)
    p.set_defaults(func=cmd_export)
