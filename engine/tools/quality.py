"""Scoring translations against ground truth, and measuring how fast a recipe learns.

``psnr`` and ``GroundTruth`` score a model: PSNR of G(x) against the true T(x) on held-out
pairs. ``measure`` trains on a task with a known map T (``engine.tools.tasks``) for a budget of
*training* wall time and scores every so often; the time spent scoring is not counted.
``python -m engine quality`` drives it and writes ``curve.json``, ``curve.png`` (drawn by
``plot_curves`` with PIL alone) and ``grid.png`` (x | T(x) | G(x) | F(T(x)), labelled).
The README's Quality section has the method and the figures behind the ``studio`` recipe.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine.cliutil import UsageError, add_config_args, load_config, nonneg_float, positive_int
from engine.config import Config
from engine.data import open_domains
from engine.images import to_uint8_image
from engine.io.atomic import atomic_write_text, save_png
from engine.metrics import GroundTruth, psnr
from engine.tools.tasks import get_task
from engine.training.reports import FinishedReport, ProgressReport, WarningReport
from engine.training.trainer import Trainer

log = logging.getLogger(__name__)

__all__ = ["psnr", "GroundTruth", "measure", "comparison_grid", "plot_curves", "compare_runs", "add_cli", "run_cli"]


# --- measuring a recipe: train on a task with a known T, score against wall time ---------------
# Settings of a measurement, not of the recipe: a constant learning rate (the budget is time, so
# the step count, and with it a step-based decay, is not known in advance), no trainer-side
# evaluation, previews or checkpoints, and every training crop used for training (the held-out
# pairs come from the task). A progress report every step gives the loop a boundary per step.
_MEASURE_SETTINGS: dict[str, Any] = {
    "max_steps": 1 << 40, "time_limit": 0.0, "log_every": 1, "eval_every": 1_000_000, "preview_every": 1_000_000,
    "save_every": 1_000_000, "val_fraction": 0.0, "val_min": 0, "tensorboard": False,
}
CURVE_KEYS = ("psnr_AtoB", "psnr_BtoA", "psnr_cycle")


def _score_point(trainer, gt: GroundTruth, train_s: float, wall_s: float) -> dict[str, float]:
    G, F = trainer.state.inference_generators()
    scores = gt.score(G, F, trainer.device)
    point = {"minutes": train_s / 60.0, "step": trainer.step, "wall_minutes": wall_s / 60.0,
             **{k: scores[k] for k in CURVE_KEYS}}
    if G is not trainer.state.G:  # EMA on: also the raw weights, to show what the average buys
        raw = gt.score(trainer.state.G, trainer.state.F, trainer.device)
        point.update({f"{k}_raw": raw[k] for k in CURVE_KEYS})
    return point


def measure(cfg: Config, task_data, *, minutes: float | None = None, steps: int | None = None,
            score_every_s: float = 60.0, score_every_steps: int | None = None,
            on_point: Callable[[dict[str, float]], None] | None = None, device: str | None = None) -> dict[str, Any]:
    """Train on ``task_data`` (an ``engine.tools.tasks.TaskData``) for ``minutes`` of training time or ``steps``
    steps, scoring on its held-out pairs at the start, every ``score_every_s`` seconds of training
    (or every ``score_every_steps`` steps) and at the end. Scoring time is not training time.

    Returns the curve: ``points`` (minutes, step, psnr_AtoB, psnr_BtoA, psnr_cycle, …), the identity
    baseline PSNR(x, T(x)), steps/s over the training time, and the final (G, F) outputs for a grid.
    """
    if (minutes is None) == (steps is None):
        raise ValueError("give exactly one budget: minutes or steps")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    cfg = cfg.with_values(_MEASURE_SETTINGS)
    ds_a, ds_b = open_domains(task_data.dir_a, task_data.dir_b, cfg)
    gt = GroundTruth.from_arrays(task_data.x, task_data.tx)
    trainer = Trainer(cfg, ds_a, ds_b, device=device)
    budget_s = minutes * 60.0 if minutes is not None else math.inf
    every_s = score_every_s if score_every_steps is None else math.inf

    points: list[dict[str, float]] = []
    t_start = time.perf_counter()
    train_s = 0.0

    def score() -> None:
        p = _score_point(trainer, gt, train_s, time.perf_counter() - t_start)
        points.append(p)
        log.info("%.2f min, step %d: %s", p["minutes"], p["step"], ", ".join(f"{k} {p[k]:.2f}" for k in CURVE_KEYS))
        if on_point is not None:
            on_point(p)

    score()
    next_score = every_s
    gen = trainer.run()
    finished = None
    try:
        while True:
            t0 = time.perf_counter()
            rep = next(gen, None)
            train_s += time.perf_counter() - t0  # only the time inside the trainer counts
            if rep is None:
                break
            if isinstance(rep, FinishedReport):
                finished = rep
                break
            if isinstance(rep, WarningReport):
                log.warning("step %d: %s", rep.step, rep.message)
                if rep.severity == "error":
                    trainer.stop()
                continue
            if not isinstance(rep, ProgressReport) or trainer.stopping:
                continue
            done = train_s >= budget_s or (steps is not None and trainer.step >= steps)
            if done:
                trainer.stop()  # the generator ends at the next boundary; the final point is scored below
            elif train_s >= next_score or (score_every_steps and trainer.step % score_every_steps == 0):
                score()
                while next_score <= train_s:
                    next_score += every_s
    finally:
        gen.close()
    if finished is not None and finished.reason == "error":
        raise RuntimeError(f"training failed at step {finished.step}: {finished.message}")
    score()

    G, F = trainer.state.inference_generators()
    gx = [to_uint8_image(t) for t in gt.translate(G, gt.x, trainer.device)]
    ftx = [to_uint8_image(t) for t in gt.translate(F, gt.tx, trainer.device)]
    return {
        "task": task_data.name,
        "identity_baseline": gt.identity_psnr(),
        "held_out": len(gt),
        "steps": trainer.step,
        "train_minutes": train_s / 60.0,
        "steps_per_s": trainer.step / train_s if train_s > 0 else 0.0,
        "threads": torch.get_num_threads(),
        "device": str(trainer.device),
        "config": cfg.to_dict(),
        "points": points,
        "images": {"x": task_data.x, "tx": task_data.tx, "gx": np.stack(gx), "ftx": np.stack(ftx)},
    }


# --- pictures ----------------------------------------------------------------------------------
_BG, _FG, _DIM = (32, 34, 38), (235, 235, 235), (200, 205, 215)
_LINE_H = 14


def comparison_grid(images: Mapping[str, np.ndarray], title: str = "", n: int = 4, scale: int = 2) -> Image.Image:
    """Rows of held-out examples: x | T(x) (truth) | G(x) | F(T(x)), labelled, enlarged with nearest
    neighbour so single-pixel patterns (checkerboards) stay visible. ``images[k]``: uint8 (N, H, W, 3)."""
    cols = [("x", "x (held out)"), ("tx", "T(x) truth"), ("gx", "G(x)"), ("ftx", "F(T(x))")]
    cols = [(k, label) for k, label in cols if k in images]
    n = min(n, images["x"].shape[0])
    h, w = images["x"].shape[1:3]
    ch, cw, pad = h * scale, w * scale, 4
    title_h = (_LINE_H + 4) if title else 0
    grid = Image.new("RGB", (len(cols) * (cw + pad) + pad, title_h + n * (ch + _LINE_H + pad) + pad), _BG)
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((pad, 3), title, fill=_FG)
    y = title_h + pad
    for i in range(n):
        x = pad
        for key, label in cols:
            if key == "gx" and "tx" in images:
                label += f"  {psnr(images['gx'][i], images['tx'][i]):.1f} dB"
            elif key == "ftx":
                label += f"  {psnr(images['ftx'][i], images['x'][i]):.1f} dB"
            draw.text((x + 2, y), label, fill=_DIM)
            grid.paste(Image.fromarray(images[key][i]).resize((cw, ch), Image.Resampling.NEAREST), (x, y + _LINE_H))
            x += cw + pad
        y += ch + _LINE_H + pad
    return grid


_PALETTE = [(67, 209, 158), (177, 140, 255), (255, 170, 60), (90, 170, 255), (255, 99, 120), (230, 220, 90)]


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def plot_curves(curves: Mapping[str, Sequence[tuple[float, float]]], baseline: float | None, path,
                *, title: str = "", xlabel: str = "training minutes", ylabel: str = "PSNR (dB)",
                size: tuple[int, int] = (760, 460)) -> Path:
    """Draw ``{label: [(minutes, psnr), …]}`` as lines on simple axes, with the identity baseline
    as a dashed grey line and a legend, into the PNG ``path``. PIL only (no matplotlib)."""
    W, H = size
    left, right, top, bottom = 58, 18, 44 if title else 26, 44
    img = Image.new("RGB", (W, H), _BG)
    draw = ImageDraw.Draw(img)
    pts = [(float(x), float(y)) for c in curves.values() for x, y in c if math.isfinite(y)]
    ys = [y for _, y in pts] + ([baseline] if baseline is not None and math.isfinite(baseline) else [])
    x_max = max([x for x, _ in pts] + [1e-9])
    y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if y_hi - y_lo < 1.0:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    y_step = _nice_step(y_hi - y_lo)
    y_lo, y_hi = math.floor(y_lo / y_step) * y_step, math.ceil(y_hi / y_step) * y_step
    x_step = _nice_step(x_max)
    x_hi = math.ceil(x_max / x_step) * x_step
    px = lambda x: left + (W - left - right) * x / x_hi  # noqa: E731
    py = lambda y: H - bottom - (H - top - bottom) * (y - y_lo) / (y_hi - y_lo)  # noqa: E731
    if title:
        draw.text((left, 8), title, fill=_FG)
    for k in range(int(round((y_hi - y_lo) / y_step)) + 1):  # horizontal grid and y ticks
        y = y_lo + k * y_step
        draw.line([(left, py(y)), (W - right, py(y))], fill=(52, 55, 62))
        draw.text((6, py(y) - 6), f"{y:g}", fill=_DIM)
    for k in range(int(round(x_hi / x_step)) + 1):
        x = k * x_step
        draw.line([(px(x), H - bottom), (px(x), H - bottom + 4)], fill=_DIM)
        draw.text((px(x) - 8, H - bottom + 6), f"{x:g}", fill=_DIM)
    draw.line([(left, top), (left, H - bottom), (W - right, H - bottom)], fill=_DIM)
    draw.text((W // 2 - 40, H - 18), xlabel, fill=_DIM)
    draw.text((6, top - 16), ylabel, fill=_DIM)
    legend: list[tuple[str, tuple[int, int, int], bool]] = []
    if baseline is not None and math.isfinite(baseline):
        x0, x1 = left, W - right
        for xa in range(int(x0), int(x1), 10):  # dashed
            draw.line([(xa, py(baseline)), (min(xa + 5, x1), py(baseline))], fill=(143, 153, 168), width=1)
        legend.append((f"identity baseline PSNR(x, T(x)) {baseline:.2f} dB", (143, 153, 168), True))
    for i, (label, c) in enumerate(curves.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        xy = [(px(x), py(y)) for x, y in c if math.isfinite(y)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        legend.append((label, colour, False))
    lx, ly = left + 10, top + 6  # legend, top left inside the axes
    box_w = 26 + 6 * max((len(t) for t, _, _ in legend), default=0)
    draw.rectangle([lx - 4, ly - 3, lx + box_w, ly + _LINE_H * len(legend) + 1], fill=(40, 42, 48), outline=(70, 74, 82))
    for k, (text, colour, dashed) in enumerate(legend):
        yy = ly + k * _LINE_H + 6
        if dashed:
            draw.line([(lx, yy), (lx + 6, yy)], fill=colour)
            draw.line([(lx + 11, yy), (lx + 17, yy)], fill=colour)
        else:
            draw.line([(lx, yy), (lx + 17, yy)], fill=colour, width=2)
        draw.text((lx + 24, yy - 6), text, fill=_FG)
    return save_png(img, path)


# --- comparing runs ----------------------------------------------------------------------------

def _time_to_reach(points: Sequence[Mapping[str, float]], target: float, key: str = "psnr_AtoB") -> float | None:
    """Training minutes at which the curve first reaches ``target`` (linear between points), or None."""
    prev = None
    for p in points:
        if p[key] >= target:
            if prev is None or p[key] == prev[key]:
                return p["minutes"]
            f = (target - prev[key]) / (p[key] - prev[key])
            return prev["minutes"] + f * (p["minutes"] - prev["minutes"])
        prev = p
    return None


def _value_at(points: Sequence[Mapping[str, float]], minutes: float, key: str = "psnr_AtoB") -> float:
    """The curve's value at ``minutes`` (linear between points; the last value past the end)."""
    prev = points[0]
    for p in points[1:]:
        if p["minutes"] >= minutes:
            f = (minutes - prev["minutes"]) / max(p["minutes"] - prev["minutes"], 1e-12)
            return prev[key] + f * (p[key] - prev[key])
        prev = p
    return points[-1][key]


