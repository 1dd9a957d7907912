"""What follows training progress: the learning rate, the generator average's decay, and the random streams.

Everything here is a pure function of its arguments, so a run resumed at step N continues
exactly as an uninterrupted one would.
"""

from __future__ import annotations

import hashlib

import torch

from engine.config import Config

__all__ = ["step_generator", "lr_multiplier", "ema_decay_at", "Schedule"]


def step_generator(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, step, stream)."""
    h = hashlib.blake2b(f"{seed}/{step}/{stream}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(h, "little") & ((1 << 63) - 1))


def lr_multiplier(step: int, total_steps: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The reference's linear decay: constant for n_epochs, then linearly to 0 over n_epochs_decay.

    Epochs are measured as a fraction of the whole run, so a step-limited run decays over
    the same share of its steps as an epoch-limited one.
    """
    total_epochs = n_epochs + n_epochs_decay
    if total_epochs == 0 or n_epochs_decay == 0:
        return 1.0
    epoch = int(step * total_epochs / max(total_steps, 1))
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used by the update after ``step`` completed steps: ``decay``, warmed up as
    min(decay, (1 + step) / (10 + step)), so that a short run's average is not dominated by the
    random initial weights (at decay 0.999 they would keep a weight of 0.999^step: still 37 %
    after 1,000 steps)."""
    return min(decay, (1.0 + step) / (10.0 + step))


class Schedule:
    """The run's length and the learning rate along it.

    The run lasts ``max_steps`` steps, or ``n_epochs + n_epochs_decay`` epochs when that is 0;
    the learning rate is constant for the first ``n_epochs`` share and then decays linearly to
    0 (the reference's schedule). ``time_limit`` stops a run early, wherever its schedule is.
    """

    def __init__(self, cfg: Config, steps_per_epoch: int):
        s = cfg.schedule
        self.n_epochs, self.n_epochs_decay = s.n_epochs, s.n_epochs_decay
        self.total_steps = s.max_steps or (s.n_epochs + s.n_epochs_decay) * steps_per_epoch
        if self.total_steps <= 0:
            raise ValueError("nothing to train: n_epochs + n_epochs_decay is 0 and max_steps is 0")
        self.time_limit_s = s.time_limit * 60.0

    def lr_multiplier(self, step: int) -> float:
        return lr_multiplier(step, self.total_steps, self.n_epochs, self.n_epochs_decay)

    def out_of_time(self, session_s: float) -> bool:
        return bool(self.time_limit_s) and session_s >= self.time_limit_s
