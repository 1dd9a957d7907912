"""``python -m engine quality``: how well a recipe learns, judged on a suite of tasks with known answers.

``measure`` trains on one task (``engine.tools.tasks``) for a budget of training minutes or
steps, with the whole schedule fitted into the budget (as ``--minutes`` trains), and scores the
held-out pairs every so often: PSNR(G(x), T(x)), PSNR(F(T(x)), x) and the cycle PSNR, each
held-out image translated whole, at its own size. Scoring time is not training time. It also
says whether G ended stuck at the identity: how far G(x) moved from x, as a share of how far
T(x) is from x.

``run_suite`` does that for every task of a suite (``--suite tuning|check|all``), one after
another, and writes per task ``curve.json``, ``curve.png`` and ``grid.png`` (x | T(x) | G(x) |
F(T(x))), and for the suite ``summary.json`` and ``table.md``: one row per task with the
identity baseline, the PSNR at each minute, the final PSNR, and the stuck flag.
``--compare`` puts saved suites (or single runs) side by side (the tables: ``engine.tools.quality_tables``).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from engine.config import Config
from engine.data import open_domains
from engine.images import to_uint8_image
from engine.io.atomic import atomic_write_text, save_png
from engine.metrics import GroundTruth
from engine.tools.charts import comparison_grid, plot_curves, plot_monitor
from engine.tools.cli_support import UsageError, add_config_args, load_config, nonneg_float, positive_int
from engine.tools.monitor_proof import proof_table, standing_series, standing_table
from engine.tools.quality_tables import compare_runs, compare_suites, suite_table
from engine.tools.tasks import SUITES, Task, TaskData, get_task, suite
from engine.training.metric_keys import BEST_STEP
from engine.training.reports import EvalReport, FamilyTrialReport, FinishedReport, ProgressReport, WarningReport
from engine.training.saving import BestKeeper
from engine.training.search import FamilySearch
from engine.training.trainer import Trainer

log = logging.getLogger(__name__)

__all__ = ["measure", "run_task", "run_suite", "suite_table", "compare_suites", "compare_runs", "add_cli", "run_cli"]

CURVE_KEYS = ("psnr_AtoB", "psnr_BtoA", "psnr_cycle")
STUCK_BELOW = 0.05  # G moved less than 5 % of the way T moves x: it has stayed at the identity

# Settings of a measurement, not of the recipe: a progress report every step (a boundary to score at),
# no trainer-side evaluation, previews or checkpoints, and every training image used for training (the
# held-out pairs come from the task).
_MEASURE_SETTINGS: dict[str, Any] = {
    "time_limit": 0.0, "log_every": 1, "eval_every": 1_000_000, "preview_every": 1_000_000, "save_every": 1_000_000,
    "val_fraction": 0.0, "val_min": 0, "tensorboard": False,
}


# What --monitor keeps of an evaluation: the W monitor's readings, the training critic's estimate (Wasserstein
# objectives) and its gradient norm.
_EVAL_PREFIXES = ("w_mon", "sliced_", "emd_", "structure_", "w_A_val", "w_B_val", "gp_grad_norm")
# --monitor: the held-out split and the monitor as a user's run has them (the config's val_fraction).
_MONITOR_SETTINGS: dict[str, Any] = {"monitor": True}


def _score(trainer: Trainer, gt: GroundTruth, monitor: bool = False) -> dict[str, float]:
    G, F = trainer.state.inference_generators()
    scores = gt.score(G, F, trainer.device)
    point = {"minutes": trainer.elapsed() / 60.0, "step": trainer.step, **{k: scores[k] for k in CURVE_KEYS},
             "moved": scores["moved_AtoB"], "family": getattr(trainer, "active", trainer).cfg.model.netG,
             "searching": isinstance(trainer, FamilySearch) and trainer.choice is None}  # a candidate on trial
    if G is not trainer.state.G:  # EMA on: also the raw weights, to show what the average buys
        raw = gt.score(trainer.state.G, trainer.state.F, trainer.device)
        point.update({f"{k}_raw": raw[k] for k in CURVE_KEYS})
    if monitor:  # what the trainer's evaluation would report now, without ground truth
        point.update({k: v for k, v in trainer.evaluator.evaluate().items() if k.startswith(_EVAL_PREFIXES)})
    return point


def measure(cfg: Config, task_data: TaskData, *, minutes: float | None = None, steps: int | None = None,
            score_every_s: float = 60.0, score_every_steps: int | None = None,
            on_point: Callable[[dict[str, float]], None] | None = None, device: str | None = None,
            monitor: bool = False) -> dict[str, Any]:
    """Train on ``task_data`` for ``minutes`` of training time or ``steps`` steps (the schedule fitted into
    the budget), scoring at the start, every ``score_every_s`` seconds of training time (or every
    ``score_every_steps`` steps) and at the end. Returns the curve (``points``), the identity baseline,
    steps/s over the training time, and the final held-out images for a grid.

    ``monitor``: hold out the config's validation split, as a user's run does, and record at every
    scoring point what the trainer's evaluation reports without ground truth (the W monitor, the
    training critic's estimate): the material of ``engine.tools.monitor_proof``."""
    if (minutes is None) == (steps is None):
        raise ValueError("give exactly one budget: minutes or steps")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    settings = dict(_MEASURE_SETTINGS)
    guarded = cfg.schedule.restore_on_drift and (cfg.model.netG == "auto" or cfg.is_per_pixel)
    if monitor or guarded:  # keep the config's held-out split (the family search compares on it)
        settings.update(val_fraction=cfg.get("val_fraction"), val_min=cfg.get("val_min"), **_MONITOR_SETTINGS)
    if guarded:  # the trainer's own evaluations, at the config's interval and in its time, as in a user's run: the
        settings["eval_every"] = cfg.get("eval_every")  # drift guard acts on them
    cfg = cfg.with_values(settings, minutes=minutes or 0.0, max_steps=steps or 0)
    ds_a, ds_b = open_domains(task_data.dir_a, task_data.dir_b, cfg)
    gt = GroundTruth.from_arrays(task_data.x, task_data.tx)
    trainer = (FamilySearch if cfg.model.netG == "auto" else Trainer)(cfg, ds_a, ds_b, device=device)
    points: list[dict[str, float]] = []
    next_score = score_every_s if score_every_steps is None else math.inf
    trials: list[dict[str, Any]] = []  # a family search's candidates at the end of their trials, against the truth
    if isinstance(trainer, FamilySearch):
        trainer.trial_hook = lambda family, t: trials.append(
            {"family": family, "step": t.step, "minutes": t.elapsed() / 60.0,
             **{k: v for k, v in gt.score(*t.state.inference_generators(), t.device).items() if k in CURVE_KEYS}})

    def score() -> None:
        t0 = time.perf_counter()
        p = _score(trainer, gt, monitor)
        trainer.exclude_time(time.perf_counter() - t0)  # scoring is not training time
        points.append(p)
        log.info("%.2f min, step %d: %s", p["minutes"], p["step"], ", ".join(f"{k} {p[k]:.2f}" for k in CURVE_KEYS))
        if on_point is not None:
            on_point(p)

    score()
    finished = None
    evals: list[dict[str, float]] = []  # the trainer's own evaluations: what best.pt and the drift guard read
    for rep in trainer.run():
        if isinstance(rep, FinishedReport):
            finished = rep
        elif isinstance(rep, EvalReport):
            scored = BestKeeper.score(dict(rep.metrics))
            if scored is not None:
                evals.append({"step": rep.step, "minutes": rep.elapsed_s / 60.0, "score": scored[0],
                              "half_width": scored[1], "best_step": rep.metrics.get(BEST_STEP, math.nan)})
        elif isinstance(rep, WarningReport):
            log.warning("step %d: %s", rep.step, rep.message)
            if rep.severity == "error":
                trainer.stop()
        elif isinstance(rep, (ProgressReport, FamilyTrialReport)) and not getattr(rep, "replay", False) \
                and not trainer.stopping:  # during a family search: the family on trial
            due = (trainer.elapsed() >= next_score if score_every_steps is None
                   else trainer.step % score_every_steps == 0)
            if due and not trainer.schedule.done(trainer.step, trainer.elapsed()):
                score()
                while next_score <= trainer.elapsed():
                    next_score += score_every_s
    if finished is None or finished.reason == "error":
        raise RuntimeError(f"training failed at step {trainer.step}: {finished.message if finished else 'no end'}")
    score()

    G, F = trainer.state.inference_generators()
    train_s = trainer.elapsed()
    return {
        "task": task_data.name,
        "identity_baseline": gt.identity_psnr(),
        "held_out": len(gt),
        "steps": trainer.step,
        "train_minutes": train_s / 60.0,
        "ended": finished.reason,  # "drifted": the drift guard restored the best step and stopped the run early
        "steps_per_s": trainer.step / train_s if train_s > 0 else 0.0,
        "threads": torch.get_num_threads(),
        "device": str(trainer.device),
        "train_scale": trainer.data_scale["A"],
        "family": trainer.cfg.model.netG if isinstance(trainer, Trainer) else trainer.choice.chosen,
        "search": trainer.choice.metrics_row()[1] if isinstance(trainer, FamilySearch) and trainer.choice else None,
        "trials": trials,
        "evals": evals,
        "config": cfg.to_dict(),
        "points": points,
        "images": {"x": task_data.x, "tx": task_data.tx,
                   "gx": np.stack([to_uint8_image(t) for t in gt.translate(G, gt.x, trainer.device)]),
                   "ftx": np.stack([to_uint8_image(t) for t in gt.translate(F, gt.tx, trainer.device)])},
    }


