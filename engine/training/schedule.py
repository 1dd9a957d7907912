"""The run's length, and what follows progress along it: the learning rate, the generator average's
decay, and the per-step random streams.

A run lasts ``minutes`` of training time when that is set (progress = elapsed / budget), else
``max_steps`` steps, else ``n_epochs + n_epochs_decay`` epochs (progress = step / total steps).
The learning rate is constant for the first n_epochs / (n_epochs + n_epochs_decay) of the run and
then decays linearly towards 0, in epoch-sized stairs as the reference does. The generator
average (EMA) spans at most ``ema_horizon`` of the run. Step-based schedules are pure functions
of the step, so a run resumed at step N continues exactly as an uninterrupted one; a minutes
budget follows the clock, so it is reproducible only as far as the machine's speed is.
"""

from __future__ import annotations

import hashlib

import torch

from engine.config import Config

__all__ = ["seeded_rng", "lr_multiplier", "fast_start_multiplier", "FAST_START_STEPS", "ema_decay_at", "Schedule"]

FAST_START_STEPS = 150  # the generators' fast start (``lr_map``): its steps at full boost, then as many to fall to 1


def seeded_rng(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, step, stream)."""
    h = hashlib.blake2b(f"{seed}/{step}/{stream}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(h, "little") & ((1 << 63) - 1))


def _decay_at(progress: float, n_epochs: int, n_epochs_decay: int) -> float:
    total_epochs = n_epochs + n_epochs_decay
    if total_epochs == 0 or n_epochs_decay == 0:
        return 1.0
    epoch = int(progress * total_epochs)
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))


def lr_multiplier(step: int, total_steps: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The reference's linear decay: constant for n_epochs, then linearly to 0 over n_epochs_decay.

    Epochs are measured as a fraction of the whole run, so a step-limited run decays over
    the same share of its steps as an epoch-limited one.
    """
    return _decay_at(step / max(total_steps, 1), n_epochs, n_epochs_decay)


def fast_start_multiplier(step: int, boost: float) -> float:
    """The generators' rate over ``lr`` at ``step``: ``boost`` for the first ``FAST_START_STEPS`` steps, then
    linearly down to 1 over as many more, 1 after. At 2e-4 throughout the colour map was still coming back from
    its random start at the end of a 3-minute run (tone curve: 23.2 dB, the identity's 26.5); at 1e-3 (5×) it
    reached the tone curve's 26 dB, and the grey task's 28.4, within about 140 steps. After its peak, on a task
    that loses information (grey, faded print), the cycle loss pulls the map towards one it can invert and the
    PSNR falls: at 1e-3 throughout grey fell to 21.1 dB by step 380, with the fast start to 24.7."""
    if boost <= 1.0 or step >= 2 * FAST_START_STEPS:
        return 1.0
    if step < FAST_START_STEPS:
        return boost
    return boost + (1.0 - boost) * (step - FAST_START_STEPS) / FAST_START_STEPS


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used by the update after ``step`` completed steps: ``decay``, warmed up as
    min(decay, (1 + step) / (10 + step)), so that a short run's average is not dominated by the
    random initial weights (at decay 0.999 they would keep a weight of 0.999^step: still 37 %
    after 1,000 steps)."""
    return min(decay, (1.0 + step) / (10.0 + step))


class Schedule:
    def __init__(self, cfg: Config, steps_per_epoch: int):
        s, m = cfg.schedule, cfg.model
        self.n_epochs, self.n_epochs_decay = s.n_epochs, s.n_epochs_decay
        self.budget_s = s.minutes * 60.0
        self.total_steps = 0 if self.budget_s else s.max_steps or (s.n_epochs + s.n_epochs_decay) * steps_per_epoch
        if not self.budget_s and self.total_steps <= 0:
            raise ValueError("nothing to train: n_epochs + n_epochs_decay is 0 and max_steps and minutes are 0")
        self.time_limit_s = s.time_limit * 60.0
        self.ema_decay, self.ema_horizon = m.ema_decay, m.ema_horizon
        self.cycle_warmup = cfg.objective.cycle_warmup

    @property
    def timed(self) -> bool:
        """Whether the run's length is a budget of training minutes."""
        return bool(self.budget_s)

    def progress(self, step: int, elapsed_s: float) -> float:
        """How much of the run is done, 0 … 1."""
        done = elapsed_s / self.budget_s if self.timed else step / self.total_steps
        return min(1.0, max(0.0, done))

    def done(self, step: int, elapsed_s: float) -> bool:
        return self.progress(step, elapsed_s) >= 1.0

    def estimated_total(self, step: int, elapsed_s: float) -> int:
        """The run's length in steps: exact for step budgets, extrapolated from the pace so far for minutes."""
        if not self.timed:
            return self.total_steps
        p = self.progress(step, elapsed_s)
        return max(step, round(step / p)) if p > 0.01 and step else 0

    def remaining_s(self, step: int, elapsed_s: float, steps_per_s: float) -> float:
        if self.timed:
            return max(0.0, self.budget_s - elapsed_s)
        return (self.total_steps - step) / steps_per_s if steps_per_s > 0 else float("inf")

    def lr_multiplier(self, step: int, elapsed_s: float) -> float:
        return _decay_at(self.progress(step, elapsed_s), self.n_epochs, self.n_epochs_decay)

    def ema_decay_for(self, step: int, elapsed_s: float) -> float:
        """The decay of the generator average's update after ``step`` steps: warmed up (``ema_decay_at``) and
        capped at 1 − 1/(horizon × run length), so the average covers at most that share of the run."""
        decay = ema_decay_at(self.ema_decay, step)
        total = self.estimated_total(step, elapsed_s)
        if self.ema_horizon and total:
            decay = min(decay, max(0.0, 1.0 - 1.0 / (self.ema_horizon * total)))
        return decay

    def cycle_scale(self, step: int, elapsed_s: float) -> float:
        """The share of λ cycle in force: rising linearly from 0 to 1 over the first ``cycle_warmup`` of the run."""
        if not self.cycle_warmup:
            return 1.0
        return min(1.0, self.progress(step, elapsed_s) / self.cycle_warmup)

    def out_of_time(self, session_s: float) -> bool:
        """The session's hard time limit (``time_limit``), wherever the schedule is."""
        return bool(self.time_limit_s) and session_s >= self.time_limit_s
