"""The Translate tab: drop images (or add them), see input and output side by side at full size.

The model is a ``TranslationModel`` from the current run's latest checkpoint or from any
checkpoint, run folder or model file the user opens. Loading and translating are jobs on the
panel's own worker thread (``gui.worker.JobRunner``), one after another in the order asked
for, so a big image never blocks the window; only numpy copies come back. Outputs can be saved to a folder or dragged out as PNG files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, Qt, QTemporaryDir, QUrl, Signal
from PySide6.QtGui import QDrag, QDragEnterEvent, QDropEvent, QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.data import load_image
from engine.io.run_folder import RUN_FILES, RunFolder
from engine.io.translate import TranslationModel

from .util import show_error, to_qimage
from .worker import JobRunner

__all__ = ["TranslatePanel", "translate_file", "image_paths_of", "model_path", "MODEL_FILTERS"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MODEL_SUFFIXES = {".pt", ".pth", ".safetensors"}
DIRECTIONS = (("AtoB", "A → B"), ("BtoA", "B → A"))
MODEL_FILTERS = ";;".join((
    "Models and runs (*.pt *.pth *.safetensors config.json)",
    "Training checkpoints (*.pt)",
    "Reference-implementation generators (*.pth)",
    "Model files (*.safetensors)",
    "Run folders: pick the run's config.json (config.json)",
    "All files (*)",
))


def translate_file(model: TranslationModel | None, path: str, direction: str, max_pixels: int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Runs on the worker thread: decode (robustly, as training does) and translate; returns copies."""
    img = load_image(path, max_pixels)
    inp = np.array(img.convert("RGB"), dtype=np.uint8, copy=True)
    out = None
    if model is not None and direction in model.directions:
        out = np.array(model.translate(img, direction), dtype=np.uint8, copy=True)
    return inp, out


def load_model(path: str) -> TranslationModel:
    return TranslationModel.load(path, device="cpu")


def _local_paths(event) -> list[Path]:
    md = event.mimeData()
    if not md.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in md.urls() if u.isLocalFile()]


