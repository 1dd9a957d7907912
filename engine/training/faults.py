"""Numerical faults: an update whose loss or gradients are not finite is skipped, never applied.

``apply_update`` is the one place an optimiser steps. ``FaultTally`` counts skipped updates;
after ``MAX_CONSECUTIVE_FAULTS`` in a row the loop rolls back to the last checkpoint at half
the learning rate.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from engine.errors import CheckpointError
from engine.io.checkpoint import load_checkpoint
from engine.training.distributed import DistInfo, average_gradients
from engine.training.reports import WarningReport

if TYPE_CHECKING:
    from engine.training.trainer import Trainer

log = logging.getLogger(__name__)

__all__ = ["MAX_CONSECUTIVE_FAULTS", "apply_update", "FaultTally", "rollback", "out_of_memory"]

MAX_CONSECUTIVE_FAULTS = 5


def _finite_grads(params: list[torch.Tensor]) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)
    return bool(torch.isfinite(torch.stack(norms)).all())


def apply_update(opt: torch.optim.Optimizer, loss: torch.Tensor, dist: DistInfo) -> bool:
    """Backward, average gradients across ranks, and step, unless anything is non-finite.

    Returns whether the update was applied. A skipped update leaves the weights untouched.
    """
    finite = bool(torch.isfinite(loss.detach()))
    params = [p for g in opt.param_groups for p in g["params"]]
    if dist.enabled:
        # Every rank must join the all_reduce; a rank with a bad loss poisons it so all skip alike.
        loss.backward()
        average_gradients(params, dist.world_size, poison=not finite)
    elif finite:
        loss.backward()
    if not finite or not _finite_grads(params):
        opt.zero_grad(set_to_none=True)
        return False
    opt.step()
    return True


class FaultTally:
    """Skipped updates: in a row (reset by a clean step) and in total (kept in checkpoints)."""

    def __init__(self, total: int = 0):
        self.total = total
        self.in_a_row = 0

    def record(self, faulted: bool) -> None:
        if faulted:
            self.total += 1
            self.in_a_row += 1
        else:
            self.in_a_row = 0

    @property
    def needs_rollback(self) -> bool:
        return self.in_a_row >= MAX_CONSECUTIVE_FAULTS

    def warning(self, step: int) -> WarningReport:
        return WarningReport(step, "nan", f"non-finite loss or gradient at step {step}: update skipped "
                             f"({self.in_a_row} in a row, {self.total} in total)", "If this repeats, lower the learning rate.")


def rollback(trainer: "Trainer") -> WarningReport:
    """After ``MAX_CONSECUTIVE_FAULTS`` skipped updates in a row: back to the last checkpoint, at
    half the learning rate. The tally of faults survives the rollback."""
    state, ckpts = trainer.state, trainer.checkpoints
    new_scale, total = state.lr_scale * 0.5, trainer.faults.total
    restored = False
    if ckpts is not None and ckpts.latest.exists():
        try:
            trainer.load_state(load_checkpoint(ckpts.latest, trainer.device), str(ckpts.latest))
            restored = True
        except CheckpointError as e:
            log.warning("rollback failed: %s", e)
    state.lr_scale, state.fault_count, trainer.faults = new_scale, total, FaultTally(total)
    where = f"rolled back to step {state.step}" if restored else "no checkpoint to roll back to"
    return WarningReport(state.step, "rollback", f"{MAX_CONSECUTIVE_FAULTS} numerical faults in a row: {where}; "
                         f"learning rate halved (now ×{state.lr_scale:g})", "Training continues at the lower learning rate.")


def out_of_memory(trainer: "Trainer") -> str:
    """Free what the device cache holds and say what to change."""
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()
    d = trainer.cfg.data
    return f"out of memory at crop_size={d.crop_size}, batch_size={d.batch_size}: try a smaller crop size or batch size"
