"""The ``auto`` generator family: try each family on the user's own folders, keep the one whose translations
come closest to the target, and train it for the rest of the budget.

1. Each family of ``FAMILIES`` trains for ``search_share`` of the budget (of its minutes, or of its steps
   under a step or epoch budget), as a trainer of its own that writes nothing, in ``TRIAL_ORDER``. The colour
   map trains first, for twice that, then the ResNet. If the ResNet is already the closer to the target (the
   reading and rule of 2 and 3) and closer than the untranslated images, the search ends there: the local
   generator is not tried and the colour map trains no further, so a ResNet that wins this early drops two
   shares, as a colour map that wins does, where it would drop four at the end. Where it is ahead but the rule
   sets it aside for now (the colour map's move away from the target is within its interval), the local
   generator starts from the colour map (``graft``) and trains half a share, and the colour map no further: a
   ResNet kept in the end drops two and a half shares. Otherwise the local generator starts from the colour map
   while the colour map trains on alone for as long, so the two are compared at equal time, and every family is
   read at the end of its trial.
2. Held-out crops at the images' own resolution (the scale a user translates at) are translated by each
   candidate and compared with the real held-out targets, in both directions, by a multi-scale sliced
   Wasserstein distance (``engine.wasserstein.structure``: colour, structure and detail count, where the
   monitor's 8-px patches hardly see blur), its three bands weighed alike (their geometric mean: a family
   that closes the gap in colour cannot hide that it doubled it in detail). No ground truth is used. A
   candidate's score is its distance over the untranslated sources' (``start``), averaged over the two
   directions, with a paired bootstrap 95 % interval.
3. The lowest score wins, unless a family that changes the picture less (earlier in ``FAMILIES``) cannot be
   told from it (the 95 % interval of their paired difference reaches 0): then the family that keeps more of
   the picture is chosen, and the report says so (the rule: ``engine.training.family_choice``).
4. A trainer of the winner's config, writing the run folder, takes over the candidate's state (weights,
   optimisers, averages, pools, steps and time) and trains to the end of the budget; the dropped candidates
   cost their shares.

``FamilySearch`` stands where a ``Trainer`` stands for its callers (the CLI, the app's worker, ``quality``):
``run()`` yields reports, and pause, resume, stop and save reach whichever trainer is running. A stop during
the search still chooses among the candidates tried so far, and saves the winner, so nothing is lost.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from engine.config import Config
from engine.data import ImageFolder, open_domains
from engine.training.controls import Controls
from engine.training.distributed import SINGLE, DistInfo, agree_any, broadcast_choice, broadcast_value
from engine.training.family_choice import (
    FAMILIES,
    REDRAWS,
    TRIAL_ORDER,
    brightness_order,
    cannot_follow,
    choose,
    describe_choice,
    indistinct,
    inversion_warning,
    set_aside,
)
from engine.training.reports import (
    FamilyCandidate,
    FamilyChoiceReport,
    FamilyTrialReport,
    FinishedReport,
    ProgressReport,
    Report,
    WarningReport,
)
from engine.training.trainer import Trainer
from engine.wasserstein.monitor import WAYS, WMonitor
from engine.wasserstein.structure import READING, structure_distances

log = logging.getLogger(__name__)

# FAMILIES, TRIAL_ORDER, choose and describe_choice live in engine.training.family_choice; imported here for callers
# of the search.
__all__ = ["FAMILIES", "TRIAL_ORDER", "FamilySearch", "choose", "describe_choice", "open_trainer", "family_config",
           "graft"]

_QUIET = {"eval_every": 1_000_000, "preview_every": 1_000_000, "save_every": 1_000_000}  # a trial writes nothing
_HELD_OUT_IMAGES = 32  # per domain, at most, for the selection monitor
_AHEAD, _WITHHELD = "ahead", "withheld"  # the early reading's verdicts on the ResNet (see _early_reading)
_VERDICTS = ("", _AHEAD, _WITHHELD)


def family_config(cfg: Config, family: str) -> Config:
    """``cfg`` with its generator family pinned to ``family`` (everything else as the user set it)."""
    return cfg.with_values(netG=family)


def open_trainer(cfg: Config, path_a, path_b, run_dir=None, device=None, *, dist_info: DistInfo = SINGLE,
                 ground_truth: Any = None) -> Trainer | FamilySearch:
    """The trainer for ``cfg`` on two folders: a ``Trainer`` for a generator family, a ``FamilySearch`` for auto."""
    ds_a, ds_b = open_domains(path_a, path_b, cfg)
    kind = FamilySearch if cfg.model.netG == "auto" else Trainer
    return kind(cfg, ds_a, ds_b, device=device, run_dir=run_dir, ground_truth=ground_truth, dist_info=dist_info,
                data_paths=(str(Path(path_a).resolve()), str(Path(path_b).resolve())))


class FamilySearch(Controls):
    """Trains ``cfg`` (``netG="auto"``) as described in the module docstring."""

    def __init__(self, cfg: Config, dataset_a: ImageFolder, dataset_b: ImageFolder, device=None, run_dir=None, *,
                 ground_truth: Any = None, dist_info: DistInfo = SINGLE, data_paths: tuple[str, str] = ("", "")):
        super().__init__()
        if cfg.model.netG != "auto":
            raise ValueError(f"FamilySearch is for netG='auto', not {cfg.model.netG!r}")
        self.cfg, self.run_dir_arg, self.gt, self.dist = cfg, run_dir, ground_truth, dist_info
        self.data_paths = data_paths
        self._datasets: dict[str | None, tuple[ImageFolder, ImageFolder]] = {}
        self._keep_datasets(cfg.with_values(netG="resnet"), dataset_a, dataset_b)
        # The winner's trainer needs a family to exist before run(): the first candidate stands in until then.
        self.active: Trainer = self._trainer(FAMILIES[0], trial=True, device=device)
        # The maps' channel order, read by that first per-pixel trainer, holds for every candidate after it.
        # (Its note, where the maps start reordered, is the first report of the colour map's trial.)
        self.cfg = cfg.with_values(map_order=self.active.cfg.model.map_order)
        self.device = self.active.device
        self.train_a, self.val_a, self.train_b, self.val_b = (self.active.train_a, self.active.val_a,
                                                               self.active.train_b, self.active.val_b)
        self.total_steps = self.active.total_steps
        self.candidates: list[FamilyCandidate] = []
        self.choice: FamilyChoiceReport | None = None
        # Called with (family, trainer) at the end of each trial (for the colour map where the early reading ends
        # the search: after that reading); its time is not the search's (``quality`` scores each candidate against
        # the truth here).
        self.trial_hook: Callable[[str, Trainer], None] | None = None
        self._spent = 0.0  # training seconds of the whole search so far (its measuring included)
        # Each candidate's lineage: the training seconds and progress reports that went into its weights.
        self._own: dict[str, float] = {}
        self._history: dict[str, list[ProgressReport]] = {}
        self._translations: dict[str, dict[str, torch.Tensor]] = {}  # way → family → its translated crops
        self._monitor: WMonitor | None = None  # the held-out crops the candidates are compared on
        self._trial_steps: dict[str, int] = {}
        self._readings: dict[str, dict[str, tuple[float, np.ndarray]]] = {}  # way → family → (distance, replicates)
        self._verdict = ""  # the early reading's on the ResNet: _AHEAD, _WITHHELD or "" (see _early_reading)
        self._halted = False  # a stop reached the search by the end of the last session (on every rank alike)

    # --- what callers read, from whichever trainer is running -----------------------------------------------
    state = property(lambda self: self.active.state)
    evaluator = property(lambda self: self.active.evaluator)
    schedule = property(lambda self: self.active.schedule)
    speed = property(lambda self: self.active.speed)
    step = property(lambda self: self.active.step)
    data_scale = property(lambda self: self.active.data_scale)
    run_dir = property(lambda self: Path(self.run_dir_arg) if self.run_dir_arg is not None else None)

    def elapsed(self) -> float:
        return self.active.elapsed()

    def exclude_time(self, seconds: float) -> None:
        self.active.exclude_time(seconds)

    def pause(self) -> None:
        super().pause()
        self.active.pause()

    def resume(self) -> None:
        super().resume()
        self.active.resume()

    def stop(self) -> None:
        super().stop()
        self.active.stop()

    def request_save(self) -> None:
        self.active.request_save()  # during the search: nothing is written until a family is chosen

    # --- building -------------------------------------------------------------------------------------------
    def _keep_datasets(self, cfg: Config, a: ImageFolder, b: ImageFolder) -> None:
        self._datasets[cfg.preprocess_in_force] = (a, b)

    def _domains(self, cfg: Config) -> tuple[ImageFolder, ImageFolder]:
        """The folders as ``cfg`` reads them (each family at its own scale), opened once per scale."""
        key = cfg.preprocess_in_force
        if key not in self._datasets:
            a, b = self._datasets[next(iter(self._datasets))]
            self._datasets[key] = open_domains(a.root, b.root, cfg)
        return self._datasets[key]

    def _trainer(self, family: str, *, trial: bool, device=None) -> Trainer:
        cfg = family_config(self.cfg, family)
        a, b = self._domains(cfg)
        if trial:  # writes nothing and evaluates nothing; each session's length is set by _train
            return Trainer(cfg.with_values(_QUIET), a, b, device=device, run_dir=None, dist_info=self.dist,
                           data_paths=self.data_paths)
        return Trainer(cfg, a, b, device=device, run_dir=self.run_dir_arg, ground_truth=self.gt, dist_info=self.dist,
                       data_paths=self.data_paths)

    def _selection_monitor(self) -> tuple[WMonitor | None, str]:
        """The held-out images at their own resolution, cut into the monitor's crops and patches, for every
        candidate (training images when fewer than two per domain are held out)."""
        a, b = self._domains(self.cfg.with_values(netG="colour"))
        d = self.cfg.data
        split = dict(val_fraction=d.val_fraction, val_min=d.val_min, seed=self.cfg.schedule.seed)
        (train_a, val_a), (train_b, val_b) = a.training_split(**split), b.training_split(**split)
        source = "held-out"
        if len(val_a) < 2 or len(val_b) < 2:
            val_a, val_b, source = train_a, train_b, "training"
        if len(val_a) < 2 or len(val_b) < 2:
            return None, "too few images to compare the families"
        pick = lambda ds: [ds.get(i) for i in range(min(len(ds), _HELD_OUT_IMAGES))]  # noqa: E731
        held_a, held_b = pick(val_a), pick(val_b)
        crop = min(self.cfg.data.crop_size, *(min(t.shape[-2:]) for t in held_a + held_b)) // 4 * 4
        return WMonitor(held_a, held_b, crop=crop, seed=self.cfg.schedule.seed, device=self.device), source

    # --- the run ---------------------------------------------------------------------------------------------
    def run(self, stop_at: int | None = None) -> Iterator[Report]:
        t0 = time.perf_counter()
        monitor, source = self._selection_monitor() if self.dist.is_main else (None, "")
        self._monitor = monitor
        self._spent += time.perf_counter() - t0  # building the monitor is part of the search's cost
        share = self.cfg.schedule.search_share
        colour = self.active
        trainers: dict[str, Trainer] = {"colour": colour}
        yield from self._train(colour, "colour", 2 * share, of=(0.0, 3 * share))
        if not self._halted:
            resnet = trainers["resnet"] = self._trainer("resnet", trial=True, device=self.device)
            yield from self._train(resnet, "resnet", share)
            self._candidate(monitor, "resnet", resnet)
            if self._halted:  # stopped during the ResNet's trial: the colour map's trial ends at two shares
                self._candidate(monitor, "colour", colour)
            else:  # so it does where the ResNet is already the closer, or closer but set aside for now
                self._verdict = self._early_reading(monitor, colour)
                if self._verdict:
                    self._candidate(monitor, "colour", colour, translated=True)
        if not self._halted and self._verdict != _AHEAD:  # the local generator takes the colour map over and learns
            local = trainers["local"] = self._trainer("local", trial=True, device=self.device)  # detail on top of it,
            graft(colour, local)  # while the colour map trains on alone for as long (the two compared at equal time),
            self._own["local"], self._history["local"] = self._own["colour"], list(self._history["colour"])
            if self._verdict != _WITHHELD:  # except where the ResNet was set aside at the early reading
                yield from self._train(colour, "colour", share, of=(2 * share, 3 * share))
                self._candidate(monitor, "colour", colour)
            if not self._halted:  # where the ResNet was withheld, half a share: whether the local can follow
                yield from self._train(local, "local", share / 2 if self._verdict == _WITHHELD else share)
                self._candidate(monitor, "local", local)
        if monitor is not None and self._translations and not self.candidates:
            self.candidates = self._read(monitor)
        yield from self._choose_and_continue(trainers, source, stop_at)

    def _early_reading(self, monitor: WMonitor | None, colour: Trainer) -> str:
        """The early reading, after the ResNet's trial and two shares of the colour map's. ``_AHEAD``: the ResNet is
        already the closer beyond the paired interval, its whole interval below 1 (closer to the target than the
        untranslated images), and the colour map moves the translations away from the target beyond its interval
        (``choose``'s ``early``). Then the local generator (the colour map with a few pixels' reach) is not tried
        and the colour map trains no further: on every task where the ResNet won the search, both lost to it, and
        their shares would be budget dropped. The interval below 1 keeps a colour map that is still finding its
        way (a few dozen steps: the demo's at 42 read about 1.5, farther than the untranslated images) from handing
        the run to a ResNet that has learned nothing yet (0.97, a pale blur), unless the colour map, trained long
        enough to judge, has moved away from the target beyond its interval (``cannot_follow``): then the ResNet is
        the only family left that may follow the change (the pencil sketch at 3 minutes without native bf16: the
        ResNet 1.02 [0.84, 1.18] after 22 steps, the colour map 1.29 [1.01, 1.41] after 265).

        ``_WITHHELD``: the same, except that the colour map's move away is not beyond its interval. Whether a
        family that keeps the picture can follow the change is then still open, and the local generator is tried,
        but for half a share from the colour map's two, and the colour map trains no further: a family that keeps
        the picture, kept in the end, has dropped one share, not two (the small blur at 10 minutes: 46 s of 600
        where it was 89, the local generator kept either way), and a ResNet kept in the end two and a half, not
        four. "" otherwise (a paired tie, as on the pencil sketch at 3 minutes): every family is read at the end of
        its trial. Its time is the search's."""
        verdict = ""
        if monitor is not None:
            self._translate(monitor, "colour", colour)
            candidates = self._read(monitor)
            resnet = next(c for c in candidates if c.family == REDRAWS)
            others = [c for c in candidates if c is not resnet]
            ahead = (min(candidates, key=lambda c: c.score) is resnet
                     and (resnet.hi < 1 or all(cannot_follow(c) for c in others))
                     and not any(indistinct(c, resnet) for c in others))
            if ahead:
                verdict = _WITHHELD if set_aside(candidates, early=True) is not None else _AHEAD
            if verdict == _AHEAD:
                self.candidates = candidates
            log.info("early reading, the colour map after two shares and the ResNet after one: %s; %s",
                     ", ".join(f"{c.family} {c.score:.3f} [{c.lo:.3f}, {c.hi:.3f}]" for c in candidates),
                     {_AHEAD: "the ResNet is ahead, the local generator is not tried",
                      _WITHHELD: "the ResNet is ahead, but the colour map may still follow the change: the local "
                                 "generator is tried for half a share, the colour map no further",
                      "": "trying the local generator"}[verdict])
        if self.dist.enabled:  # only the main rank measures: every rank must train the same trials
            verdict = _VERDICTS[broadcast_choice(_VERDICTS.index(verdict), self.device)]
        return verdict

    def _train(self, trainer: Trainer, family: str, share: float, of: tuple[float, float] | None = None
               ) -> Iterator[Report]:
        """One session of a candidate's trial: ``share`` of the budget (of its minutes, or of its steps). ``of``:
        (the share its trial has had before, its trial's whole share), where the trial comes in sessions."""
        before, whole = of or (0.0, share)
        self._agree_clock()
        trainer.state.elapsed_s = self._spent  # the run's clock goes on through every trial
        self.active = trainer
        if self.stopping:  # a stop that came while this session was being set up reached the last one
            trainer.stop()
        elif self.paused:
            trainer.pause()
        steps = None
        if trainer.schedule.timed:
            trainer.schedule.time_limit_s = share * trainer.schedule.budget_s  # this session's length
        else:
            steps = trainer.step + max(1, round(share * trainer.total_steps))
        start, first = trainer.elapsed(), trainer.step
        index = TRIAL_ORDER.index(family)
        history = self._history.setdefault(family, [])
        for rep in trainer.run(stop_at=steps):
            if isinstance(rep, ProgressReport):
                history.append(rep)
                done = ((trainer.step - first) / (steps - first) if steps else
                        (rep.elapsed_s - start) / (share * trainer.schedule.budget_s))
                done = (before + share * min(1.0, done)) / whole  # of the family's whole trial
                yield FamilyTrialReport(rep.step, family, index, len(TRIAL_ORDER), rep.progress, done,
                                        rep.elapsed_s, rep.eta_s, rep.its_per_s, tuple(self.candidates))
            elif isinstance(rep, FinishedReport):
                if rep.reason == "error":
                    log.warning("the %s family's trial failed: %s", family, rep.message)
            elif isinstance(rep, WarningReport):
                yield rep  # the user should hear of a fault in a trial too
        self._own[family] = self._own.get(family, 0.0) + trainer.elapsed() - start
        self._spent = trainer.elapsed()
        self._halted = self.stopping
        if self.dist.enabled:  # a stop may reach one rank only, or one rank a moment later: every rank takes the
            self._halted = agree_any(self._halted, self.device)  # same path through the trials from here
            if self._halted and not self.stopping:
                self.stop()

    def _agree_clock(self) -> None:
        """Every rank takes the main rank's clock of the search, which alone counts the readings' time (each rank's
        trainer ends a timed budget by it)."""
        if self.dist.enabled:
            self._spent = broadcast_value(self._spent, self.device)

    def _candidate(self, monitor: WMonitor | None, family: str, trainer: Trainer, translated: bool = False) -> None:
        """A candidate at the end of its trial: ``trial_hook``, whose time is not the search's, then its translations
        of the held-out sources, kept for the reading (``translated``: they are, from the early reading)."""
        if self.trial_hook is not None:
            self.trial_hook(family, trainer)
        if monitor is not None and not translated:
            self._translate(monitor, family, trainer)

    def _translate(self, monitor: WMonitor, family: str, trainer: Trainer) -> None:
        """``trainer``'s translations of the held-out sources, in both directions (the search's time)."""
        t0 = time.perf_counter()
        for (way, source, _), net in zip(WAYS, trainer.state.inference_generators()):
            self._translations.setdefault(way, {})[family] = monitor.translate_crops(net, source)
            self._readings.get(way, {}).pop(family, None)  # read again: these are new translations
        self._trial_steps[family] = trainer.step
        self._spent += time.perf_counter() - t0

    def _read(self, monitor: WMonitor) -> list[FamilyCandidate]:
        """Every candidate's translations of the held-out sources against the real targets, by the multi-scale
        sliced W (``structure_distances``: detail, structure and colour, the bands' geometric mean), relative to the
        untranslated sources: distance / start, averaged over both directions, with a paired bootstrap interval; in
        ``FAMILIES`` order.
        Only translations not read before are read: a reading depends on nothing else (its resamples of the
        target are seeded), so the early reading's ones for the untranslated sources and the ResNet stand.
        Its time is the search's."""
        t0 = time.perf_counter()
        readings = self._readings
        for way, source, target in WAYS:
            read = readings.setdefault(way, {})
            new = {name: crops for name, crops in {"identity": monitor.crops[source], **self._translations[way]}.items()
                   if name not in read}
            if new:
                read.update(structure_distances(monitor.crops[target], new, seed=self.cfg.schedule.seed,
                                                 combine=READING))
        start = {way: readings[way]["identity"] for way in readings}
        ways = [way for way in readings if start[way][0] > 0]
        candidates = []
        for family in sorted(self._translations[WAYS[0][0]], key=FAMILIES.index):
            # per direction: distance / start, and the same on each resample
            ratio = {w: readings[w][family][0] / start[w][0] for w in ways}
            resampled = {w: readings[w][family][1] / np.maximum(start[w][1], 1e-12) for w in ways}
            away = {w: min(ratio[w], float(np.quantile(resampled[w], 0.025))) for w in ways}  # its interval's low end
            if not ways:
                score, lo, hi = math.inf, math.inf, math.inf
            else:
                score = sum(ratio.values()) / len(ways)
                reps = sum(resampled.values()) / len(ways)
                lo, hi = (float(v) for v in np.quantile(reps, [0.025, 0.975]))
                lo, hi = min(lo, score), max(hi, score)
            candidates.append(FamilyCandidate(family, score, lo, hi,
                                              {way: readings[way][family][0] for way in readings},
                                              {way: start[way][0] for way in readings},
                                              self._trial_steps[family], self._own[family],
                                              tuple(float(r) for r in reps) if ways else (), away))
        self._spent += time.perf_counter() - t0
        return candidates

    def _choose_and_continue(self, trainers: dict[str, Trainer], source: str, stop_at: int | None
                             ) -> Iterator[Report]:
        if self.candidates:
            chosen, resolved, reason = choose(self.candidates)
            if self._verdict == _AHEAD:
                reason += ("; it was already ahead after its trial, against the colour map's first two shares, "
                           "so the local generator (the colour map with a few pixels' reach) was not tried")
            elif self._verdict == _WITHHELD:
                reason += ("; the resnet was already ahead after its trial, against the colour map's first two "
                           "shares, so the colour map trained no further and the local generator was tried for half "
                           "a share")
            if source == "training":
                reason += " (measured on training images: too few are held out)"
        else:  # no monitor (too few images), or stopped before any trial ended: the least-changing family
            chosen, resolved = FAMILIES[0], False
            reason = ("stopped before the families could be compared" if self.stopping else
                      "the families could not be compared (too few images)") + "; keeping the colour map"
        if self.dist.enabled:  # only the main rank measured: every rank takes its choice
            chosen = FAMILIES[broadcast_choice(FAMILIES.index(chosen), self.device)]
        winner = trainers[chosen]
        self._agree_clock()
        dropped = self._spent - self._own.get(chosen, 0.0)
        final = self._trainer(chosen, trial=False, device=self.device)
        final.load_state(winner.state.payload(epoch=0, total_steps=winner.total_steps, elapsed_s=self._spent,
                                               data_paths=self.data_paths, data_scale=winner.data_scale), "the trial")
        final.search_record = {"chosen": chosen, "resolved": resolved, "reason": reason,
                               "candidates": [c.as_dict() for c in self.candidates], "dropped_s": dropped}
        self.active = final  # before the flags are read: a stop or pause from here on reaches it
        if self.stopping:
            final.stop()
        elif self.paused:
            final.pause()
        share = dropped / final.schedule.budget_s if final.schedule.timed else math.nan
        self.choice = FamilyChoiceReport(final.step, tuple(self.candidates), chosen, resolved, reason, dropped, share)
        log.info("generator family: %s (%s)", chosen, reason)
        history = sorted(self._history.get(chosen, []), key=lambda r: r.step)
        final.prelude = [self.choice, *(replace(rep, replay=True) for rep in history)]
        warning = self._inversion(final.step, chosen)
        for rep in final.run(stop_at):
            yield rep
            if rep is self.choice and warning is not None:  # right after the choice it is about
                yield warning

    def _inversion(self, step: int, family: str) -> WarningReport | None:
        """The warning of ``inversion_warning`` where the kept family's held-out translations (from the end of its
        trial) reverse light and dark; None where they do not, or where there are none."""
        monitor = self._monitor
        if monitor is None or any(family not in self._translations.get(way, {}) for way, _, _ in WAYS):
            return None
        orders = {way: brightness_order(monitor.crops[source], self._translations[way][family])
                  for way, source, _ in WAYS}
        warning = inversion_warning(step, family, orders)
        if warning is not None:
            log.warning("%s", warning.message)
        return warning


def graft(colour: Trainer, local: Trainer) -> None:
    """Start ``local``'s trial where ``colour``'s stands: its per-pixel maps (G, F and their averages) with their
    optimiser moments, the critics with theirs, the pools and the step count. The maps' weights for the local
    generators' filtered channels stay at zero, so they begin as exactly the colour maps."""
    src, dst = colour.state, local.state
    for a, b in ((src.G, dst.G), (src.F, dst.F), (src.G_ema, dst.G_ema), (src.F_ema, dst.F_ema)):
        if a is None or b is None:
            continue
        for name, p in a.colour.named_parameters():
            q = b.colour.get_parameter(name)
            cut = tuple(slice(0, n) for n in p.shape)  # the first layer's weights for the pixel's own RGB
            with torch.no_grad():
                q.zero_()[cut] = p
            if p in src.opt_G.state:
                moments = {k: v.clone() for k, v in src.opt_G.state[p].items()}
                for k in ("exp_avg", "exp_avg_sq"):  # Adam's moments, shaped as the weights
                    if k in moments:
                        moments[k] = torch.zeros_like(q)
                        moments[k][cut] = src.opt_G.state[p][k]
                dst.opt_G.state[q] = moments
    for a, b in ((src.D_A, dst.D_A), (src.D_B, dst.D_B)):
        b.load_state_dict(a.state_dict())
    dst.opt_D.load_state_dict(src.opt_D.state_dict())
    device = next(dst.G.parameters()).device
    dst.pool_A.load_state_dict(src.pool_A.state_dict(), device)
    dst.pool_B.load_state_dict(src.pool_B.state_dict(), device)
    dst.step = src.step