def image_paths_of(event) -> list[str]:
    """Local image files among a drag's URLs."""
    return [str(p) for p in _local_paths(event) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def model_path(path: str | Path) -> str | None:
    """What to load for a chosen or dropped path: a model file, or a run folder (also via its config.json)."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES:
        return str(p)
    if p.is_file() and p.name in RUN_FILES:  # a file dialog cannot pick a folder and files at once
        return str(p.parent)
    if p.is_dir() and RunFolder(p).looks_like_run():
        return str(p)
    return None


def model_path_of(event) -> str | None:
    """The first model file or run folder among a drag's URLs."""
    for p in _local_paths(event):
        found = model_path(p)
        if found is not None:
            return found
    return None


class DragImageLabel(QLabel):
    """An image at its own size that can be dragged out as a PNG file."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.file_for_drag = lambda: None  # set by the owner: → path of a PNG to hand out, or None
        self._press: QPoint | None = None
        self.setObjectName("fullImage")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        path = self.file_for_drag()
        if path is None:
            return
        md = QMimeData()
        md.setUrls([QUrl.fromLocalFile(path)])
        md.setImageData(self.pixmap().toImage())
        drag = QDrag(self)
        drag.setMimeData(md)
        pm = self.pixmap()
        drag.setPixmap(pm.scaled(min(128, pm.width()), min(128, pm.height()), Qt.AspectRatioMode.KeepAspectRatio))
        drag.exec(Qt.DropAction.CopyAction)


@dataclass
class TranslationItem:
    path: str
    row: QFrame
    caption: QLabel
    input_label: QLabel
    output_label: DragImageLabel
    output: QImage | None = None
    generation: int = 0
    error: str = ""


class TranslatePanel(QWidget):
    """Translate dropped images with a model. ``model_changed`` fires after a model loads."""

    current_run_requested = Signal()
    model_changed = Signal(object)
    load_failed = Signal(str)  # the reason a model could not be opened
    translated = Signal(str)  # the input path whose output just arrived

    def __init__(self, model: TranslationModel | None = None, parent: QWidget | None = None, *,
                 max_pixels: int = 80_000_000):
        super().__init__(parent)
        self.setObjectName("translatePanel")
        self.setAcceptDrops(True)
        self.model: TranslationModel | None = None
        self.max_pixels = max_pixels
        self.items: list[TranslationItem] = []
        self.jobs = JobRunner("translate", self)  # one at a time, in order: training shares the CPU
        self._tmp = QTemporaryDir()
        self._pending = 0

        self.model_label = QLabel("No model: open one, or use the current run.")
        self.model_label.setObjectName("modelLabel")
        self.model_label.setWordWrap(True)
        self.open_button = QPushButton("Open model…")
        self.open_button.setToolTip("A training checkpoint (.pt), a model file (.safetensors), a reference-"
                                    "implementation generator (.pth) or a run folder (pick its config.json); "
                                    "or drop one here")
        self.current_button = QPushButton("Use current run")
        self.current_button.setToolTip("The model being trained (a checkpoint is saved first), "
                                       "or the run opened last")
        self.current_button.setEnabled(False)
        self.direction = QComboBox()
        self.direction.setObjectName("directionBox")
        for key, text in DIRECTIONS:
            self.direction.addItem(text, key)
        self.add_button = QPushButton("Add images…")
        self.save_button = QPushButton("Save all…")
        self.save_button.setEnabled(False)
        self.clear_button = QPushButton("Clear")
        self.status = QLabel()
        self.status.setObjectName("hint")

        bar = QHBoxLayout()
        bar.setSpacing(6)
        bar.addWidget(self.open_button)
        bar.addWidget(self.current_button)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Direction"))
        bar.addWidget(self.direction)
        bar.addSpacing(12)
        bar.addWidget(self.add_button)
        bar.addWidget(self.save_button)
        bar.addWidget(self.clear_button)
        bar.addStretch(1)
        bar.addWidget(self.status)

        self.drop_hint = QLabel("Drop image files here\n(or Add images…)\n\nEach is translated at its own size.\n"
                                "Drop a model file (.pt, .pth, .safetensors) or a run folder to use it.")
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setMinimumHeight(180)
        self.list_widget = QWidget()
        self.list_widget.setObjectName("translateList")
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.setContentsMargins(4, 4, 4, 4)
        self.list_layout.setSpacing(10)
        self.list_layout.addWidget(self.drop_hint)
        self.list_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.list_widget)
        self.scroll.setWidgetResizable(True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 10, 0, 0)
        lay.setSpacing(8)
        lay.addWidget(self.model_label)
        lay.addLayout(bar)
        lay.addWidget(self.scroll, 1)

        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.current_button.clicked.connect(self.current_run_requested)
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.clear_button.clicked.connect(self.clear)
        self.direction.currentIndexChanged.connect(self._on_direction_changed)
        if model is not None:
            self.set_model(model)

    # --- model -----------------------------------------------------------------------------
    def set_model(self, model: TranslationModel) -> None:
        self.model = model
        have = model.directions
        for i in range(self.direction.count()):
            item = self.direction.model().item(i)
            item.setEnabled(self.direction.itemData(i) in have)
        if self.direction.currentData() not in have and have:
            self.direction.setCurrentIndex(self.direction.findData(have[0]))  # retranslates
        step = f" · step {model.step:,}" if model.step is not None else ""
        src = Path(model.source)
        name = f"run “{src.name}”" if src.is_dir() else src.name
        self.model_label.setText(f"<b>Model</b> {name}{step} · <b>{model.describe_directions()}</b>"
                                 f" <span style='color:#7d8694'>({model.source})</span>")
        self.model_changed.emit(model)
        self._retranslate_all()

    def load_model(self, path: str) -> None:
        """Load a model in the background; errors show in the model line."""
        self.status.setText("loading model…")
        self.jobs.submit(load_model, str(path), finished=self._on_load_finished, failed=self._on_load_failed)

    def set_current_run_available(self, available: bool) -> None:
        self.current_button.setEnabled(available)

    # --- images ----------------------------------------------------------------------------
    def add_files(self, paths: list[str]) -> None:
        for path in paths:
            self.items.append(self._make_item(path))
        self.drop_hint.setVisible(not self.items)
        for item in self.items[-len(paths):] if paths else []:
            self._translate(item)

    def clear(self) -> None:
        for item in self.items:
            item.row.deleteLater()
        self.items.clear()
        self.drop_hint.show()
        self.save_button.setEnabled(False)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def wait(self) -> None:
        self.jobs.wait()

    def save_all(self, folder: str) -> list[str]:
        written = []
        suffix = self.direction.currentData()
        for item in self.items:
            if item.output is not None:
                dst = Path(folder) / f"{Path(item.path).stem}_{suffix}.png"
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

    # --- internals -------------------------------------------------------------------------
    def _make_item(self, path: str) -> TranslationItem:
        row = QFrame()
        row.setObjectName("translateRow")
        caption = QLabel(f"{Path(path).name} · loading…")
        caption.setObjectName("caption")
        inp = QLabel("…")
        inp.setObjectName("fullImage")
        out = DragImageLabel()
        out.setText("…")
        item = TranslationItem(path, row, caption, inp, out)
        out.file_for_drag = lambda: self._drag_file(item)
        for lab in (inp, out):
            lab.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            lab.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        arrow = QLabel("→")
        arrow.setObjectName("arrow")
        images = QHBoxLayout()
        images.setSpacing(12)
        images.addWidget(inp, 0, Qt.AlignmentFlag.AlignTop)
        images.addWidget(arrow, 0, Qt.AlignmentFlag.AlignVCenter)
        images.addWidget(out, 0, Qt.AlignmentFlag.AlignTop)
        images.addStretch(1)
        lay = QVBoxLayout(row)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(4)
        lay.addWidget(caption)
        lay.addLayout(images)
        self.list_layout.insertWidget(self.list_layout.count() - 1, row)
        return item

    def _translate(self, item: TranslationItem) -> None:
        item.generation += 1
        gen, direction = item.generation, self.direction.currentData()
        self._pending += 1
        self._update_status()
        self.jobs.submit(translate_file, self.model, item.path, direction, self.max_pixels,
                         finished=lambda res: self._on_translation_finished(item, gen, direction, res),
                         failed=lambda msg, _tb: self._on_translation_failed(item, gen, msg))

    def _retranslate_all(self) -> None:
        for item in self.items:
            self._translate(item)

    def _on_translation_finished(self, item: TranslationItem, gen: int, direction: str, result) -> None:
        self._pending -= 1
        self._update_status()
        if gen != item.generation or item not in self.items:
            return
        inp, out = result
        h, w = inp.shape[:2]
        item.input_label.setPixmap(QPixmap.fromImage(to_qimage(inp)))
        item.input_label.setFixedSize(w, h)
        label = dict(DIRECTIONS)[direction]
        if out is None:
            item.output = None
            item.output_label.setText("open a model to translate" if self.model is None else
                                      f"this model has no {label} generator")
            item.output_label.setFixedSize(max(w, 200), h)
            item.caption.setText(f"{Path(item.path).name} · {w}×{h}")
        else:
            item.output = to_qimage(out)
            item.output_label.setPixmap(QPixmap.fromImage(item.output))
            item.output_label.setFixedSize(item.output.width(), item.output.height())
            item.output_label.setToolTip("Drag to copy this image out as a PNG file")
            item.caption.setText(f"{Path(item.path).name} · {w}×{h} · {label}")
        self.save_button.setEnabled(any(i.output is not None for i in self.items))
        self.translated.emit(item.path)

    def _on_translation_failed(self, item: TranslationItem, gen: int, message: str) -> None:
        self._pending -= 1
        self._update_status()
        if gen != item.generation or item not in self.items:
            return
        item.error = message
        item.caption.setText(f"{Path(item.path).name} · could not translate: {message}")
        item.caption.setProperty("level", "error")
        item.caption.style().polish(item.caption)

    def _update_status(self) -> None:
        self.status.setText(f"translating {self._pending}…" if self._pending else "")

    def _on_load_finished(self, model: TranslationModel) -> None:
        self.status.setText("")
        self.set_model(model)

    def _on_load_failed(self, message: str, _details: str) -> None:
        self.status.setText("")
        self.model_label.setText(f"<span style='color:#ff7b72'>Could not open the model: {message}</span>")
        self.load_failed.emit(message)
        # Refused files (a pickle that would run code, a foreign file) are the user's business to
        # know about, not a bug: the one-line reason, no traceback.
        show_error(self, "Cannot open the model", message)

    def _on_direction_changed(self, _index: int) -> None:
        self._retranslate_all()

    def _on_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTERS)
        if path:
            self.load_model(model_path(path) or path)

    def _on_add_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add images", "", "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ")")
        if paths:
            self.add_files(paths)

    def _on_save_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save translated images to")
        if folder:
            self.save_all(folder)

    def _drag_file(self, item: TranslationItem) -> str | None:
        if item.output is None or not self._tmp.isValid():
            return None
        dst = Path(self._tmp.path()) / f"{Path(item.path).stem}_{self.direction.currentData()}.png"
        return str(dst) if item.output.save(str(dst), "PNG") else None
