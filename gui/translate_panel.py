"""The Translate tab: drop images (or add them), compare each input with its translation.

The model is a ``TranslationModel`` from the current run's checkpoint or from any checkpoint, run
folder or model file the user opens; for a run, the Checkpoint box picks its latest or its best
checkpoint. Loading and translating are jobs on the panel's own worker thread
(``gui.jobs.JobRunner``), one after another in the order asked for, so a big image never blocks
the window and a second drop waits its turn. A translation job reports through its context: the
decoded input first, then its tiles' progress (at most ten times a second), then the translation;
only numpy copies come back.

Each result is a ``ResultRow`` (``gui.translate_result``) around one ``CompareView``: the input left
of a divider and the translation right of it (or side by side), fitted to the tab's width and height,
or zoomed (1:1, 2×, 4×) in its own scrolling area. Outputs can be saved to a folder or dragged out as
PNG files. The jobs are in ``gui.translate_jobs``, what a drop may hold in ``gui.translate_paths``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTemporaryDir, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.io.run_folder import run_of_model
from engine.io.tiling import DEFAULT_MEMORY
from engine.io.translate import TranslationModel

from .checkpoint_box import CheckpointBox
from .compare_view import CompareControls
from .jobs import JobRunner
from .translate_jobs import (
    DIRECTIONS,
    TranslateRequest,
    TranslationProgress,
    TranslationResult,
    TranslationStarted,
    load_model,
    translate_job,
)
from .translate_paths import IMAGE_FILTER, MODEL_FILTERS, image_paths_of, model_path, model_path_of
from .translate_result import ResultList, ResultRow
from .util import show_error

__all__ = ["TranslatePanel", "MEMORY_CHOICES"]

MEMORY_CHOICES = (("512 MB", 512 << 20), ("1 GB", 1 << 30), ("2 GB", 2 << 30), ("4 GB", 4 << 30), ("8 GB", 8 << 30))
assert DEFAULT_MEMORY in dict(MEMORY_CHOICES).values()


class TranslatePanel(QWidget):
    """Translate dropped images with a model. ``model_changed`` fires after a model loads."""

    current_run_requested = Signal()
    model_changed = Signal(object)
    load_failed = Signal(str)  # the reason a model could not be opened
    translated = Signal(str)  # the input path whose output just arrived
    progressed = Signal(str, int, int)  # input path, tiles done, tiles in all (as shown)

    def __init__(self, model: TranslationModel | None = None, parent: QWidget | None = None, *,
                 max_pixels: int = 80_000_000, tile: int | None = None):
        super().__init__(parent)
        self.setObjectName("translatePanel")
        self.setAcceptDrops(True)
        self.model: TranslationModel | None = None
        self.max_pixels = max_pixels
        self.tile = tile  # a fixed tile size (tests); None: tiles sized to the memory setting
        self.jobs = JobRunner("translate", self)  # one at a time, in order: training shares the CPU
        self._tmp = QTemporaryDir()
        self._error_box: QMessageBox | None = None

        # --- model line ---
        self.model_label = QLabel("No model: open one, or use the current run.")
        self.model_label.setObjectName("modelLabel")
        self.model_label.setWordWrap(True)
        self.scale_note = QLabel()
        self.scale_note.setObjectName("scaleNoteText")
        self.scale_note.setWordWrap(True)
        self.open_button = QPushButton("Open model…")
        self.open_button.setToolTip("A training checkpoint (.pt), a model file (.safetensors), a reference-"
                                    "implementation generator (.pth) or a run folder (pick its config.json); "
                                    "or drop one here")
        self.current_button = QPushButton("Use current run")
        self.current_button.setToolTip("The model being trained (a checkpoint is saved first), "
                                       "or the run opened last")
        self.current_button.setEnabled(False)
        self.checkpoint_box = CheckpointBox()
        self.direction = QComboBox()
        self.direction.setObjectName("directionBox")
        for key, text in DIRECTIONS:
            self.direction.addItem(text, key)
        self.memory_box = QComboBox()
        self.memory_box.setObjectName("memoryBox")
        for text, value in MEMORY_CHOICES:
            self.memory_box.addItem(text, value)
        self.memory_box.setCurrentIndex(self.memory_box.findData(DEFAULT_MEMORY))
        self.memory_box.setToolTip("What one translation may use. A larger image is cut into overlapping tiles "
                                   "that fit; choose less when a translation runs out of memory.")
        self.match_scale = QCheckBox("Match training scale")
        self.match_scale.setObjectName("matchScale")
        self.match_scale.setToolTip("Shrink each image to the scale the model learned at, translate, and enlarge "
                                    "the result back to the image's size")
        self.scale_frame = QFrame()  # the note on the training scale and what to do about it
        self.scale_frame.setObjectName("scaleNote")
        note_lay = QHBoxLayout(self.scale_frame)
        note_lay.setContentsMargins(10, 5, 10, 5)
        note_lay.setSpacing(12)
        note_lay.addWidget(self.scale_note, 1)
        note_lay.addWidget(self.match_scale, 0, Qt.AlignmentFlag.AlignVCenter)
        self.scale_frame.hide()

        model_bar = QHBoxLayout()
        model_bar.setSpacing(6)
        model_bar.addWidget(self.open_button)
        model_bar.addWidget(self.current_button)
        model_bar.addSpacing(12)
        model_bar.addWidget(self.checkpoint_box)
        model_bar.addSpacing(12)
        model_bar.addWidget(QLabel("Direction"))
        model_bar.addWidget(self.direction)
        model_bar.addSpacing(12)
        model_bar.addWidget(QLabel("Memory for translation"))
        model_bar.addWidget(self.memory_box)
        model_bar.addStretch(1)

        # --- image bar ---
        self.add_button = QPushButton("Add images…")
        self.save_button = QPushButton("Save all…")
        self.save_button.setEnabled(False)
        self.clear_button = QPushButton("Clear")
        self.compare = CompareControls()
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the tab

        image_bar = QHBoxLayout()
        image_bar.setSpacing(6)
        image_bar.addWidget(self.add_button)
        image_bar.addWidget(self.save_button)
        image_bar.addWidget(self.clear_button)
        image_bar.addSpacing(18)
        image_bar.addWidget(self.compare)
        image_bar.addWidget(self.status, 1)

        # --- results ---
        self.results = ResultList()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 10, 0, 0)
        lay.setSpacing(8)
        lay.addWidget(self.model_label)
        lay.addWidget(self.scale_frame)
        lay.addLayout(model_bar)
        lay.addLayout(image_bar)
        lay.addWidget(self.results, 1)

        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.current_button.clicked.connect(self.current_run_requested)
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.clear_button.clicked.connect(self.clear)
        self.direction.currentIndexChanged.connect(self._on_direction_changed)
        self.checkpoint_box.currentIndexChanged.connect(self._on_checkpoint_box_changed)
        self.memory_box.currentIndexChanged.connect(self._on_memory_box_changed)
        self.match_scale.toggled.connect(self._on_match_scale_toggled)
        self.compare.mode_changed.connect(self._on_compare_mode_changed)
        self.compare.split_changed.connect(self._on_compare_split_changed)
        self._show_checkpoint_box(None)
        if model is not None:
            self.set_model(model)

    # --- model -----------------------------------------------------------------------------
    def set_model(self, model: TranslationModel) -> None:
        self.model = model
        have = model.directions
        for i in range(self.direction.count()):
            item = self.direction.model().item(i)
            item.setEnabled(self.direction.itemData(i) in have)
        self.direction.blockSignals(True)  # one retranslation below, not two
        if self.direction.currentData() not in have and have:
            self.direction.setCurrentIndex(self.direction.findData(have[0]))
        self.direction.blockSignals(False)
        step = f" · step {model.step:,}" if model.step is not None else ""
        src = Path(model.source)
        run = run_of_model(model.source)
        if run is not None:
            name = f"run “{Path(run[0]).name}”" + (" · best checkpoint" if run[1] == "best" else "")
        else:
            name = f"run “{src.name}”" if src.is_dir() else src.name
        self.model_label.setText(f"<b>Model</b> {name}{step} · <b>{model.describe_directions()}</b>"
                                 f" <span style='color:#7d8694'>({model.source})</span>")
        self._show_checkpoint_box(run)
        self._update_scale_note()
        self.model_changed.emit(model)
        self._retranslate_all()

    def load_model(self, path: str, checkpoint: str = "latest") -> None:
        """Load a model in the background (``checkpoint``: of a run folder); errors show in the model line."""
        self.status.setText("loading model…")
        self.jobs.submit(load_model, str(path), checkpoint, finished=self._on_load_finished,
                         failed=self._on_load_failed)

    def set_current_run_available(self, available: bool) -> None:
        self.current_button.setEnabled(available)

    def translation_scale(self, direction: str | None = None) -> float:
        """The scale new translations run at: the training scale when matched, else 1."""
        direction = direction or self.direction.currentData()
        if self.model is None or not self.match_scale.isChecked() or self.scale_frame.isHidden():
            return 1.0
        return self.model.train_scale(direction) or 1.0

    @property
    def max_memory(self) -> int:
        return int(self.memory_box.currentData())

    # --- images ----------------------------------------------------------------------------
    def add_files(self, paths: list[str]) -> None:
        new = [self.results.add(path, self.compare.mode, self.compare.split, self._drag_file) for path in paths]
        for row in new:
            row.view.split_moved.connect(self._on_view_split_moved)
            self._translate(row)

    @property
    def items(self) -> list[ResultRow]:
        """The results, in the order added."""
        return self.results.rows

    def clear(self) -> None:
        self.results.clear()  # their jobs are stopped: a running one ends at its next tile
        self.save_button.setEnabled(False)
        self._update_status()

    @property
    def busy(self) -> bool:
        return any(item.state in ("waiting", "translating") for item in self.items) or self.jobs.busy

    def wait(self) -> None:
        self.jobs.wait()

    def shutdown(self) -> None:
        """Cancel the running translation and the queued ones, then join the thread (closing)."""
        self.jobs.shutdown()

    def save_all(self, folder: str) -> list[str]:
        written = []
        for item in self.items:
            if item.output is not None:
                dst = Path(folder) / item.output_name
                if item.output.save(str(dst), "PNG"):
                    written.append(str(dst))
        self.status.setText(f"saved {len(written)} image{'s' if len(written) != 1 else ''} to {folder}")
        return written

    # --- drops -----------------------------------------------------------------------------
    # Images are translated; a model file or a run folder becomes the model.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if image_paths_of(event) or model_path_of(event):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if image_paths_of(event) or model_path_of(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths, model = image_paths_of(event), model_path_of(event)
        if paths or model:
            event.acceptProposedAction()
        if model:
            self.load_model(model)  # queued on the same worker thread: loaded before the images run
        if paths:
            self.add_files(paths)

    # --- Qt overrides ----------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        self.checkpoint_box.refresh()  # a training run may have written best.pt meanwhile
        super().showEvent(event)

    # --- translating -----------------------------------------------------------------------
    def _translate(self, item: ResultRow) -> None:
        gen, direction = item.restart(), self.direction.currentData()  # a stale job's result is skipped
        request = TranslateRequest(item.path, direction, self.max_pixels, self.max_memory,
                                   self.translation_scale(direction), self.tile)
        item.job = self.jobs.submit(
            translate_job, self.model, request, takes_context=True,
            yielded=lambda report: self._on_job_yielded(item, gen, report),
            finished=lambda res: self._on_translation_finished(item, gen, res),
            failed=lambda msg, tb: self._on_translation_failed(item, gen, msg, tb))
        self._update_status()

    def _retranslate_all(self) -> None:
        for item in self.items:
            self._translate(item)

    def _current(self, item: ResultRow, gen: int) -> bool:
        return gen == item.generation and item in self.items

    def _on_job_yielded(self, item: ResultRow, gen: int, report) -> None:
        if not self._current(item, gen):
            return
        if isinstance(report, TranslationStarted):
            item.show_started(report.input)
            self._update_status()
        elif isinstance(report, TranslationProgress):
            item.show_progress(report.done, report.total)
            self.progressed.emit(item.path, report.done, report.total)

    def _on_translation_finished(self, item: ResultRow, gen: int, result: TranslationResult) -> None:
        if not self._current(item, gen):
            self._update_status()
            return
        item.show_result(result, have_model=self.model is not None)
        self.save_button.setEnabled(any(i.output is not None for i in self.items))
        self._update_status()
        self.translated.emit(item.path)

    def _on_translation_failed(self, item: ResultRow, gen: int, message: str, details: str) -> None:
        if not self._current(item, gen):
            self._update_status()
            return
        item.show_failure(message)
        self._update_status()
        # One box at a time: a folder of images that all fail would otherwise stack a box for each.
        if self._error_box is None:
            self._error_box = show_error(self, f"Could not translate {Path(item.path).name}", message, details)
            self._error_box.finished.connect(self._on_error_box_finished)

    def _on_error_box_finished(self, _result: int) -> None:
        self._error_box = None

    def _update_status(self) -> None:
        running = sum(item.state == "translating" for item in self.items)
        waiting = sum(item.state == "waiting" for item in self.items)
        parts = (["translating…"] if running else []) + ([f"{waiting} waiting"] if waiting else [])
        self.status.setText(" · ".join(parts))

    def _update_scale_note(self) -> None:
        note = self.model.scale_note(self.direction.currentData()) if self.model is not None else ""
        scale = self.model.train_scale(self.direction.currentData()) if self.model is not None else None
        self.scale_note.setText(f"⚠ {note[:1].upper()}{note[1:]}." if note else "")
        self.scale_frame.setVisible(bool(note) and scale is not None)
        if scale is not None:
            self.match_scale.setText(f"Match training scale ({scale:.2g}×)")

    def _show_checkpoint_box(self, run: tuple[str, str] | None) -> None:
        self.checkpoint_box.set_run(run[0] if run else None, run[1] if run else "latest")
        self.checkpoint_box.setVisible(run is not None)

    # --- slots -----------------------------------------------------------------------------
    def _on_load_finished(self, model: TranslationModel) -> None:
        self.status.setText("")
        self.set_model(model)

    def _on_load_failed(self, message: str, _details: str) -> None:
        self.status.setText("")
        self.model_label.setText(f"<span style='color:#ff7b72'>Could not open the model: {message}</span>")
        self.load_failed.emit(message)
        run = run_of_model(self.model.source) if self.model is not None else None
        self._show_checkpoint_box(run)  # back to the checkpoint that is still in use
        # Refused files (a pickle that would run code, a foreign file) are the user's business to
        # know about, not a bug: the one-line reason, no traceback.
        show_error(self, "Cannot open the model", message)

    def _on_direction_changed(self, _index: int) -> None:
        self._update_scale_note()
        self._retranslate_all()

    def _on_checkpoint_box_changed(self, _index: int) -> None:
        run_dir = self.checkpoint_box.run_dir
        if run_dir is not None:
            self.load_model(run_dir, self.checkpoint_box.choice)

    def _on_memory_box_changed(self, _index: int) -> None:
        for item in self.items:  # a different budget may fit what did not (the others would come out the same)
            if item.state == "failed":
                self._translate(item)

    def _on_match_scale_toggled(self, _checked: bool) -> None:
        self._retranslate_all()

    def _on_compare_mode_changed(self, mode: str) -> None:
        for item in self.items:
            item.set_mode(mode)

    def _on_compare_split_changed(self, fraction: float) -> None:
        for item in self.items:
            item.view.set_split(fraction)

    def _on_view_split_moved(self, fraction: float) -> None:
        self.compare.set_split(fraction)  # every view follows the one dragged

    def _on_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTERS)
        if path:
            self.load_model(model_path(path) or path)

    def _on_add_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add images", "", IMAGE_FILTER)
        if paths:
            self.add_files(paths)

    def _on_save_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save translated images to")
        if folder:
            self.save_all(folder)

    def _drag_file(self, item: ResultRow) -> str | None:
        if item.output is None or not self._tmp.isValid():
            return None
        dst = Path(self._tmp.path()) / item.output_name
        return str(dst) if item.output.save(str(dst), "PNG") else None