def compare_runs(curves: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines comparing each run to the first (the reference): final PSNR, how soon each run reaches
    the reference's final PSNR, and the lead at the reference's final time."""
    ref = curves[0]
    ref_final = ref["points"][-1]
    lines = [f"identity baseline PSNR(x, T(x)): {ref['identity_baseline']:.2f} dB  (task {ref['task']})"]
    for c in curves:
        fin = c["points"][-1]
        line = (f"{c.get('label', c.get('recipe', '?')):>10}: G(x) vs T(x) {fin['psnr_AtoB']:.2f} dB at {fin['minutes']:.2f} min "
                f"(step {fin['step']}, {c['steps_per_s']:.2f} steps/s); F(T(x)) vs x {fin['psnr_BtoA']:.2f} dB; "
                f"cycle {fin['psnr_cycle']:.2f} dB")
        if c is not ref:
            t = _time_to_reach(c["points"], ref_final["psnr_AtoB"])
            lead = _value_at(c["points"], ref_final["minutes"]) - ref_final["psnr_AtoB"]
            line += (f"\n{'':>10}  reaches {ref.get('label', 'the reference')}'s final {ref_final['psnr_AtoB']:.2f} dB "
                     + (f"at {t:.2f} min" if t is not None else "never")
                     + f" ({t / ref_final['minutes']:.0%} of its time)" * (t is not None and ref_final["minutes"] > 0)
                     + f"; lead at {ref_final['minutes']:.2f} min: {lead:+.2f} dB")
        lines.append(line)
    return lines


# --- CLI (registered by engine.__main__) ------------------------------------------------------

def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "quality", help="train on a task with a known answer; PSNR against the truth over training minutes",
        description="Train for M minutes of training time on a task whose true map T is known, scoring "
                    "PSNR(G(x), T(x)), PSNR(F(T(x)), x) and cycle PSNR on held-out x (scoring time is not "
                    "counted). Writes curve.json, curve.png and grid.png. With --compare, compares saved runs.")
    add_config_args(p)
    p.add_argument("--task", help="demo or photo (photo needs scikit-image's bundled photographs)")
    p.add_argument("--minutes", type=nonneg_float, help="training time budget in minutes (fractions allowed)")
    p.add_argument("--steps", type=positive_int, help="instead of --minutes: train this many steps")
    p.add_argument("--score-every", type=nonneg_float, default=60.0, metavar="SECONDS",
                   help="score every SECONDS of training time (default 60)")
    p.add_argument("--score-every-steps", type=positive_int, metavar="N", help="instead: score every N steps")
    p.add_argument("--out", metavar="DIR", help="output folder (default quality/<task>-<recipe>/); "
                                                "with --compare, the plot's PNG path")
    p.add_argument("--seed-data", type=int, default=0, metavar="SEED", help="seed of the task's data (default 0)")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="compare saved runs (folders or curve.json); "
                                                                "the first is the reference")
    p.add_argument("--json", action="store_true", help="print the curve (or the comparison) as JSON")
    p.set_defaults(func=run_cli)


def _load_curve(path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "curve.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise FileNotFoundError(f"cannot read {p}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not a curve.json: {e}") from None


def _run_compare(args) -> int:
    curves = [_load_curve(r) for r in args.compare]
    for c, r in zip(curves, args.compare):
        c.setdefault("label", c.get("recipe") or Path(r).name)
    lines = compare_runs(curves)
    out = Path(args.out) if args.out else Path("quality") / f"compare-{curves[0]['task']}.png"
    plot = {}
    for c in curves:
        plot[f"{c['label']} G(x) vs T(x)"] = [(p["minutes"], p["psnr_AtoB"]) for p in c["points"]]
    plot_curves(plot, curves[0]["identity_baseline"], out, title=f"task {curves[0]['task']}: PSNR(G(x), T(x)) on held-out x")
    if args.json:
        print(json.dumps({"lines": lines, "plot": str(out)}))
    else:
        print("\n".join(lines))
        print(f"plot: {out}")
    return 0


def run_cli(args) -> int:
    if args.compare:
        return _run_compare(args)
    if not args.task:
        raise UsageError("quality: --task is required (demo or photo), or --compare RUN …")
    if (args.minutes is None) == (args.steps is None):
        raise UsageError("quality: give one budget, --minutes M or --steps N")
    if args.minutes is not None and args.minutes <= 0:
        raise UsageError("quality: --minutes must be positive")
    args.recipe = args.recipe or "studio"
    if args.score_every <= 0:
        raise UsageError("quality: --score-every must be positive")
    task = get_task(args.task)
    steps, args.steps = args.steps, None  # the budget, not the config's max_steps
    cfg = load_config(args)  # preset, recipe (studio unless --recipe says otherwise), --config, --set
    out = Path(args.out) if args.out else Path("quality") / f"{task.name}-{args.recipe}"
    out.mkdir(parents=True, exist_ok=True)

    def on_point(p: dict[str, float]) -> None:
        if not args.json:
            print(f"{p['minutes']:6.2f} min  step {p['step']:6d}  G(x) vs T(x) {p['psnr_AtoB']:6.2f} dB  "
                  f"F(T(x)) vs x {p['psnr_BtoA']:6.2f} dB  cycle {p['psnr_cycle']:6.2f} dB", flush=True)

    with tempfile.TemporaryDirectory(prefix=f"quality-{task.name}-") as tmp:
        data = task.build(tmp, load_size=cfg.data.load_size, crop_size=cfg.data.crop_size, seed=args.seed_data)
        if not args.json:
            print(f"task {task.name}: {task.description}; recipe {args.recipe}; "
                  f"identity baseline PSNR(x, T(x)) {psnr(data.x, data.tx):.2f} dB on {len(data.x)} held-out images",
                  flush=True)
        res = measure(cfg, data, minutes=args.minutes, steps=steps, score_every_s=args.score_every,
                      score_every_steps=args.score_every_steps, on_point=on_point)
    images = res.pop("images")
    fin = res["points"][-1]
    title = (f"{task.name} · {args.recipe} · {fin['minutes']:.2f} min · step {fin['step']} · "
             f"G(x) {fin['psnr_AtoB']:.2f} dB (identity {res['identity_baseline']:.2f})")
    save_png(comparison_grid(images, title), out / "grid.png")
    plot_curves({f"{args.recipe} G(x) vs T(x)": [(p["minutes"], p["psnr_AtoB"]) for p in res["points"]],
                 f"{args.recipe} F(T(x)) vs x": [(p["minutes"], p["psnr_BtoA"]) for p in res["points"]],
                 f"{args.recipe} cycle F(G(x)) vs x": [(p["minutes"], p["psnr_cycle"]) for p in res["points"]]},
                res["identity_baseline"], out / "curve.png", title=f"task {task.name}, recipe {args.recipe}")
    res = {"task": task.name, "description": task.description, "recipe": args.recipe,
           "budget": {"minutes": args.minutes, "steps": steps, "score_every_s": args.score_every,
                      "score_every_steps": args.score_every_steps},
           **res, "grid": "grid.png", "plot": "curve.png"}
    atomic_write_text(out / "curve.json", json.dumps(res, indent=1) + "\n")
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['steps']} steps in {res['train_minutes']:.2f} training minutes ({res['steps_per_s']:.2f} steps/s); "
              f"final G(x) vs T(x) {fin['psnr_AtoB']:.2f} dB, identity baseline {res['identity_baseline']:.2f} dB")
        print(f"wrote {out / 'curve.json'}, {out / 'curve.png'}, {out / 'grid.png'}")
    return 0
