"""Saving the training state into the run's checkpoints, knowing what was saved last, and keeping the best.

A save that fails (a full disk, a read-only folder) is reported, not raised: the loop pauses
and the user can free space and resume. Nothing half-written is left (``engine.io.atomic``).

``BestKeeper`` keeps ``checkpoints/best.pt`` with each direction's generator from the evaluation the
monitor (``engine.wasserstein.monitor``) reads closest to the target, notices when the readings have
stopped falling and, with its drift guard on, when the translations have turned back from the target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from engine.config import Config
from engine.errors import CheckpointError, DataError
from engine.io.checkpoint_files import CheckpointFolder, config_from_checkpoint, load_checkpoint, save_checkpoint
from engine.io.run_folder import BEST, RunFolder
from engine.training.metric_keys import BEST_STEP, describe_best
from engine.training.reports import CheckpointReport, Report, WarningReport
from engine.training.state import TrainingState
from engine.wasserstein.monitor import WAYS, Reading

__all__ = ["StateSaver", "BestKeeper", "resume_point", "DRIFT_BELOW", "DRIFT_RISE"]

# The drift guard: where the best score (each direction's W over its start, summed; the untranslated sources score 2)
# had come below DRIFT_BELOW, a score DRIFT_RISE times the best one's, beyond both readings' noise, is a drift.
DRIFT_BELOW = 1.0
DRIFT_RISE = 1.2
# The guard (``schedule.restore_on_drift``) watches the per-pixel families only (``Config.is_per_pixel``), whose
# drift is understood. A ResNet's W wanders while it learns, and it is never stopped this way.


class StateSaver:
    """``meta()`` gives what the payload needs besides the state (epoch, total steps, time, data paths)."""

    def __init__(self, state: TrainingState, run_folder: RunFolder, keep: int, meta: Callable[[], dict[str, Any]]):
        self.state, self.meta = state, meta
        self.manager = CheckpointFolder(run_folder.path, keep)
        self.saved_step = state.step  # the step of the newest checkpoint (as far as this session knows)

    @property
    def latest(self) -> Path:
        return self.manager.latest

    def save(self) -> Path:
        """Write a checkpoint of the state now."""
        path = self.manager.save(self.state.step, self.state.payload(**self.meta()))
        self.saved_step = self.state.step
        return path

    def save_report(self) -> Report:
        """A CheckpointReport, or a save-failed error WarningReport (the caller pauses)."""
        try:
            return CheckpointReport(self.state.step, str(self.save()))
        except CheckpointError as e:
            return WarningReport(self.state.step, "save-failed", f"checkpoint not saved: {e}",
                                 "Free disk space or choose a writable run folder, then resume. Training is paused.",
                                 severity="error")

    def save_best(self, kept: dict[str, tuple[int, dict[str, Any]]] | None = None) -> Path:
        """checkpoints/best.pt: the generators of the current step, or per direction those of ``kept`` (way →
        (step, weights), as ``BestKeeper`` keeps them)."""
        return save_checkpoint(self.best, self.state.generators_payload(self.meta().get("data_scale"), kept))

    @property
    def best(self) -> Path:
        return self.manager.dir / BEST

    def up_to_date(self) -> bool:
        """Whether the newest checkpoint holds the current step."""
        return self.saved_step == self.state.step and self.latest.exists()


def resume_point(run_dir, max_steps: int | None, data_paths: tuple[str, str] | None
                 ) -> tuple[dict[str, Any], Config, tuple[str, str]]:
    """(checkpoint, config, data folders) to continue ``run_dir`` from its latest checkpoint;
    ``max_steps`` extends a step-limited run, ``data_paths`` replaces folders that moved."""
    ck = load_checkpoint(run_dir)
    cfg = config_from_checkpoint(ck, str(run_dir))
    cfg = cfg.with_values(max_steps=max_steps) if max_steps is not None else cfg
    paths = data_paths or tuple(ck.get("data", {}).get("paths", ()))
    if len(paths) != 2 or not all(paths):
        raise DataError(f"{run_dir}: the checkpoint does not record its data folders; give them explicitly")
    return ck, cfg, (str(paths[0]), str(paths[1]))


class BestKeeper:
    """Per direction, the evaluation whose translations the monitor reads closest to the target; ``best.pt`` with
    each direction's generator from its own pick; the plateau notice; the drift guard.

    **Which reading ranks.** Per direction, a distance over its identity level (the untranslated sources' reading, so
    1 is the identity) with its 95 % half-width on the same scale (``way_score``). The per-pixel families (colour,
    local) rank by the monitor's W. The ResNet (``by_structure``) ranks by the structure reading (the multi-scale
    sliced W of Laplacian bands, ``engine.wasserstein.monitor``): a ResNet's output gets sharper long after its
    colours are right, which 8-px patches barely see. Where a reading has no identity level or interval (an older
    run, a crop that does not halve twice) the W ranks. Over ``paper``'s 28 direction-runs on the suite at 10
    minutes (docs/wasserstein.md) the W picked within 0.5 dB of the best evaluation on 8, the structure reading (its
    bands then summed; now their geometric mean, as the family search reads them) on more; over the per-pixel runs
    the W per direction picked within 0.5 dB far more often than the sum over both directions, which let one
    direction's gain hide the other's loss.

    **Each direction its own pick.** G (A→B) and F (B→A) translate alone, so ``best.pt`` holds G from A→B's pick
    and F from B→A's (``steps`` in the file; ``step`` is the later). A direction's pick follows the latest
    evaluation whose score is within its own 95 % half-width of the lowest seen: readings within the noise are
    ties, and a tie goes to the later step, which has trained longer (once the translations are as close to the
    target as the estimator can tell, the earliest of the ties cost 1.2 dB on the demo).

    **The plateau.** *Progress* is a direction's score below that direction's last progress by more than the
    half-width; ``patience`` evaluations without progress in either direction make a plateau, said once (and, with
    ``stop``, the end of the run).

    **The drift guard** (``guard``): it reads the monitor's W over its start, summed over both directions (2 for the
    untranslated sources). Once that best score has come below ``DRIFT_BELOW`` (the translations had made a large
    change), a score above ``DRIFT_RISE`` times the best, with the noise of both readings against it, is a
    *drift*: the translations are turning back from the target. A per-pixel generator does this when the change is
    not a per-pixel one. On the pencil sketch the colour map reached 15.8 dB at a score of 0.59, then fell to 9.1
    while the score rose to 0.74; on the demo (green ground to white, while the white clouds must come back) it
    reached 17.1 dB at 0.77, then the cycle loss pulled it towards an invertible map and it fell to 9.8 while the
    score rose to 1.41. Where the change is a colour grade or a small filter the best stays above 1.3 (1.32–1.79 on
    the suite's other twelve tasks), the translations close in on the sources as they learn, and the score creeps
    up while the PSNR still climbs (edges, bloom, cartoon, sepia: by 8–13 % in two minutes): the guard leaves those
    alone. At a drift the trainer puts ``best.pt``'s generators back (``kept``) and stops; ``drift_step`` is set and
    a notice is reported, once.

    ``snapshot(way)`` copies one direction's weights ({checkpoint name: state dict}, ``TrainingState.direction_nets``);
    it is taken at every new pick of that direction (``kept``: way → (step, weights)), so that ``best.pt`` can be
    written with the other direction's kept weights and the guard can restore both.
    """

    def __init__(self, checkpoints: StateSaver | None, patience: int, stop: bool,
                 snapshot: Callable[[str], dict[str, Any]] | None = None, *, by_structure: bool = False,
                 guard: bool = False):
        self.checkpoints, self.patience, self.stop, self.snapshot = checkpoints, patience, stop, snapshot
        self.by_structure, self.guard = by_structure, guard
        self.picks: dict[str, dict[str, float]] = {}  # way → {"step", "score" (the lowest seen), "mark"}
        self.since_best = 0
        self.plateau = False
        self.kept: dict[str, tuple[int, dict[str, Any]]] = {}  # way → (its pick's step, weights): this session's
        self.best_score = math.inf   # the drift guard's: the lowest summed W / start seen
        self.best_half_width = 0.0   # the noise of the reading that set it
        self.drift_step: int | None = None  # the evaluation that found the drift

    # --- the readings --------------------------------------------------------------------------------------------
    @staticmethod
    def score(ev: dict[str, float]) -> tuple[float, float] | None:
        """(the monitor's W / start summed over both directions, its half-width), or None when the evaluation has no
        (usable) monitor readings: the drift guard's score."""
        parts = [_relative(Reading.from_metrics(ev, way), False) for way, _, _ in WAYS]
        if any(p is None for p in parts):
            return None
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def way_score(self, ev: dict[str, float], way: str) -> tuple[float, float] | None:
        """(one direction's ranking reading over its identity level, its half-width), or None without a usable
        reading: the structure reading for a ResNet where it has its level and interval, the monitor's W otherwise."""
        r = Reading.from_metrics(ev, way)
        return (self.by_structure and _relative(r, True)) or _relative(r, False)

    # --- the picks -----------------------------------------------------------------------------------------------
    @property
    def steps(self) -> dict[str, int]:
        """Each direction's pick: the step whose generator ``best.pt`` holds for it."""
        return {way: int(p["step"]) for way, p in self.picks.items()}

    @property
    def best_step(self) -> int | None:
        """``best.pt``'s step: the later of the two picks (None before any)."""
        return max(self.steps.values()) if self.picks else None

    def describe(self) -> str:
        """``best.pt``'s steps in words: "step 900", or "A→B of step 900, B→A of step 1,200"."""
        return describe_best(self.steps)

    def observe(self, step: int, ev: dict[str, float]) -> list[Report]:
        scored = {way: self.way_score(ev, way) for way, _, _ in WAYS}
        scored = {way: v for way, v in scored.items() if v is not None}
        if not scored:
            return []
        out: list[Report] = []
        progress, new = False, []
        for way, (value, half_width) in scored.items():
            p = self.picks.setdefault(way, {"step": step, "score": math.inf, "mark": math.inf})
            if value < p["mark"] - half_width:  # progress beyond the noise
                p["mark"], progress = value, True
            if value <= p["score"] + half_width:  # as good as the best, within noise: a tie goes to the later step
                p["step"], p["score"] = step, min(value, p["score"])
                new.append(way)
        if progress:
            self.since_best, self.plateau = 0, False
        else:
            self.since_best += 1
        if new:
            out += self._keep(step, new)
        ev[BEST_STEP] = float(self.best_step)
        for way, s in self.steps.items():
            ev[f"{BEST_STEP}_{way}"] = float(s)
        if self.since_best >= self.patience and not self.plateau:
            self.plateau = True
            out.append(WarningReport(
                step, "plateau",
                f"the monitor's reading has not improved beyond its noise for {self.since_best} evaluations: "
                f"the best translations so far are those of {self.describe()}",
                f"Training on may not help much. Translate or export with the best checkpoint ({self.describe()}), "
                "or stop here." + (" Stopping, as asked." if self.stop else ""), severity="info"))
        joint = self.score(ev)
        if joint is not None:
            if self._drift(*joint):
                self.drift_step = step
                out.append(WarningReport(
                    step, "drift",
                    f"the translations are turning back from the target: the monitored W is "
                    f"{joint[0] / self.best_score:.1f}× what it was at its best",
                    f"Restored the best checkpoint's generators ({self.describe()}) and stopped: this generator "
                    "family cannot learn your change any further. If the change draws new shapes or textures (summer "
                    "→ winter, photo → sketch), pin the ResNet (Model → Generator family; --set netG=resnet).",
                    severity="info"))
            elif joint[0] < self.best_score:
                self.best_score, self.best_half_width = joint
        return out

    def _keep(self, step: int, new: list[str]) -> list[Report]:
        """The new picks' weights kept, and best.pt written with them and the other direction's kept weights."""
        if self.snapshot is not None:
            for way in new:
                self.kept[way] = (step, self.snapshot(way))
            for way, _, _ in WAYS:  # a direction without kept weights (a resume whose best.pt was unreadable)
                if way not in self.kept and way in self.picks:  # takes the current ones: its pick is now this step
                    self.kept[way] = (step, self.snapshot(way))
                    self.picks[way]["step"] = step
        if self.checkpoints is None:
            return []
        try:
            return [CheckpointReport(step, str(self.checkpoints.save_best(self.kept or None)), kind="best")]
        except CheckpointError as e:
            return [WarningReport(step, "save-failed", f"best checkpoint not saved: {e}",
                                  "Free disk space; training goes on.", severity="error")]

    def _drift(self, value: float, half_width: float) -> bool:
        """Whether the summed W ``value`` is a drift from its best (see the class docstring); False with the guard
        off or before both directions' weights are kept."""
        if not self.guard or len(self.kept) < len(WAYS) or self.drift_step is not None:
            return False
        return (0 < self.best_score < DRIFT_BELOW
                and value - half_width > DRIFT_RISE * (self.best_score + self.best_half_width))

    # --- resume ----------------------------------------------------------------------------------------------------
    def adopt(self, best_payload: dict[str, Any]) -> None:
        """Kept weights from a run's ``best.pt`` (a resumed session's start), for the directions whose pick it
        holds; a file of another step, or without a direction's weights, adopts nothing for it."""
        steps = best_payload.get("steps") or {}
        models = best_payload.get("models") or {}
        for way, _, _ in WAYS:
            p = self.picks.get(way)
            step = steps.get(way, best_payload.get("step"))
            names = ("G", "G_ema") if way == "AtoB" else ("F", "F_ema")
            weights = {n: models[n] for n in names if n in models}
            if p is not None and step is not None and int(step) == int(p["step"]) and names[0] in weights:
                self.kept[way] = (int(step), weights)

    def state_dict(self) -> dict[str, Any]:
        return {"picks": {w: dict(p) for w, p in self.picks.items()}, "since_best": self.since_best,
                "plateau": self.plateau, "best_score": self.best_score, "best_half_width": self.best_half_width,
                "drift_step": self.drift_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A run saved before the picks were per direction kept one step and the summed W / start: each direction
        then starts at that step with half the sum (both are distances over the identity's level), so a resumed
        old run keeps its best.pt until a direction does better."""
        self.picks = {w: {k: float(v) for k, v in p.items()} for w, p in (state.get("picks") or {}).items()}
        if not self.picks and state.get("best_step") is not None:
            score = float(state.get("best_score", math.inf)) / 2
            mark = float(state.get("mark", 2 * score)) / 2
            self.picks = {way: {"step": float(state["best_step"]), "score": score, "mark": mark} for way, _, _ in WAYS}
        self.since_best = int(state.get("since_best", 0))
        self.plateau = bool(state.get("plateau", False))
        self.best_score = float(state.get("best_score", math.inf))
        self.best_half_width = float(state.get("best_half_width", 0.0))
        self.drift_step = state.get("drift_step")  # a resumed run that drifted is not stopped again


def _relative(r: Reading | None, structure: bool) -> tuple[float, float] | None:
    """(reading / identity level, half-width / identity level) of the W or the structure reading; None where it is not
    finite or the level is not positive."""
    if r is None:
        return None
    v, lo, hi, start = ((r.structure, r.structure_lo, r.structure_hi, r.structure_start) if structure else
                        (r.w, r.lo, r.hi, r.start))
    if not all(math.isfinite(x) for x in (v, lo, hi, start)) or start <= 0:
        return None
    return v / start, (hi - lo) / 2 / start