# --- one task, a suite ----------------------------------------------------------------------------------
def run_task(task: Task, cfg: Config, out: Path, *, minutes: float | None = None, steps: int | None = None,
             score_every_s: float = 60.0, score_every_steps: int | None = None, seed_data: int = 0, label: str = "",
             on_point: Callable[[dict[str, float]], None] | None = None, monitor: bool = False) -> dict[str, Any]:
    """Build ``task``, measure ``cfg`` on it and write curve.json, curve.png and grid.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"quality-{task.name}-") as tmp:
        data = task.build(tmp, seed=seed_data)
        res = measure(cfg, data, minutes=minutes, steps=steps, score_every_s=score_every_s,
                      score_every_steps=score_every_steps, on_point=on_point, monitor=monitor)
    images = res.pop("images")
    fin = res["points"][-1]
    title = (f"{task.name} · {label} · {fin['minutes']:.2f} min · step {fin['step']} · G(x) {fin['psnr_AtoB']:.2f} dB "
             f"(identity {res['identity_baseline']:.2f})")
    save_png(comparison_grid(images, title), out / "grid.png")
    plot_curves({f"{label} G(x) vs T(x)": [(p["minutes"], p["psnr_AtoB"]) for p in res["points"]],
                 f"{label} F(T(x)) vs x": [(p["minutes"], p["psnr_BtoA"]) for p in res["points"]]},
                res["identity_baseline"], out / "curve.png", title=f"task {task.name}, {label}")
    if monitor:  # the curve pair: the PSNR over the monitor's share of the way left, as the app showed it
        shares = {way: [(p["minutes"], share) for p, share, _ in standing_series(res["points"], way)]
                  for way in ("AtoB", "BtoA")}
        plot_monitor(res["points"], shares, res["identity_baseline"], out / "monitor.png",
                     title=f"task {task.name}, {label}: PSNR and the W monitor's share left")
    res = {"task": task.name, "kind": task.kind, "split": task.split, "description": task.description,
           "label": label, "budget": {"minutes": minutes, "steps": steps}, **res,
           "stuck": fin["moved"] < STUCK_BELOW, "grid": "grid.png", "plot": "curve.png"}
    atomic_write_text(out / "curve.json", json.dumps(res, indent=1) + "\n")
    return res


def run_suite(tasks: Sequence[Task], cfg: Config, out: Path, *, label: str, minutes: float | None = None,
              steps: int | None = None, score_every_s: float = 60.0, score_every_steps: int | None = None,
              seed_data: int = 0, echo: Callable[[str], None] = print, monitor: bool = False) -> list[dict[str, Any]]:
    """Every task, one after another (never in parallel: they would share the cores), into ``out/<task>``;
    then ``out/summary.json`` and ``out/table.md`` (and with ``monitor``, ``out/monitor.md``: how well the
    signals without ground truth track the PSNR)."""
    results = []
    for task in tasks:
        echo(f"[{label}] {task.name}: {task.description}")
        results.append(run_task(task, cfg, out / task.name, minutes=minutes, steps=steps, score_every_s=score_every_s,
                                score_every_steps=score_every_steps, seed_data=seed_data, label=label,
                                monitor=monitor))
        r = results[-1]
        echo(f"[{label}] {task.name}: {r['points'][-1]['psnr_AtoB']:.2f} dB after {r['steps']} steps "
             f"(identity {r['identity_baseline']:.2f} dB){'  STUCK at the identity' if r['stuck'] else ''}")
    table = suite_table(results)
    atomic_write_text(out / "summary.json", json.dumps({"label": label, "budget": {"minutes": minutes, "steps": steps},
                                                        "config": cfg.to_dict(), "tasks": results}, indent=1) + "\n")
    atomic_write_text(out / "table.md", "\n".join(table) + "\n")
    if monitor:
        atomic_write_text(out / "monitor.md", "\n".join(proof_table(results) + ["", *standing_table(results)]) + "\n")
    return results


# --- CLI (registered by engine.__main__) ------------------------------------------------------------------
def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "quality", help="train on tasks with a known answer; PSNR against the truth over training minutes",
        description="Train on each task of a suite (or one task) whose true map T is known, for a budget of "
                    "training minutes or steps with the schedule fitted into it, scoring PSNR(G(x), T(x)) on held-out "
                    "images at their full size (scoring time is not counted). Writes, per task, curve.json, curve.png "
                    "and grid.png, and for a suite summary.json and table.md. --compare puts saved results side by "
                    "side.")
    add_config_args(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--suite", choices=sorted(SUITES), help="every task of the tuning set, the check set, or both")
    which.add_argument("--task", action="append", metavar="NAME", help="one task (repeatable)")
    p.add_argument("--minutes", type=nonneg_float, help="training time per task, in minutes (fractions allowed)")
    p.add_argument("--steps", type=positive_int, help="instead of --minutes: training steps per task")
    p.add_argument("--score-every", type=nonneg_float, default=60.0, metavar="SECONDS",
                   help="score every SECONDS of training time (default 60)")
    p.add_argument("--score-every-steps", type=positive_int, metavar="N", help="instead: score every N steps")
    p.add_argument("--monitor", action="store_true",
                   help="also evaluate as the trainer does at every scoring point (held-out split, the W monitor, the "
                        "training critic's W) and judge those signals against the PSNR: writes monitor.md, and per "
                        "task monitor.png (the PSNR over the share left that the app showed)")
    p.add_argument("--label", help="name of this recipe in tables and plots (default: the recipe's name)")
    p.add_argument("--out", metavar="DIR", help="output folder (default quality/<label>/); with --compare, a "
                                                "markdown file for the table")
    p.add_argument("--seed-data", type=int, default=0, metavar="SEED", help="seed of the tasks' data (default 0)")
    p.add_argument("--compare", nargs="+", metavar="RESULT", help="compare saved suites (folders with summary.json) "
                                                                   "or single-task runs (curve.json); the first leads")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run_cli)


def _load(path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json" if (p / "summary.json").is_file() else p / "curve.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise FileNotFoundError(f"cannot read {p}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not a quality result: {e}") from None


def _run_compare(args) -> int:
    loaded = [_load(r) for r in args.compare]
    if all("tasks" in x for x in loaded):
        lines = compare_suites(loaded)
    elif not any("tasks" in x for x in loaded):
        for c, r in zip(loaded, args.compare):
            c["label"] = c.get("label") or Path(r).name
        lines = compare_runs(loaded)
        plot = {f"{c['label']} G(x) vs T(x)": [(p["minutes"], p["psnr_AtoB"]) for p in c["points"]] for c in loaded}
        png = Path(args.out).with_suffix(".png") if args.out else Path("quality") / f"compare-{loaded[0]['task']}.png"
        plot_curves(plot, loaded[0]["identity_baseline"], png, title=f"task {loaded[0]['task']}: PSNR(G(x), T(x))")
        lines.append(f"plot: {png}")
    else:
        raise UsageError("quality --compare: give suites (folders with summary.json) or single runs, not both")
    if args.out and not args.out.endswith(".png"):
        atomic_write_text(Path(args.out), "\n".join(lines) + "\n")
    print(json.dumps({"lines": lines}) if args.json else "\n".join(lines))
    return 0


def run_cli(args) -> int:
    if args.compare:
        return _run_compare(args)
    if not args.suite and not args.task:
        raise UsageError("quality: name the tasks: --suite tuning|check|all, or --task NAME; or --compare RESULT …")
    if (args.minutes is None) == (args.steps is None):
        raise UsageError("quality: give one budget, --minutes M or --steps N")
    if args.minutes is not None and args.minutes <= 0:
        raise UsageError("quality: --minutes must be positive")
    if args.score_every <= 0:
        raise UsageError("quality: --score-every must be positive")
    tasks = suite(args.suite) if args.suite else [get_task(name) for name in args.task]
    steps, args.steps = args.steps, None  # the budget, not the config's max_steps
    cfg = load_config(args)  # preset, recipe, --config, --set
    label = args.label or args.recipe or "default"
    out = Path(args.out) if args.out else Path("quality") / label
    echo = (lambda _line: None) if args.json else (lambda line: print(line, flush=True))
    results = run_suite(tasks, cfg, out, label=label, minutes=args.minutes, steps=steps, score_every_s=args.score_every,
                        score_every_steps=args.score_every_steps, seed_data=args.seed_data, echo=echo,
                        monitor=args.monitor)
    if args.json:
        print(json.dumps({"label": label, "out": str(out), "tasks": results}))
    else:
        print("\n".join(suite_table(results)))
        if args.monitor:
            print("\n".join(["", "Signals without ground truth against PSNR(G(x), T(x)):"] + proof_table(results)
                             + ["", "The monitor's share left, as the app showed it, against the PSNR:"]
                             + standing_table(results)))
        print(f"wrote {out / 'table.md'}, {out / 'summary.json'} and, per task, curve.json, curve.png and grid.png")
    return 0
