"""Counting numerical faults: updates skipped because their loss or gradients were not finite.

``engine.training.step.apply_update`` skips such an update; ``FaultTally`` counts them. After
``MAX_CONSECUTIVE_FAULTS`` in a row the trainer rolls back to the last checkpoint at half the
learning rate (``Trainer.rollback``).
"""

from __future__ import annotations

from engine.training.reports import WarningReport

__all__ = ["MAX_CONSECUTIVE_FAULTS", "FaultTally"]

MAX_CONSECUTIVE_FAULTS = 5


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
                             f"({self.in_a_row} in a row, {self.total} in total)",
                             "If this repeats, lower the learning rate.")
