"""``python -m gui.bench``: does the app train as fast as the CLI, and does its window stay responsive?

The same config is trained twice (or more, see ``--rounds``) on the same data:

* **CLI path**: ``engine.training.trainer.Trainer.run()`` iterated directly on the main thread, no Qt
  event loop running (what ``python -m engine train`` does);
* **GUI path**: the real ``MainWindow`` (offscreen), Train pressed, the worker on its QThread,
  the loss plots, status bar and previews updating from its signals.

Speed is steps per second between the first progress report at or after ``--warmup`` and
the last one, from the reports' own ``elapsed_s`` (the trainer's clock, in the training
thread), so both paths are timed the same way and the GUI's delivery delay does not count.
Both paths run with the same torch intra-op thread count (``--threads``, default half the
cores as the smoke mode uses; it is written into the config, and checked in each training
thread). Rounds alternate CLI, GUI, GUI, CLI … so that drift in the machine's load hits
both alike.

While the GUI path trains, a 10 ms ``QTimer`` on the main thread measures how late each tick
fires: p50/p99/max of that lateness is the event-loop latency a user would feel (target:
p99 < 50 ms). Targets: GUI/CLI ≥ 0.95.

    python -m gui.bench [--steps N] [--warmup N] [--rounds N] [--threads N]
                        [--preset P] [--config FILE] [--set key=value …] [--data DIR_A DIR_B] [--json]

Unless ``--set`` says otherwise, both paths train the ResNet family (``auto``'s search would time three
generators and a selection; pin one with ``--set netG=…``), reports come every step (``log_every=1``) and previews
every 10 steps: more signal traffic than the presets make, so the GUI is measured under
load. Checkpoints are saved only at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from engine.config import ConfigError
from engine.data.demo import make_demo_dataset
from engine.devices import resolve_device
from engine.tools.cli_support import Parser, UsageError, add_config_args, load_config, positive_int
from engine.training.reports import ProgressReport
from engine.training.trainer import Trainer

from .app import configure_app
from .main_window import MainWindow

__all__ = ["main", "PathResult", "BenchReport", "latency_stats", "its_from_points"]

log = logging.getLogger(__name__)

TARGET_RATIO = 0.95
TARGET_P99_MS = 50.0
PROBE_MS = 10
# Bench defaults that --set can override: reports every step, previews every 10 steps.
BENCH_DEFAULTS = {"log_every": 1, "preview_every": 10, "save_every": 10**6}


@dataclass
class PathResult:
    path: str                 # "cli" or "gui"
    its_per_s: float
    steps_timed: int
    seconds: float
    threads: int              # torch.get_num_threads() in the training thread
    wall_s: float             # the whole run, setup included


@dataclass
class BenchReport:
    preset: str
    device: str
    threads: int
    steps: int
    warmup: int
    batch_size: int
    crop_size: int
    log_every: int
    preview_every: int
    cli_its_per_s: float
    gui_its_per_s: float
    ratio: float
    ratio_ok: bool
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_ticks: int
    latency_ok: bool
    load_avg_before: tuple[float, float, float]
    load_avg_after: tuple[float, float, float]
    gui_reports: int = 0
    gui_previews: int = 0
    runs: list[dict] = field(default_factory=list)


def its_from_points(points: list[tuple[int, float]], warmup: int) -> tuple[float, int, float]:
    """(it/s, steps timed, seconds) from (step, elapsed_s) progress points, after ``warmup`` steps."""
    timed = [p for p in points if p[0] >= warmup]
    if len(timed) < 2:
        raise RuntimeError(f"too few progress reports after step {warmup} to time the run ({len(points)} in all); "
                           "use more --steps or a smaller log_every")
    (s0, t0), (s1, t1) = timed[0], timed[-1]
    return (s1 - s0) / max(t1 - t0, 1e-9), s1 - s0, t1 - t0


def latency_stats(lateness_s: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of timer lateness, in milliseconds."""
    if not lateness_s:
        return math.nan, math.nan, math.nan
    xs = sorted(lateness_s)

    def q(p: float) -> float:
        return xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))] * 1000.0

    return q(0.50), q(0.99), xs[-1] * 1000.0


# --- the CLI path ------------------------------------------------------------------------------
def run_cli(cfg, data: tuple[str, str], run_dir: Path, warmup: int) -> PathResult:
    """Trainer.run() iterated on this thread, as ``python -m engine train`` does; no event loop."""
    t_wall = time.perf_counter()
    trainer = Trainer.from_folders(cfg, data[0], data[1], run_dir=run_dir)
    threads = torch.get_num_threads()
    points: list[tuple[int, float]] = []
    for rep in trainer.run():
        if isinstance(rep, ProgressReport):
            points.append((rep.step, rep.elapsed_s))
    its, n, secs = its_from_points(points, warmup)
    return PathResult("cli", its, n, secs, threads, time.perf_counter() - t_wall)


