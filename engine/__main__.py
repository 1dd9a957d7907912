"""The command line: ``python -m engine <command> ...``.

Every bad argument or input gets one line on stderr (``error: ...``) and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
from pathlib import Path

from engine.errors import EngineError
from engine.io.checkpoint_files import config_from_checkpoint, load_checkpoint
from engine.io.run_folder import RunFolder
from engine.io.tiling import DEFAULT_MEMORY
from engine.io.translate import TranslationModel, translate_files
from engine.metrics import GroundTruth, demo_ground_truth
from engine.tools import bench, commands, doctor, quality
from engine.tools import distances as distances_cli
from engine.tools.cli_support import Parser as _Parser
from engine.tools.cli_support import (
    RunProgress,
    UsageError,
    add_checkpoint_arg,
    add_config_args,
    byte_size,
    eval_line,
    load_config,
    tile_progress,
)
from engine.tools.cli_support import nonneg_float as _nonneg_float
from engine.tools.cli_support import positive_float as _positive_float
from engine.tools.cli_support import positive_int as _positive_int
from engine.training.distributed import DistInfo, init_from_env, shutdown
from engine.training.reports import (
    CheckpointReport,
    EvalReport,
    FamilyChoiceReport,
    FamilyTrialReport,
    FinishedReport,
    ProgressReport,
    WarningReport,
)
from engine.training.search import TRIAL_ORDER, describe_choice, open_trainer
from engine.training.trainer import Trainer

log = logging.getLogger("engine")


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --- train / resume --------------------------------------------------------------------------
def _drive(trainer, stop_at=None, quiet: bool = False) -> int:
    """Run a trainer to the end, printing progress. Ctrl-C stops cleanly with a checkpoint."""
    out = RunProgress(quiet)
    gen = trainer.run(stop_at=stop_at)
    rc = 0
    previous: dict[str, float] | None = None  # the evaluation before: is the monitor's reading still falling?
    try:
        for rep in gen:
            if isinstance(rep, FamilyTrialReport):
                out.update(rep.progress, f"trying the {rep.family} generator ({rep.index + 1} of {rep.count}) "
                                         f"{100 * rep.trial_progress:3.0f}%  step {rep.step}  "
                                         f"{rep.its_per_s:.2f} it/s  run {100 * rep.progress:.0f}%  "
                                         f"ETA {_fmt_time(rep.eta_s)}")
            elif isinstance(rep, FamilyChoiceReport):
                out.write(describe_choice(rep))
            elif isinstance(rep, ProgressReport) and not rep.replay:
                m = rep.metrics
                losses = "  ".join(f"{k} {m[k]:.3f}" for k in ("G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B")
                                   if k in m)
                if "w_A" in m:
                    losses += f"  w_A {m['w_A']:.3f}  w_B {m['w_B']:.3f}"
                total = f"/{rep.total_steps}" if rep.total_steps else ""
                # One "step N/M" line per report off a terminal: scripts and tests/test_crash_safety.py read it.
                out.update(rep.progress, f"step {rep.step}{total} ({100 * rep.progress:.0f}%)  epoch {rep.epoch}  "
                                         f"{rep.its_per_s:.2f} it/s  ETA {_fmt_time(rep.eta_s)}  {losses}")
            elif isinstance(rep, WarningReport):
                out.write(f"{rep.severity}: {rep.message}" + (f" ({rep.hint})" if rep.hint else ""), file=sys.stderr)
                if rep.severity == "error":
                    trainer.stop()  # nobody at a CLI can press resume: stop with what is saved
                    rc = 1
            elif isinstance(rep, EvalReport):
                line = eval_line(rep.step, dict(rep.metrics), previous)
                previous = dict(rep.metrics)
                if line and not quiet:
                    out.write(line)
            elif isinstance(rep, CheckpointReport) and not quiet and not out.tty:
                print(f"checkpoint: {rep.path}", flush=True)
            elif isinstance(rep, FinishedReport):
                out.close()
                where = f"; checkpoint {rep.checkpoint}" if rep.checkpoint else ""
                print(f"{rep.reason} at step {rep.step}{': ' + rep.message if rep.message else ''}{where}", flush=True)
                if rep.reason == "error":
                    rc = 1
    except KeyboardInterrupt:
        out.close()
        trainer.stop()
        for rep in gen:  # drain: the trainer saves a checkpoint on the way out
            if isinstance(rep, FinishedReport):
                print(f"\nstopped at step {rep.step}; checkpoint {rep.checkpoint}", flush=True)
        rc = 130
    finally:
        out.close()
    return rc


def _writer_lock(run_dir: Path, info: DistInfo):
    """The run folder's lock, taken before the slow data scan so that a second writer hears at once;
    only rank 0 writes (the trainer takes the same lock again, re-entrantly)."""
    return RunFolder(run_dir).lock() if info.is_main else contextlib.nullcontext()


def cmd_train(args) -> int:
    cfg = load_config(args)
    out = Path(args.out)
    if RunFolder(out).has_checkpoint():
        raise UsageError(f"{out} already holds a run; use 'python -m engine resume {out}' or choose another --out")
    info = init_from_env(cfg.output.device)  # torchrun: join the process group; otherwise one process
    try:
        with _writer_lock(out, info):
            return _train(args, cfg, out, info)
    finally:
        shutdown()


def _train(args, cfg, out: Path, info: DistInfo) -> int:
    gt = demo_ground_truth(args.dir_a, cfg.data.crop_size) if info.is_main else None
    trainer = open_trainer(cfg, args.dir_a, args.dir_b, run_dir=out, dist_info=info, ground_truth=gt)
    if info.is_main:
        for ds in (trainer.train_a, trainer.train_b):
            for s in ds.skipped:
                print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
            for w in ds.warnings:
                print(f"warning: {w}", file=sys.stderr)
        ranks = f" × {info.world_size} processes ({info.backend})" if info.enabled else ""
        length = f"{cfg.schedule.minutes:g} minutes" if cfg.schedule.minutes else f"{trainer.total_steps} steps"
        print(f"training on {trainer.device}{ranks}: {len(trainer.train_a)}+{len(trainer.val_a)} A, "
              f"{len(trainer.train_b)}+{len(trainer.val_b)} B images (train+held-out"
              f"{', per process' if info.enabled else ''}), {length} → {out}", flush=True)
        if cfg.model.netG == "auto":
            print(f"generator family auto: trying {', '.join(TRIAL_ORDER)} for {100 * cfg.schedule.search_share:g} % "
                  "of the budget each (the colour map two shares before the resnet, then, unless the resnet is already "
                  "ahead, a third beside the local generator), then training the one "
                  "whose translations come closest to the target", flush=True)
    return _drive(trainer, quiet=args.quiet or not info.is_main)


def cmd_resume(args) -> int:
    run_dir = Path(args.run_dir)
    ck = load_checkpoint(run_dir)
    cfg = config_from_checkpoint(ck, str(run_dir))
    step = int(ck.get("step", 0))
    total_hint = cfg.schedule.max_steps
    max_steps = None
    if args.steps is not None and total_hint and step + args.steps > total_hint:
        max_steps = step + args.steps  # extend a step-limited run
    paths = (args.data_a, args.data_b) if args.data_a and args.data_b else None
    info = init_from_env(args.device or cfg.output.device)
    try:
        with _writer_lock(run_dir, info):
            trainer = Trainer.resume_run(run_dir, device=args.device, max_steps=max_steps, data_paths=paths,
                                         dist_info=info,
                                         ground_truth_for=lambda a, c: demo_ground_truth(a, c.data.crop_size))
            stop_at = trainer.step + args.steps if args.steps is not None else None
            if info.is_main:
                print(f"resuming {run_dir} at step {trainer.step} of {trainer.total_steps} on {trainer.device}"
                      + (f" × {info.world_size} processes" if info.enabled else ""), flush=True)
            return _drive(trainer, stop_at=stop_at, quiet=args.quiet or not info.is_main)
    finally:
        shutdown()


# --- translate / score ------------------------------------------------------------------------
def cmd_translate(args) -> int:
    model = TranslationModel.load(args.model, checkpoint=args.checkpoint)
    scale = model.train_scale(args.direction) or 1.0 if args.scale == "train" else float(args.scale)
    note = model.scale_note(args.direction) if args.scale != "train" else ""
    if note:
        print(f"note: {note}", file=sys.stderr)
    written, skipped = translate_files(model, args.inputs, args.out, args.direction,
                                       on_image=lambda path: tile_progress(path.name, route=lambda: model.last_route),
                                       tile=args.tile, process_memory=args.max_memory, scale=scale)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"translated {len(written)} image(s) {args.direction} into {args.out}")
    return 0 if written or not skipped else 1


def cmd_score(args) -> int:
    demo = Path(args.demo_dir)
    if not (demo / "testA").is_dir() or not (demo / "testA_to_B").is_dir():
        raise UsageError(f"{demo} has no testA/ and testA_to_B/ (make one with 'python -m engine demo-data DIR')")
    model = TranslationModel.load(args.run_dir)
    if model.G is None or model.F is None:
        raise UsageError("score needs a model with both directions")
    size = model.config.data.load_size if model.config else 128
    gt = GroundTruth.from_dirs(demo / "testA", demo / "testA_to_B", size=size, limit=args.limit)
    scores = gt.score(model.G, model.F)
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"images scored:                  {len(gt)} at {size} px")
        print(f"PSNR G(testA) vs testA_to_B:    {scores['psnr_AtoB']:.2f} dB")
        print(f"PSNR testA vs testA_to_B:       {scores['psnr_identity']:.2f} dB  (identity baseline)")
        print(f"PSNR F(G(testA)) vs testA:      {scores['psnr_cycle']:.2f} dB")
        print(f"PSNR F(testA_to_B) vs testA:    {scores['psnr_BtoA']:.2f} dB")
    return 0


# --- parser -----------------------------------------------------------------------------------
# Commands that live in their own modules register themselves through add_cli(subparsers).
_COMMAND_MODULES = (commands, distances_cli, bench, quality, doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="CycleGAN Studio engine: train, translate, score.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train CycleGAN on two folders of images")
    p.add_argument("dir_a", metavar="DIR_A")
    p.add_argument("dir_b", metavar="DIR_B")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    add_config_args(p)
    p.add_argument("--steps", type=_positive_int, help="train N steps (the LR schedule is stretched to fit)")
    p.add_argument("--minutes", type=_positive_float, metavar="M",
                   help="train for M minutes of training time: the whole schedule (LR decay, generator average) "
                        "fitted into them; the run ends decayed, with a checkpoint")
    p.add_argument("--time-limit", type=_nonneg_float, metavar="MIN",
                   help="stop cleanly after MIN minutes, wherever the schedule is")
    p.add_argument("--stop-on-plateau", action="store_true",
                   help="stop, with a checkpoint, when the W monitor reports a plateau (the default only reports it)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--steps", type=_positive_int, help="train N more steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--data", nargs=2, metavar=("DIR_A", "DIR_B"), help="data folders, if they moved")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("translate", help="translate images with a trained model")
    p.add_argument("model", metavar="CHECKPOINT_OR_RUN_DIR")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB")
    add_checkpoint_arg(p)
    p.add_argument("--max-memory", type=byte_size, default=DEFAULT_MEMORY, metavar="SIZE",
                   help="the most memory this command may hold, torch and the model included, e.g. 1500M or 4G "
                        "(default 2G); large images go through the generator in overlapping tiles that fit")
    p.add_argument("--tile", type=_positive_int, metavar="PX",
                   help="tile side in pixels (instead of from --max-memory)")
    p.add_argument("--scale", default="1", metavar="FACTOR|train",
                   help="shrink each image by FACTOR before translating (the result has the input's size); 'train': "
                        "the scale the model learned at")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("score", help="PSNR of a run's translations against the demo data's ground truth")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("demo_dir", metavar="DEMO_DIR")
    p.add_argument("--limit", type=_positive_int, default=64, help="score at most N test images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)

    for mod in _COMMAND_MODULES:
        mod.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "data", None):
            args.data_a, args.data_b = args.data
        else:
            args.data_a = args.data_b = None
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return int(args.func(args) or 0)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except (UsageError, EngineError, ValueError, FileNotFoundError, PermissionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
