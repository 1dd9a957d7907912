"""File → Export model…: one direction of the open model as safetensors, ONNX or TorchScript.

The dialog takes the model (the Translate tab's) as its first argument, lets the user pick
the format, the direction (only those the model has) and the file, and writes it with
``engine.io.export.export_generator`` as a job on its own worker thread, so a slow ONNX export
never freezes the window. For a model from a run folder it also offers the run's latest or best
checkpoint; one other than the open model is loaded by the job before it is written. A missing
optional package (``MissingExtraError``) is shown as its one-line install hint, not as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import MissingExtraError
from engine.io.export import EXPORT_FORMATS, export_generator
from engine.io.run_folder import CHECKPOINTS, run_of_model
from engine.io.translate import TranslationModel

from .checkpoint_box import CheckpointBox
from .jobs import JobRunner
from .translate_jobs import DIRECTIONS, load_model
from .util import show_error

__all__ = ["ExportDialog", "ExportOutcome", "export_model", "export_checkpoint", "FORMAT_INFO"]

# format → (menu text, file suffix, file-dialog filter)
FORMAT_INFO = {
    "safetensors": ("safetensors (this app, Python)", ".safetensors", "safetensors model (*.safetensors)"),
    "onnx": ("ONNX (any runtime)", ".onnx", "ONNX model (*.onnx)"),
    "torchscript": ("TorchScript (C++, mobile)", ".pt", "TorchScript module (*.pt)"),
    "cube": (".cube 3D LUT (colour-grading tools)", ".cube", "3D LUT (*.cube)"),
}
assert set(FORMAT_INFO) == set(EXPORT_FORMATS)


@dataclass(frozen=True)
class ExportOutcome:
    """What came back from the worker thread: the file written, or the install hint of a missing extra."""

    path: str | None
    size_bytes: int = 0
    missing_extra: str = ""


def export_model(model: TranslationModel, direction: str, fmt: str, out: str) -> ExportOutcome:
    """Runs on the worker thread. A missing optional package is an outcome, not an error: it has a one-line fix."""
    try:
        path = export_generator(model, direction, fmt, out)
    except MissingExtraError as e:
        return ExportOutcome(None, missing_extra=str(e))
    return ExportOutcome(str(path), Path(path).stat().st_size)


def export_checkpoint(run_dir: str, checkpoint: str, direction: str, fmt: str, out: str) -> ExportOutcome:
    """Runs on the worker thread: load a run's ``latest`` or ``best`` checkpoint, then export it."""
    return export_model(load_model(run_dir, checkpoint), direction, fmt, out)


