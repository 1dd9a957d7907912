"""The training loop and its controls.

``Trainer.run()`` is a generator: each ``yield`` is a step boundary where the caller may
stop or pause, and what it yields is a frozen report (``engine.training.reports``). The
trainer knows nothing about threads or widgets; ``pause``/``resume``/``stop``/``request_save``
(``Controls``) are thread-safe requests that take effect at the next step boundary.

It drives ``TrainingState`` (networks, optimisers, pools), ``CycleGANStep`` (the paper's maths),
``Schedule``, ``Evaluator``, ``Reporter``, ``StateSaver``/``BestKeeper``, ``RunFolder`` and ``FaultTally``;
it rolls back after repeated numerical faults (``rollback``) and stops with advice when out of memory.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from engine import __version__
from engine.config import Config
from engine.data import ImageFolder, UnpairedBatches, open_domains
from engine.devices import resolve_device
from engine.errors import CheckpointError, DataGoneError
from engine.io.checkpoint_files import load_checkpoint
from engine.io.run_folder import RunFolder
from engine.models.channel_order import ORDERS, read_channel_order, sample_colours
from engine.training import tb
from engine.training.cadence import Reporter
from engine.training.controls import Controls
from engine.training.distributed import SINGLE, DistInfo, agree_each, broadcast_choice
from engine.training.evaluation import Evaluator
from engine.training.faults import MAX_CONSECUTIVE_FAULTS, FaultTally
from engine.training.reports import FinishedReport, ProgressWindow, Report, WarningReport
from engine.training.saving import BestKeeper, StateSaver, resume_point
from engine.training.schedule import Schedule, fast_start_multiplier
from engine.training.speed import SpeedOptions
from engine.training.state import TrainingState
from engine.training.step import CycleGANStep, StepResult

log = logging.getLogger(__name__)

_ORDER_IMAGES = 64  # training images per domain, spread over the folder, whose colours the channel order is read from

__all__ = ["Trainer"]


class Trainer(Controls):
    """Trains CycleGAN on two ImageFolders. See the module docstring for the contract."""

    def __init__(self, config: Config, dataset_a: ImageFolder, dataset_b: ImageFolder,
                 device: str | torch.device | None = None, run_dir: str | Path | None = None,
                 *, ground_truth: Any = None, dist_info: DistInfo = SINGLE, data_paths: tuple[str, str] = ("", "")):
        super().__init__()
        if config.model.netG == "auto":
            raise ValueError("netG='auto' is a search over generator families: open it with "
                             "engine.training.search.open_trainer, which tries each and trains the one kept")
        cfg, d, seed = config, config.data, config.schedule.seed
        self.cfg, self.dist, self.data_paths = cfg, dist_info, data_paths
        self.device = device if isinstance(device, torch.device) else resolve_device(device or cfg.output.device)
        # Only rank 0 writes metrics, previews and checkpoints.
        self.run_folder = RunFolder(run_dir) if run_dir is not None and dist_info.is_main else None
        if cfg.output.threads:
            torch.set_num_threads(cfg.output.threads)

        # Held-out images are never trained on; each rank trains on its own disjoint shard of the rest.
        split = dict(val_fraction=d.val_fraction, val_min=d.val_min, seed=seed,
                     shard=(dist_info.rank, dist_info.world_size))
        self.train_a, self.val_a = dataset_a.training_split(**split)
        self.train_b, self.val_b = dataset_b.training_split(**split)
        cfg = self.cfg = self._resolve_map_order(cfg)
        batch = dict(batch_size=d.batch_size, crop_size=d.crop_size, flip=d.flip, device=self.device)
        self.batches = UnpairedBatches(self.train_a, self.train_b, seed=seed, **batch)
        self.data_scale = {"A": self.train_a.scale(), "B": self.train_b.scale()}
        self.schedule = Schedule(cfg, self.batches.steps_per_epoch)
        self.total_steps = self.schedule.total_steps

        self.state = TrainingState(cfg, self.device, dist_info)
        self.speed = SpeedOptions(cfg, self.device)
        self.speed.prepare(self.state.generators, self.state.critics)
        # Extra critic updates (Wasserstein, n_critic > 1) draw fresh batches from a stream of their own.
        critic_batches = UnpairedBatches(self.train_a, self.train_b, seed=seed + 7919, **batch)
        self.step_fn = CycleGANStep(cfg, self.state, self.speed, dist_info, critic_batches,
                                    ema_decay=lambda step: self.schedule.ema_decay_for(step, self._now),
                                    cycle_scale=lambda step: self.schedule.cycle_scale(step, self._now))
        self.evaluator = Evaluator(cfg, self.state, self.step_fn.objective, self.speed,
                                   (self.train_a, self.train_b), (self.val_a, self.val_b), ground_truth)
        self.checkpoints = (StateSaver(self.state, self.run_folder, cfg.schedule.keep_checkpoints, self._payload_meta)
                            if self.run_folder is not None else None)
        guard = cfg.schedule.restore_on_drift and cfg.is_per_pixel
        self.best = BestKeeper(self.checkpoints, cfg.schedule.plateau_evals, cfg.schedule.stop_on_plateau,
                               snapshot=self._direction_snapshot if guard or self.checkpoints is not None else None,
                               by_structure=not cfg.is_per_pixel, guard=guard)
        self.reporter = Reporter(cfg, self.schedule, self.batches, self.evaluator, self.best, self.run_folder,
                                 is_main=dist_info.is_main, elapsed=self.elapsed, on_plateau=self._stop_on_plateau,
                                 on_drift=self._restore_best_and_stop,
                                 save=self._checkpoint_report if self.checkpoints is not None else None)
        self.faults = FaultTally()
        self.data_wait_s = 0.0  # time run() spent waiting for batches (the benchmark reads it)
        self._session_start: float | None = None  # perf_counter at the start of this run() session
        self._now = 0.0  # training seconds as read at the top of the current step
        self._stop_reason = "stopped"
        self.search_record: dict[str, Any] | None = None  # how the auto family search chose this run's family
        # Reports made before this trainer ran (the family search's choice and the chosen family's trial): logged
        # and yielded first, once the run folder is locked and prepared.
        self.prelude: list[Report] = [self.order_note] if self.order_note is not None else []

    def _resolve_map_order(self, cfg: Config) -> Config:
        """``cfg`` with ``map_order`` ``auto`` replaced by the order read from the training images (rank 0's, on every
        rank); unchanged where no map starts fitted (the ResNet, a random start) or an order is set."""
        m = cfg.model
        self.order_note: WarningReport | None = None  # a note for the user where the maps start reordered
        if not (cfg.is_per_pixel and m.map_start == "identity" and m.map_order == "auto"):
            return cfg
        seed = cfg.schedule.seed

        def colours(ds: ImageFolder, seed: int) -> torch.Tensor:
            picks = np.linspace(0, len(ds) - 1, min(len(ds), _ORDER_IMAGES)).round().astype(int)
            return sample_colours([ds.get(int(i)) for i in dict.fromkeys(picks)], seed=seed)

        reading = read_channel_order(colours(self.train_a, seed), colours(self.train_b, seed + 1), seed=seed)
        order = reading.order
        if self.dist.enabled:
            order = ORDERS[broadcast_choice(ORDERS.index(order), self.device)]
        log.info("channel order: %s", reading.describe())
        if order != "rgb":
            text = reading.describe() if order == reading.order else f"the colour maps start in channel order {order}"
            self.order_note = WarningReport(0, "channel-order", text[0].upper() + text[1:], severity="info", hint=(
                "Your folders' colours look like each other with the channels swapped or rotated. To start from "
                "the untouched colours instead: Model ▸ Colour/local channel order = rgb (--set map_order=rgb)."))
        return cfg.with_values(map_order=order)

    @classmethod
    def from_folders(cls, config: Config, path_a, path_b, run_dir=None, device=None,
                     dist_info: DistInfo = SINGLE, ground_truth: Any = None) -> "Trainer":
        ds_a, ds_b = open_domains(path_a, path_b, config)
        return cls(config, ds_a, ds_b, device=device, run_dir=run_dir, ground_truth=ground_truth, dist_info=dist_info,
                   data_paths=(str(Path(path_a).resolve()), str(Path(path_b).resolve())))

    @classmethod
    def resume_run(cls, run_dir, device=None, *, max_steps: int | None = None,
                   data_paths: tuple[str, str] | None = None, dist_info: DistInfo = SINGLE,
                   ground_truth_for: Callable[[str, Config], Any] | None = None) -> "Trainer":
        """Rebuild a trainer from a run folder's latest checkpoint and its data folders."""
        ck, cfg, paths = resume_point(run_dir, max_steps, data_paths)
        gt = ground_truth_for(paths[0], cfg) if ground_truth_for is not None and dist_info.is_main else None
        trainer = cls.from_folders(cfg, *paths, run_dir=run_dir, device=device, dist_info=dist_info, ground_truth=gt)
        trainer.load_state(ck, str(run_dir))
        return trainer

    run_dir = property(lambda self: self.run_folder.path if self.run_folder is not None else None)

    step = property(lambda self: self.state.step)

    def elapsed(self) -> float:
        """Training seconds of the whole run so far (pauses excluded)."""
        now = time.perf_counter() - self._session_start if self._session_start is not None else 0.0
        return self.state.elapsed_s + now

    def exclude_time(self, seconds: float) -> None:
        """Do not count the last ``seconds`` as training time (a caller's own work between two steps)."""
        if self._session_start is not None:
            self._session_start += seconds
            self._window.start += seconds

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> StepResult:
        """One generator update and the critic update(s) that go with it. Mutates the models."""
        return self.step_fn(real_a, real_b)

    def load_state(self, ck: dict[str, Any], source: str = "checkpoint") -> None:
        self.state.restore(ck, source, self.device)
        self.best.load_state_dict(ck.get("best", {}))
        if self.checkpoints is not None and self.checkpoints.best.is_file():
            try:  # each direction's kept weights: best.pt holds them (a later pick of one keeps the other's)
                self.best.adopt(load_checkpoint(self.checkpoints.best))
            except CheckpointError as e:
                log.warning("%s: not read (%s); a direction's next pick rewrites it", self.checkpoints.best, e)
        if isinstance(ck.get("family_search"), dict):
            self.search_record = ck["family_search"]
        if self.evaluator.monitor is not None and "monitor" in ck:
            self.evaluator.monitor.load_state_dict(ck["monitor"])
        self.faults.total = self.state.fault_count
        if self.checkpoints is not None:
            self.checkpoints.saved_step = self.step

    # --- the loop ------------------------------------------------------------------------------------
    def run(self, stop_at: int | None = None) -> Iterator[Report]:
        """Train until ``stop_at`` (default: the end of the schedule), yielding reports. Holds the run
        folder's lock throughout (``RunLockedError`` if another process writes it)."""
        try:
            lock = self.run_folder.lock() if self.run_folder is not None else None
        except OSError as e:  # the folder cannot be created (RunLockedError, another writer, propagates)
            yield FinishedReport(self.step, "error", f"cannot write the run folder: {e}")
            return
        try:
            yield from tb.logged(self._run(stop_at), self.run_dir, self.cfg.output.tensorboard)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, stop_at: int | None) -> Iterator[Report]:
        end = stop_at if stop_at is not None else math.inf
        self._session_start = time.perf_counter()
        if self.run_folder is not None:
            try:
                self.run_folder.prepare(self.cfg, {"version": __version__, "data": list(self.data_paths),
                                                   "device": str(self.device), "total_steps": self.total_steps,
                                                   "minutes": self.cfg.schedule.minutes, "scale": self.data_scale},
                                         self.step)
            except (OSError, CheckpointError) as e:
                yield FinishedReport(self.step, "error", f"cannot write the run folder: {e}")
                return
        for rep in self.prelude:
            if self.run_folder is not None and hasattr(rep, "metrics_row"):  # a note (WarningReport) has no row
                kind, values = rep.metrics_row()
                self.run_folder.append_metrics(kind, rep.step, getattr(rep, "elapsed_s", self.elapsed()), values)
            yield rep
        self.prelude = []
        self._window = ProgressWindow(time.perf_counter())
        reason, message = "completed", ""
        batches = self.batches.prefetch(self.step)
        for net in (*self.state.critics, self.state.G, self.state.F):
            net.train()
        try:
            while self.step < end:
                yield from self._step_boundary()
                session_s = time.perf_counter() - self._session_start  # the clock, read once per step
                self._now = elapsed = self.state.elapsed_s + session_s
                done = self.schedule.done(self.step, elapsed)
                stop, time_up = self.stopping, self.schedule.out_of_time(session_s)
                if self.dist.enabled:  # all ranks stop at the same step, or the collectives would hang: each rank
                    done, stop, time_up = agree_each((done, stop, time_up), self.device)  # reads its own clock
                if done:
                    break
                if stop or time_up:
                    minutes = self.cfg.schedule.time_limit
                    reason, message = ((self._stop_reason, "") if stop else
                                       ("time-limit", f"time limit of {minutes:g} min reached"))
                    break
                try:
                    t_wait = time.perf_counter()
                    real_a, real_b = next(batches)
                    self.data_wait_s += time.perf_counter() - t_wait
                except DataGoneError as e:
                    reason, message = "error", str(e)
                    break
                lr = self.state.set_lr(self.schedule.lr_multiplier(self.step, elapsed),
                                       fast_start_multiplier(self.step, self.cfg.fast_start))
                try:
                    result = self.train_step(real_a, real_b)
                except torch.OutOfMemoryError:
                    reason, message = "error", self.out_of_memory()
                    break
                self.state.step += 1
                self._window.steps += 1
                self.faults.record(result.faulted)
                self.state.fault_count = self.faults.total
                if result.faulted:
                    yield self.faults.warning(self.step)
                    if self.faults.needs_rollback:
                        yield self.rollback()
                    continue
                self._window.add(result.metrics)
                yield from self.reporter.after_step(self.step, lr, self._window, self.step == end)
        finally:
            batches.close()
        yield from self._final_reports(reason, message)

    def _step_boundary(self) -> Iterator[Report]:
        """Pause here while asked to (saving on request meanwhile), and honour a save request."""
        save = self._checkpoint_report if self.checkpoints is not None else None
        paused_s = yield from self.wait_while_paused(save)
        self._session_start += paused_s  # time paused is not training time
        self._window.start += paused_s
        if self.take_save_request() and save is not None:
            yield save()

    # --- numerical faults and memory ----------------------------------------------------------------
    def rollback(self) -> WarningReport:
        """After ``MAX_CONSECUTIVE_FAULTS`` skipped updates in a row: back to the last checkpoint, at
        half the learning rate. The tally of faults survives the rollback."""
        state, ckpts = self.state, self.checkpoints
        new_scale, total = state.lr_scale * 0.5, self.faults.total
        restored = False
        if ckpts is not None and ckpts.latest.exists():
            try:
                self.load_state(load_checkpoint(ckpts.latest, self.device), str(ckpts.latest))
                restored = True
            except CheckpointError as e:
                log.warning("rollback failed: %s", e)
        state.lr_scale, state.fault_count, self.faults = new_scale, total, FaultTally(total)
        where = f"rolled back to step {state.step}" if restored else "no checkpoint to roll back to"
        return WarningReport(state.step, "rollback", f"{MAX_CONSECUTIVE_FAULTS} numerical faults in a row: {where}; "
                             f"learning rate halved (now ×{state.lr_scale:g})",
                             "Training continues at the lower learning rate.")

    def out_of_memory(self) -> str:
        """Free what the device cache holds and say what to change."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        d = self.cfg.data
        return (f"out of memory at crop_size={d.crop_size}, batch_size={d.batch_size}: "
                "try a smaller crop size or batch size")

    # --- the end of a session --------------------------------------------------------------------------
    def _final_reports(self, reason: str, message: str) -> Iterator[Report]:
        checkpoint = None
        if self.checkpoints is not None:
            if reason == "completed" and self.checkpoints.up_to_date():
                checkpoint = str(self.checkpoints.latest)
            else:
                rep = self._checkpoint_report()
                yield rep
                checkpoint = getattr(rep, "path", None)
        # the end is always shown, also when the session made no step of its own (auto's trials used the budget)
        if reason in ("completed", "drifted") and self.reporter.last_preview != self.step and self.dist.is_main:
            yield self.reporter.preview(self.step)
        self.state.elapsed_s, self._session_start = self.elapsed(), None
        yield FinishedReport(self.step, reason, message, checkpoint)

    def _payload_meta(self) -> dict[str, Any]:
        monitor = self.evaluator.monitor
        extra = {"best": self.best.state_dict(), **({"monitor": monitor.state_dict()} if monitor else {}),
                 **({"family_search": self.search_record} if self.search_record else {})}
        return {"epoch": self.batches.epoch_of(self.step), "total_steps": self.total_steps, "elapsed_s": self.elapsed(),
                "data_paths": self.data_paths, "data_scale": self.data_scale, "extra": extra}

    def _stop_on_plateau(self) -> None:
        self._stop_reason = "plateau"
        self.stop()

    def _direction_snapshot(self, way: str) -> dict[str, dict[str, torch.Tensor]]:
        """Copies (on the CPU) of one direction's generator weights and its average's, for best.pt and the drift
        guard (``BestKeeper.kept``)."""
        return {name: {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                for name, net in self.state.direction_nets(way).items()}

    def _restore_best_and_stop(self) -> None:
        """The drift guard's action: best.pt's generators (and averages), each direction's from its own pick, back,
        and the run ends there. The optimisers keep their moments: the run is over, and a resumed one goes on from
        the restored weights."""
        for way, (_, weights) in self.best.kept.items():
            nets = self.state.direction_nets(way)
            for name, sd in weights.items():
                nets[name].load_state_dict(sd)
        self.reporter.restored_from = self.best.describe()  # the last preview is of these: says so
        self._stop_reason = "drifted"
        self.stop()

    def _checkpoint_report(self) -> Report:
        rep = self.checkpoints.save_report()
        if isinstance(rep, WarningReport):
            self.pause()  # a full disk or a read-only folder: the user can free space, then resume
        return rep
