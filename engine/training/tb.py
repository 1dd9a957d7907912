"""TensorBoard logging of a run's reports into ``RUN_DIR/tb`` (``tensorboard --logdir RUN_DIR/tb``).

Optional: ``torch.utils.tensorboard`` needs the ``tensorboard`` package
(``pip install tensorboard``, or the ``tensorboard`` extra). The trainer calls this
only when ``output.tensorboard`` is on; everything else reads ``RUN_DIR/metrics.jsonl``.

Tags: ``losses/<metric>`` for every progress metric (G_A, D_A, cycle_A, w_A …), ``lr``,
``its_per_s``; ``eval/<metric>`` for held-out figures; ``preview`` for the image grid.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from engine.errors import MissingExtraError
from engine.io.previews import preview_grid
from engine.training.reports import EvalReport, PreviewReport, ProgressReport, Report, WarningReport

__all__ = ["TensorBoardLogger", "tensorboard_available", "logged"]

_INSTALL = "pip install tensorboard  (or: pip install -e .[tensorboard])"


def _summary_writer_class():
    try:
        # An optional extra (the tensorboard package), imported only when a run asks for it.
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415
    except ImportError:
        raise MissingExtraError(f"TensorBoard logging needs the tensorboard package: {_INSTALL}") from None
    return SummaryWriter


def tensorboard_available() -> bool:
    """Whether TensorBoardLogger can be created (the tensorboard package imports)."""
    try:
        _summary_writer_class()
    except MissingExtraError:
        return False
    return True


class TensorBoardLogger:
    """Writes progress, evaluation and preview reports as TensorBoard events under ``run_dir/tb``."""

    def __init__(self, run_dir: str | os.PathLike, flush_secs: int = 10):
        SummaryWriter = _summary_writer_class()
        self.log_dir = Path(run_dir) / "tb"
        # A short flush interval: people watch TensorBoard while the run trains.
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)
        self._closed = False

    def _scalars(self, prefix: str, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
                self._writer.add_scalar(f"{prefix}{name}", float(value), step)

    def progress(self, report: ProgressReport) -> None:
        self._scalars("losses/", report.metrics, report.step)
        self._scalars("", {"lr": report.lr, "its_per_s": report.its_per_s}, report.step)

    def evaluation(self, report: EvalReport) -> None:
        self._scalars("eval/", report.metrics, report.step)

    def preview(self, report: PreviewReport) -> None:
        # (H, W, 3) grid → (3, H, W) uint8, the layout add_image defaults to
        grid = preview_grid(report.images, step=report.step, restored_from=report.restored_from)
        grid = np.asarray(grid, dtype=np.uint8).transpose(2, 0, 1)
        self._writer.add_image("preview", np.ascontiguousarray(grid), report.step, dataformats="CHW")

    def log(self, report: Report) -> None:
        """Dispatch any report; kinds TensorBoard has no use for (checkpoints, warnings …) are skipped."""
        if isinstance(report, ProgressReport):
            self.progress(report)
        elif isinstance(report, EvalReport):
            self.evaluation(report)
        elif isinstance(report, PreviewReport):
            self.preview(report)

    def flush(self) -> None:
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def logged(reports: Iterator[Report], run_dir: str | os.PathLike | None, enabled: bool) -> Iterator[Report]:
    """``reports`` passed through, each also written to ``run_dir``/tb when ``enabled``. A missing
    tensorboard package is a warning report, not an error: metrics.jsonl has everything anyway."""
    if not enabled or run_dir is None:
        yield from reports
        return
    try:
        tb = TensorBoardLogger(run_dir)
    except MissingExtraError as e:
        yield WarningReport(0, "tensorboard", str(e), "Metrics are still in metrics.jsonl.")
        yield from reports
        return
    with tb:
        for rep in reports:
            tb.log(rep)
            yield rep
