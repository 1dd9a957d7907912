"""What the trainer yields. Frozen, and made only of plain floats, strings and numpy copies.

Reports cross threads (trainer → GUI worker → panels), so they never hold live tensors
or buffers the trainer keeps writing to. What each key of a report's ``metrics`` means:
``engine.training.metric_keys``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np

from engine.io.previews import preview_title

__all__ = [
    "Report",
    "ProgressReport",
    "EvalReport",
    "PreviewReport",
    "CheckpointReport",
    "WarningReport",
    "FinishedReport",
    "FamilyTrialReport",
    "FamilyCandidate",
    "FamilyChoiceReport",
    "ProgressWindow",
]


@dataclass(frozen=True)
class Report:
    step: int


@dataclass(frozen=True)
class ProgressReport(Report):
    total_steps: int
    epoch: int
    lr: float
    its_per_s: float
    images_per_s: float
    elapsed_s: float
    eta_s: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    progress: float = 0.0  # share of the run done, 0 … 1 (of its steps, or of its minutes)
    replay: bool = False   # sent again after the family search: the chosen family's trial, for the plots

    def metrics_row(self) -> tuple[str, dict]:
        """(kind, values) of its metrics.jsonl row, as the reporter writes it."""
        return "progress", {"epoch": self.epoch, "lr": self.lr, "its_per_s": self.its_per_s, **self.metrics}


@dataclass(frozen=True)
class EvalReport(Report):
    """Held-out figures (``metric_keys``): cycle_*_val, gap_*, saturated_*, w_mon_* (the monitor), w_*_val and
    gp_grad_norm_*_val (Wasserstein objectives), and psnr_* with ground truth."""

    elapsed_s: float
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PreviewReport(Report):
    """Each image is a (N, H, W, 3) uint8 copy: real_A, fake_B, rec_A, real_B, fake_A, rec_B. ``restored_from``:
    whose generators made them ("step 66", or "A→B of step 66, B→A of step 88"), where the drift guard put the best
    checkpoint's back (None: this step's)."""

    images: Mapping[str, np.ndarray]
    path: str | None = None
    restored_from: str | None = None

    @property
    def title(self) -> str:
        return preview_title(self.step, self.restored_from)


@dataclass(frozen=True)
class CheckpointReport(Report):
    path: str
    kind: Literal["latest", "best"] = "latest"  # best: checkpoints/best.pt (``BestKeeper``)


@dataclass(frozen=True)
class WarningReport(Report):
    code: str
    message: str
    hint: str = ""
    severity: Literal["info", "warning", "error"] = "warning"


@dataclass(frozen=True)
class FinishedReport(Report):
    reason: Literal["completed", "stopped", "time-limit", "plateau", "drifted", "error"]
    message: str = ""
    checkpoint: str | None = None


@dataclass(frozen=True)
class FamilyTrialReport(Report):
    """The auto family search at work: ``family`` (``index`` of ``count``) is on trial, at ``step`` of its own."""

    family: str
    index: int
    count: int
    progress: float        # of the whole run's budget, 0 … 1
    trial_progress: float  # of this family's trial, 0 … 1
    elapsed_s: float
    eta_s: float           # of the whole run
    its_per_s: float
    measured: tuple["FamilyCandidate", ...] = ()  # the families read so far: none while trials remain (the search
    # reads them all at its end, or at the early reading where that ends it)


@dataclass(frozen=True)
class FamilyCandidate:
    """One family's trial as the search read it. ``score``: distance / start averaged over both directions
    (1: as far from the target as the untranslated images; lower is closer), with its 95 % interval.
    ``replicates``: the score on each bootstrap resample; replicate i of every candidate of one search is taken
    on the same resample of the held-out images, so two candidates' difference has an interval of its own.
    ``away``: per direction, the lower end of the 95 % interval of distance / start: above 1 where the family
    moved the translations farther from the target than the untranslated images, beyond the interval."""

    family: str
    score: float
    lo: float
    hi: float
    w: Mapping[str, float]      # per direction (AtoB, BtoA): the monitor's W
    start: Mapping[str, float]  # per direction: the identity's W
    steps: int
    seconds: float
    replicates: tuple[float, ...] = ()
    away: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"family": self.family, "score": self.score, "lo": self.lo, "hi": self.hi, "w": dict(self.w),
                "start": dict(self.start), "steps": self.steps, "seconds": self.seconds,
                "replicates": list(self.replicates), "away": dict(self.away)}


@dataclass(frozen=True)
class FamilyChoiceReport(Report):
    """The family search's outcome: every candidate's reading, the one kept, and why. ``resolved`` is False
    where the monitor could not tell the winner from a family that changes the picture less (that one is
    kept) or could not compare at all. ``history``: the winner's progress reports from its trial."""

    candidates: tuple[FamilyCandidate, ...]
    chosen: str
    resolved: bool
    reason: str
    dropped_s: float       # training seconds spent on the families dropped
    dropped_share: float   # of the budget (NaN under a step or epoch budget, where the search adds steps)
    history: tuple[ProgressReport, ...] = ()

    def metrics_row(self) -> tuple[str, dict]:
        return "family", {"chosen": self.chosen, "resolved": self.resolved, "reason": self.reason,
                          "dropped_s": self.dropped_s, "candidates": [c.as_dict() for c in self.candidates]}


class ProgressWindow:
    """Steps and summed metrics since the last progress report: its rate and means go into the next one."""

    def __init__(self, start: float):
        self.start, self.steps, self.n, self.sums = start, 0, 0, {}

    def add(self, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def take(self, now: float) -> tuple[float, dict[str, float]]:
        """(steps per second, mean metrics) of the window, which starts afresh."""
        its = self.steps / max(now - self.start, 1e-9)
        means = {k: v / self.n for k, v in self.sums.items()}
        self.start, self.steps, self.n, self.sums = now, 0, 0, {}
        return its, means