# --- the GUI path ------------------------------------------------------------------------------
class LatencyProbe:
    """A ``PROBE_MS`` precise timer on the GUI thread; records how late each tick fires while ``armed``."""

    def __init__(self, parent):
        self.lateness: list[float] = []
        self.armed = False
        self._last = None
        self.timer = QTimer(parent)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        if self.armed and self._last is not None:
            self.lateness.append(max(0.0, (now - self._last) - PROBE_MS / 1000.0))
        self._last = now


def run_gui(cfg, data: tuple[str, str], run_dir: Path, warmup: int) -> tuple[PathResult, list[float], dict]:
    """The real window: datasets chosen, the config set in the form, Train pressed; waits for the end."""
    app = QApplication.instance()
    t_wall = time.perf_counter()
    w = MainWindow(cfg, persist=False)
    w.resize(1440, 900)
    w.show()
    w.show_tab("training")
    w.datasets.set_paths(*data)
    w.run_folder.set_path(str(run_dir))

    def spin_until(cond, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for the window")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)

    spin_until(lambda: w.datasets.ready or (not w.datasets.scanning and bool(w.datasets.problem())))
    if not w.datasets.ready:
        raise RuntimeError(f"the window does not accept the data: {w.datasets.problem()}")
    if w.form.config() != cfg:
        raise RuntimeError("the form does not reproduce the benchmark config")

    c = w.controller
    points: list[tuple[int, float]] = []
    counts = {"reports": 0, "previews": 0}
    worker_threads: list[int] = []
    probe = LatencyProbe(w)
    outcome: list = []
    loop = QEventLoop()

    def on_progressed(rep) -> None:
        points.append((rep.step, rep.elapsed_s))
        counts["reports"] += 1
        if rep.step >= warmup:
            probe.armed = True  # the window is in its steady state: measure from here

    def on_previews(_rep) -> None:
        counts["previews"] += 1

    def on_started(info) -> None:  # the count the trainer set, read in the training thread
        worker_threads.append(info.torch_threads)

    c.started.connect(on_started)
    c.progressed.connect(on_progressed)
    c.previews_ready.connect(on_previews)
    c.finished.connect(lambda rep: (outcome.append(rep), loop.quit()))
    c.failed.connect(lambda msg, _tb: (outcome.append(RuntimeError(msg)), loop.quit()))
    probe.start()
    w.controls.train.click()
    if not c.busy:
        raise RuntimeError(f"Train did not start: {w.controls.train_problem}")
    loop.exec()
    probe.armed = False
    probe.stop()
    rep = outcome[0] if outcome else RuntimeError("no result")
    if isinstance(rep, Exception):
        raise rep
    if rep.reason != "completed":
        raise RuntimeError(f"the GUI run ended: {rep.reason} {rep.message}")
    w.plots.flush()
    counts["shown"] = w.plots.shown_count("G_A")
    w.close()
    w.deleteLater()
    app.processEvents()
    its, n, secs = its_from_points(points, warmup)
    threads = worker_threads[0] if worker_threads else -1
    return PathResult("gui", its, n, secs, threads, time.perf_counter() - t_wall), probe.lateness, counts


# --- driver ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m gui.bench", description=__doc__.split("\n\n")[0].replace("``", ""),
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--steps", type=positive_int, default=60, help="timed steps per run (default 60)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of each run (default 5)")
    p.add_argument("--rounds", type=positive_int, default=2,
                   help="runs per path, alternating CLI, GUI, GUI, CLI, … (default 2)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch intra-op threads for both paths (default: half the cores, as the smoke mode)")
    p.add_argument("--data", nargs=2, metavar=("DIR_A", "DIR_B"),
                   help="image folders (default: a small demo dataset in a temporary folder)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return p


def bench_config(args):
    """--preset/--config/--set, with the bench's report cadence unless --set overrides it."""
    cfg = load_config(argparse.Namespace(**{**vars(args), "steps": None}))
    given = {s.split("=", 1)[0].strip() for s in (args.set or [])}
    defaults = {k: v for k, v in BENCH_DEFAULTS.items() if k not in given}
    threads = args.threads or max(1, (os.cpu_count() or 2) // 2)
    if cfg.model.netG == "auto" and "netG" not in given:  # both paths time one generator: the slowest family
        defaults["netG"] = "resnet"
    return cfg.with_values(**defaults, threads=threads, max_steps=args.warmup + args.steps,
                           val_fraction=0.0, val_min=0)


def _order(rounds: int) -> list[str]:
    """CLI, GUI, GUI, CLI, CLI, GUI, …: each path as often first as second."""
    out = []
    for r in range(rounds):
        out += ["cli", "gui"] if r % 2 == 0 else ["gui", "cli"]
    return out


def run(args) -> BenchReport:
    cfg = bench_config(args)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="cyclegan-gui-bench-"))
    try:
        if args.data:
            data = (args.data[0], args.data[1])
        else:
            make_demo_dataset(tmp / "demo", n_train=24, n_test=4, size=max(64, cfg.data.load_size))
            data = (str(tmp / "demo" / "trainA"), str(tmp / "demo" / "trainB"))
        app = QApplication.instance()
        if app is None:  # run as a script: the app's own look (a test's application is left as it is)
            app = QApplication([sys.argv[0]])
            configure_app(app)
        results: list[PathResult] = []
        lateness: list[float] = []
        counts = {"reports": 0, "previews": 0}
        for i, path in enumerate(_order(args.rounds)):
            run_dir = tmp / f"run-{i}-{path}"
            if path == "cli":
                results.append(run_cli(cfg, data, run_dir, args.warmup))
            else:
                res, late, c = run_gui(cfg, data, run_dir, args.warmup)
                results.append(res)
                lateness += late
                counts = {k: counts.get(k, 0) + c.get(k, 0) for k in ("reports", "previews")}
            r = results[-1]
            log.info("%s: %.3f it/s over %d steps (%.1f s), torch threads %d", r.path, r.its_per_s,
                     r.steps_timed, r.seconds, r.threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cli = [r for r in results if r.path == "cli"]
    gui = [r for r in results if r.path == "gui"]
    # Rate of the pooled runs: total steps over total time, so a longer run weighs more.
    cli_its = sum(r.steps_timed for r in cli) / sum(r.seconds for r in cli)
    gui_its = sum(r.steps_timed for r in gui) / sum(r.seconds for r in gui)
    threads = {r.threads for r in results}
    if len(threads) != 1:
        raise RuntimeError(f"the two paths trained with different thread counts: {sorted(threads)}")
    p50, p99, mx = latency_stats(lateness)
    ratio = gui_its / cli_its

    return BenchReport(
        preset=args.preset or "cpu-quick", device=str(resolve_device(cfg.output.device)), threads=threads.pop(),
        steps=args.steps, warmup=args.warmup, batch_size=cfg.data.batch_size, crop_size=cfg.data.crop_size,
        log_every=cfg.schedule.log_every, preview_every=cfg.schedule.preview_every,
        cli_its_per_s=cli_its, gui_its_per_s=gui_its, ratio=ratio, ratio_ok=ratio >= TARGET_RATIO,
        latency_p50_ms=p50, latency_p99_ms=p99, latency_max_ms=mx, latency_ticks=len(lateness),
        latency_ok=p99 < TARGET_P99_MS, load_avg_before=tuple(round(x, 2) for x in load_before),
        load_avg_after=tuple(round(x, 2) for x in os.getloadavg()), gui_reports=counts["reports"],
        gui_previews=counts["previews"], runs=[asdict(r) for r in results])


def format_report(r: BenchReport) -> str:
    def ok(flag: bool) -> str:
        return "ok" if flag else "MISSED"

    cli_runs = ", ".join(f"{x['its_per_s']:.3f}" for x in r.runs if x["path"] == "cli")
    gui_runs = ", ".join(f"{x['its_per_s']:.3f}" for x in r.runs if x["path"] == "gui")
    return "\n".join([
        f"gui.bench: preset {r.preset}, {r.batch_size}×{r.crop_size} px, {r.steps} timed steps after {r.warmup} "
        f"warm-up, {r.device}, torch threads {r.threads} in both paths",
        f"  reports every {r.log_every} step(s), previews every {r.preview_every}; load average "
        f"{r.load_avg_before[0]:.2f} before, {r.load_avg_after[0]:.2f} after",
        f"  CLI (Trainer.run, no Qt)        {r.cli_its_per_s:8.3f} it/s   runs: {cli_runs}",
        f"  GUI (MainWindow + worker)       {r.gui_its_per_s:8.3f} it/s   runs: {gui_runs}",
        f"  ratio GUI/CLI                   {r.ratio:8.3f}        target ≥ {TARGET_RATIO}: {ok(r.ratio_ok)}",
        f"  event-loop latency ({PROBE_MS} ms timer, {r.latency_ticks} ticks): p50 {r.latency_p50_ms:.1f} ms, "
        f"p99 {r.latency_p99_ms:.1f} ms, max {r.latency_max_ms:.1f} ms   target p99 < {TARGET_P99_MS:g} ms: "
        f"{ok(r.latency_ok)}",
    ])


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if args.warmup < 0:
            raise UsageError("python -m gui.bench: --warmup must be ≥ 0")
        logging.basicConfig(level=logging.WARNING if args.json else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        report = run(args)
    except (UsageError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