class ExportDialog(QDialog):
    """Choose format, direction and file; Export writes it in the background. ``exported(path)`` on success."""

    exported = Signal(str)

    def __init__(self, model: TranslationModel, parent: QWidget | None = None, *, folder: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.setObjectName("exportDialog")
        self.model = model
        self.jobs = JobRunner("export", self)
        src = Path(model.source) if model.source else None
        self._folder = folder or (str(src if src.is_dir() else src.parent) if src is not None else "")
        self.outcome: ExportOutcome | None = None

        src = Path(model.source)
        self.source_label = QLabel(f"<b>{src.name or model.source}</b> · {model.describe_directions()}"
                                   + (f" · step {model.step:,}" if model.step is not None else ""))
        self.source_label.setToolTip(model.source)
        self.run = run_of_model(model.source)  # (run folder, which checkpoint the model is) or None
        self.checkpoint_box = CheckpointBox()
        self.checkpoint_box.setObjectName("exportCheckpointBox")
        if self.run is not None:
            self.checkpoint_box.set_run(*self.run)
        self.format_box = QComboBox()
        self.format_box.setObjectName("formatBox")
        for fmt in EXPORT_FORMATS:
            self.format_box.addItem(FORMAT_INFO[fmt][0], fmt)
        self.direction_box = QComboBox()
        self.direction_box.setObjectName("exportDirectionBox")
        for key, text in DIRECTIONS:
            self.direction_box.addItem(text, key)
            self.direction_box.model().item(self.direction_box.count() - 1).setEnabled(key in model.directions)
        if model.directions:
            self.direction_box.setCurrentIndex(self.direction_box.findData(model.directions[0]))
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("exportPath")
        self.path_edit.setMinimumWidth(380)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        path_row = QHBoxLayout()
        path_row.setContentsMargins(0, 0, 0, 0)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.note = QLabel()
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.addRow("Model", self.source_label)
        if self.run is not None:
            form.addRow("Checkpoint", self.checkpoint_box)
        form.addRow("Format", self.format_box)
        form.addRow("Direction", self.direction_box)
        form.addRow("File", path_row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setObjectName("trainButton")  # the primary action's look
        self.buttons.accepted.connect(self._on_export_clicked)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.note)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)

        self.format_box.currentIndexChanged.connect(self._on_format_box_changed)
        self.direction_box.currentIndexChanged.connect(self._on_direction_box_changed)
        self.checkpoint_box.currentIndexChanged.connect(self._on_checkpoint_box_changed)
        self._on_format_box_changed(0)

    # --- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def wait(self) -> None:
        self.jobs.wait()

    @property
    def checkpoint(self) -> str | None:
        """For a run's model: which of its checkpoints to export (``latest`` or ``best``); None otherwise."""
        return self.checkpoint_box.choice if self.run is not None else None

    def suggested_path(self) -> str:
        """<folder>/<name>_<direction>.<suffix>, the name taken from the run or the file the model came from."""
        fmt, direction = self.format_box.currentData(), self.direction_box.currentData()
        src = Path(self.model.source)
        if src.is_dir():
            name = src.name
        elif src.parent.name == CHECKPOINTS:  # RUN/checkpoints/latest.pt → the run's name
            name = src.parent.parent.name
        else:
            name = src.stem or "generator"
        if self.checkpoint is not None and self.checkpoint != "latest":
            name += f"_{self.checkpoint}"
        return str(Path(self._folder or ".") / f"{name}_{direction}{FORMAT_INFO[fmt][1]}")

    # --- export -------------------------------------------------------------------------------
    def export(self) -> bool:
        """Start writing the file (what Export does); False when there is nothing valid to write."""
        if self.busy:
            return False
        out = self.path_edit.text().strip()
        fmt, direction = self.format_box.currentData(), self.direction_box.currentData()
        if not out:
            self.status.setText("Choose a file first.")
            return False
        if direction not in self.model.directions:
            self.status.setText(f"This model has no {dict(DIRECTIONS)[direction]} generator.")
            return False
        self.outcome = None
        self.export_button.setEnabled(False)
        self.status.setText(f"Writing {Path(out).name}…")
        if self.run is not None and self.checkpoint != self.run[1]:  # not the open model: the job loads it
            self.jobs.submit(export_checkpoint, self.run[0], self.checkpoint, direction, fmt, out,
                             finished=self._on_export_finished, failed=self._on_export_failed)
        else:
            self.jobs.submit(export_model, self.model, direction, fmt, out,
                             finished=self._on_export_finished, failed=self._on_export_failed)
        return True

    def _on_export_finished(self, outcome: ExportOutcome) -> None:
        self.outcome = outcome
        self.export_button.setEnabled(True)
        if outcome.missing_extra:
            self.status.setText("")
            show_error(self, "Export needs an optional package", outcome.missing_extra)
            return
        self.status.setText(f"Wrote {outcome.path} ({outcome.size_bytes / 1e6:.1f} MB).")
        self.exported.emit(outcome.path)

    def _on_export_failed(self, message: str, details: str) -> None:
        self.export_button.setEnabled(True)
        self.status.setText("")
        show_error(self, "Export failed", message, details)

    # --- slots --------------------------------------------------------------------------------
    def _on_export_clicked(self) -> None:
        self.export()

    def _on_format_box_changed(self, _index: int) -> None:
        fmt = self.format_box.currentData()
        notes = {
            "safetensors": "Weights and config; opens in this app (Translate, Open model…) and in Python.",
            "onnx": "Any height and width (at least 8 px), values in [−1, 1]. Needs the export extra "
                    "(onnxscript, onnx).",
            "torchscript": "Loads with torch.jit.load in Python or libtorch in C++; any height and width.",
            "cube": "A 33³ 3D LUT for Resolve, Premiere, Photoshop and other grading tools. Only a colour-family "
                    "generator is a per-pixel map that a LUT can hold exactly.",
        }
        self.note.setText(notes[fmt])
        self._retarget()

    def _on_direction_box_changed(self, _index: int) -> None:
        self._retarget()

    def _on_checkpoint_box_changed(self, _index: int) -> None:
        self._retarget()

    def _retarget(self) -> None:
        """Follow format and direction in the file name while the user has not typed their own."""
        current = self.path_edit.text().strip()
        if not current or current == getattr(self, "_suggested", None):
            self._suggested = self.suggested_path()
            self.path_edit.setText(self._suggested)

    def _on_browse_clicked(self) -> None:
        fmt = self.format_box.currentData()
        path, _ = QFileDialog.getSaveFileName(self, "Export model as", self.path_edit.text() or self.suggested_path(),
                                              FORMAT_INFO[fmt][2])
        if path:
            if not Path(path).suffix:
                path += FORMAT_INFO[fmt][1]
            self.path_edit.setText(path)
