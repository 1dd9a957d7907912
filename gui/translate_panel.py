"""The Translate tab: drop images (or add them), compare each input with its translation.

The model is a ``TranslationModel`` from the current run's checkpoint or from any checkpoint, run
folder or model file the user opens; for a run, the Checkpoint box picks its latest or its best
checkpoint. Loading and translating are jobs on the panel's own worker thread
(``gui.jobs.JobRunner``), one after another in the order asked for, so a big image never blocks
the window and a second drop waits its turn. A translation job reports through its context: the
decoded input first, then its tiles' progress (at most ten times a second), then the translation;
only numpy copies come back.

Each result is one ``CompareView``: the input left of a divider and the translation right of it
(or side by side), fitted to the tab's width and height, or zoomed (1:1, 2×, 4×) in its own
scrolling area. Outputs can be saved to a folder or dragged out as PNG files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTemporaryDir, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.data import load_image
from engine.io.run_folder import CHECKPOINTS, RUN_FILES, RunFolder
from engine.io.tiling import DEFAULT_MEMORY, OutOfMemory
from engine.io.translate import TranslationModel

from .compare_view import MODES, ZOOMS, CompareView
from .jobs import Job, JobContext, JobRunner
from .util import Throttle, show_error, to_qimage

__all__ = ["TranslatePanel", "TranslateRequest", "TranslationStarted", "TranslationProgress", "TranslationResult",
           "translate_job", "load_model", "image_paths_of", "model_path", "run_of", "CheckpointBox",
           "MODEL_FILTERS", "MEMORY_CHOICES"]

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
MEMORY_CHOICES = (("512 MB", 512 << 20), ("1 GB", 1 << 30), ("2 GB", 2 << 30), ("4 GB", 4 << 30), ("8 GB", 8 << 30))
assert DEFAULT_MEMORY in dict(MEMORY_CHOICES).values()
CHECKPOINT_CHOICES = (("latest", "latest checkpoint"), ("best", "best checkpoint"))
NO_BEST = ("No best checkpoint yet: the run writes checkpoints/best.pt at the lowest held-out W reading, "
           "which needs the W monitor and held-out images")
PROGRESS_INTERVAL = 0.1  # s between two progress reports of one translation: the GUI redraws ≤ 10×/s


# --- the jobs (worker thread) ------------------------------------------------------------------------
@dataclass(frozen=True)
class TranslateRequest:
    """One translation, fixed when it is asked for (the worker reads no widget)."""

    path: str
    direction: str
    max_pixels: int = 80_000_000
    max_memory: int = DEFAULT_MEMORY
    scale: float = 1.0
    tile: int | None = None


@dataclass(frozen=True)
class TranslationStarted:
    """The job has decoded its input (a copy the worker no longer touches) and starts translating."""

    input: np.ndarray


@dataclass(frozen=True)
class TranslationProgress:
    done: int
    total: int


@dataclass(frozen=True)
class TranslationResult:
    input: np.ndarray
    output: np.ndarray | None  # None: no model, or no generator for the direction
    direction: str
    scale: float
    seconds: float = 0.0
    tiles: int = 0


class TranslationCancelled(Exception):  # not a RuntimeError: tiling turns those into OutOfMemory
    """The job was asked to stop (the item was cleared or retranslated, or the app is closing)."""


def translate_job(ctx: JobContext, model: TranslationModel | None, request: TranslateRequest,
                  interval: float = PROGRESS_INTERVAL) -> TranslationResult:
    """Runs on the worker thread: decode (robustly, as training does), report the input, translate with
    progress. The progress callback runs here too: it hands numbers over with ``ctx.emit``, never a widget."""
    if ctx.stop_requested:
        raise TranslationCancelled("stopped before it started")
    img = load_image(request.path, request.max_pixels)
    inp = np.array(img.convert("RGB"), dtype=np.uint8, copy=True)
    ctx.emit(TranslationStarted(inp))
    if model is None or request.direction not in model.directions:
        return TranslationResult(inp, None, request.direction, request.scale)
    last, tiles = 0.0, 0

    def progress(done: int, total: int) -> None:
        nonlocal last, tiles
        if ctx.stop_requested:
            raise TranslationCancelled("stopped")
        tiles = total
        now = time.monotonic()
        if done >= total or now - last >= interval:
            last = now
            ctx.emit(TranslationProgress(done, total))

    start = time.perf_counter()
    try:
        out = model.translate(img, request.direction, tile=request.tile, max_memory=request.max_memory,
                              scale=request.scale, progress=progress)
    except OutOfMemory as e:
        raise OutOfMemory(f"{e}\n\nIn the app: choose a smaller “Memory for translation”; the image is then cut "
                          "into smaller tiles.") from None
    return TranslationResult(inp, np.array(out, dtype=np.uint8, copy=True), request.direction, request.scale,
                             time.perf_counter() - start, tiles)


def load_model(path: str, checkpoint: str = "latest") -> TranslationModel:
    return TranslationModel.load(path, device="cpu", checkpoint=checkpoint)


# --- paths -------------------------------------------------------------------------------------------
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


def run_of(source: str) -> tuple[str, str] | None:
    """The run folder a model came from and which of its checkpoints it is (``latest`` or ``best``), or None
    for a model file. A run's model is loaded from RUN/checkpoints/<file>.pt: its source names that file."""
    p = Path(source)
    if p.is_dir():
        return (str(p), "latest") if RunFolder(p).looks_like_run() else None
    if p.suffix == ".pt" and p.parent.name == CHECKPOINTS and RunFolder(p.parent.parent).looks_like_run():
        run = RunFolder(p.parent.parent)
        return str(run.path), "best" if p == run.best_checkpoint else "latest"
    return None


class CheckpointBox(QComboBox):
    """Latest or best checkpoint of a run; best is disabled (with the reason as its tooltip) until it exists."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("checkpointBox")
        self.run_dir: str | None = None
        for key, text in CHECKPOINT_CHOICES:
            self.addItem(text, key)
        self.setToolTip("Checkpoint: which of the run's to use, the latest, or the best (the generators at the "
                        "lowest held-out W reading)")

    @property
    def choice(self) -> str:
        return self.currentData()

    def set_run(self, run_dir: str | None, which: str = "latest") -> None:
        """Follow ``run_dir`` and show ``which`` (without reporting a change)."""
        self.run_dir = run_dir
        self.refresh()
        self.blockSignals(True)
        self.setCurrentIndex(self.findData(which))
        self.blockSignals(False)

    def has_best(self) -> bool:
        return self.run_dir is not None and RunFolder(self.run_dir).best_checkpoint.is_file()

    def refresh(self) -> None:
        """Best.pt appears while a run trains: look again (when shown, before the list opens)."""
        i = self.findData("best")
        item = self.model().item(i)
        have = self.has_best()
        item.setEnabled(have)
        self.setItemData(i, "The generators at the lowest held-out W reading" if have else NO_BEST,
                         Qt.ItemDataRole.ToolTipRole)

    def showPopup(self) -> None:  # noqa: N802
        self.refresh()
        super().showPopup()


# --- the panel ---------------------------------------------------------------------------------------
@dataclass
class TranslationItem:
    path: str
    row: QFrame
    caption: QLabel
    progress: QProgressBar
    zoom_box: QComboBox
    area: QScrollArea
    view: CompareView
    input: QImage | None = None
    output: QImage | None = None
    generation: int = 0
    state: str = "waiting"  # waiting | translating | done | failed
    error: str = ""
    job: Job | None = None
    direction: str = ""
    scale: float = 1.0


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
        self.items: list[TranslationItem] = []
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
        self.mode_box = QComboBox()
        self.mode_box.setObjectName("modeBox")
        for key, text in MODES:
            self.mode_box.addItem(text, key)
        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setObjectName("splitSlider")
        self.split_slider.setRange(0, 100)
        self.split_slider.setValue(50)
        self.split_slider.setFixedWidth(140)
        self.split_slider.setToolTip("Where the divider stands: the input left of it, the translation right "
                                     "(or drag the divider on an image)")
        self.split_value = QLabel("50 %")
        self.split_value.setObjectName("hint")
        self.split_value.setMinimumWidth(36)
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
        image_bar.addWidget(QLabel("Compare"))
        image_bar.addWidget(self.mode_box)
        self.split_controls = QWidget()  # only for the split: side by side has no divider
        split_lay = QHBoxLayout(self.split_controls)
        split_lay.setContentsMargins(6, 0, 0, 0)
        split_lay.setSpacing(6)
        split_lay.addWidget(QLabel("Input"))
        split_lay.addWidget(self.split_slider)
        split_lay.addWidget(QLabel("Output"))
        split_lay.addWidget(self.split_value)
        image_bar.addWidget(self.split_controls)
        image_bar.addWidget(self.status, 1)

        # --- results ---
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
        # Results fit the width (each zoomed one scrolls in its own area): no sideways scrolling here.
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.installEventFilter(self)
        # A window being resized sends many sizes; each one rescales every image: ten a second at most.
        self._relayout = Throttle(self._layout_items, 10.0, self)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 10, 0, 0)
        lay.setSpacing(8)
        lay.addWidget(self.model_label)
        lay.addWidget(self.scale_frame)
        lay.addLayout(model_bar)
        lay.addLayout(image_bar)
        lay.addWidget(self.scroll, 1)

        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.current_button.clicked.connect(self.current_run_requested)
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.clear_button.clicked.connect(self.clear)
        self.direction.currentIndexChanged.connect(self._on_direction_changed)
        self.checkpoint_box.currentIndexChanged.connect(self._on_checkpoint_box_changed)
        self.memory_box.currentIndexChanged.connect(self._on_memory_box_changed)
        self.match_scale.toggled.connect(self._on_match_scale_toggled)
        self.mode_box.currentIndexChanged.connect(self._on_mode_box_changed)
        self.split_slider.valueChanged.connect(self._on_split_slider_changed)
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
        run = run_of(model.source)
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
        new = [self._make_item(path) for path in paths]
        self.items += new
        self.drop_hint.setVisible(not self.items)
        for item in new:
            self._translate(item)

    def clear(self) -> None:
        for item in self.items:
            if item.job is not None:
                item.job.stop()  # a running one ends at its next tile; queued ones never start
            item.row.deleteLater()
        self.items.clear()
        self.drop_hint.show()
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
                dst = Path(folder) / f"{Path(item.path).stem}_{item.direction}.png"
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
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.scroll and event.type() == QEvent.Type.Resize:
            self._relayout.mark()
        return super().eventFilter(watched, event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        self.checkpoint_box.refresh()  # a training run may have written best.pt meanwhile
        super().showEvent(event)

    # --- rows ------------------------------------------------------------------------------
    def _make_item(self, path: str) -> TranslationItem:
        row = QFrame()
        row.setObjectName("translateRow")
        caption = QLabel(f"{Path(path).name} · waiting")
        caption.setObjectName("caption")
        caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        progress = QProgressBar()
        progress.setObjectName("itemProgress")
        progress.setFixedWidth(200)
        zoom = QComboBox()
        zoom.setObjectName("zoomBox")
        for key, text in ZOOMS:
            zoom.addItem(text, key)
        zoom.setToolTip("Fit: the whole image in view, never enlarged. 1:1: one image pixel per screen pixel "
                        "(double-click the image to switch)")
        view = CompareView()
        view.set_mode(self.mode_box.currentData())
        view.set_split(self.split_slider.value() / 100)
        area = QScrollArea()
        area.setObjectName("compareArea")
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setWidget(view)
        area.setWidgetResizable(False)
        area.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        area.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        item = TranslationItem(path, row, caption, progress, zoom, area, view)
        view.file_for_drag = lambda: self._drag_file(item)
        view.split_moved.connect(self._on_view_split_moved)
        view.zoom_toggled.connect(lambda: self._on_view_zoom_toggled(item))
        zoom.currentIndexChanged.connect(lambda _i: self._on_zoom_box_changed(item))
        self._show_waiting(item)

        header = QHBoxLayout()
        header.setSpacing(8)
        header.addWidget(caption, 1)
        header.addWidget(progress)
        header.addWidget(zoom)
        lay = QVBoxLayout(row)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(6)
        lay.addLayout(header)
        lay.addWidget(area)
        self.list_layout.insertWidget(self.list_layout.count() - 1, row)
        self._layout_item(item)
        return item

    def _fit_box(self) -> QSize:
        """The room a result has in the list: the list's width (its scroll bar always counted, so that the
        bar coming and going cannot resize the images back and forth) and most of its height."""
        frame = 2 * self.scroll.frameWidth()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        chrome_w = 2 * 4 + 2 * 8 + 2  # the list's margins, the row's margins, the row's border
        chrome_h = 2 * 4 + 6 + 8 + 6 + 30  # margins, spacing and the caption line
        return QSize(max(64, self.scroll.width() - frame - bar - chrome_w),
                     max(120, self.scroll.height() - frame - chrome_h))

    def _layout_items(self) -> None:
        for item in self.items:
            self._layout_item(item)

    def _layout_item(self, item: TranslationItem) -> None:
        box = self._fit_box()
        item.view.set_box(box)
        item.view.set_zoom(item.zoom_box.currentData())
        size = item.view.size()
        if item.view.zoom == "fit":
            item.area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            item.area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            item.area.setFixedHeight(size.height())
        else:  # zoomed: the row keeps to the view's height and scrolls inside
            item.area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            item.area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            bar = item.area.horizontalScrollBar().sizeHint().height() if size.width() > box.width() else 0
            item.area.setFixedHeight(min(size.height() + bar, box.height()))

    # --- translating -----------------------------------------------------------------------
    def _translate(self, item: TranslationItem) -> None:
        if item.job is not None:
            item.job.stop()  # its result would be stale: let the runner skip it
        item.generation += 1
        gen, direction = item.generation, self.direction.currentData()
        request = TranslateRequest(item.path, direction, self.max_pixels, self.max_memory,
                                   self.translation_scale(direction), self.tile)
        item.state, item.error = "waiting", ""
        self._show_waiting(item)
        item.job = self.jobs.submit(
            translate_job, self.model, request, takes_context=True,
            yielded=lambda report: self._on_job_yielded(item, gen, report),
            finished=lambda res: self._on_translation_finished(item, gen, res),
            failed=lambda msg, tb: self._on_translation_failed(item, gen, msg, tb))
        self._update_status()

    def _retranslate_all(self) -> None:
        for item in self.items:
            self._translate(item)

    def _current(self, item: TranslationItem, gen: int) -> bool:
        return gen == item.generation and item in self.items

    def _on_job_yielded(self, item: TranslationItem, gen: int, report) -> None:
        if not self._current(item, gen):
            return
        if isinstance(report, TranslationStarted):
            item.state = "translating"
            item.input = to_qimage(report.input)
            item.output = None
            item.view.set_images(item.input, None)
            item.view.set_message("translating…")
            h, w = report.input.shape[:2]
            self._set_caption(item, f"{w}×{h} · translating…")
            item.progress.setRange(0, 0)  # busy until the first tile reports
            item.progress.setFormat("")
            item.progress.show()
            self._layout_item(item)
            self._update_status()
        elif isinstance(report, TranslationProgress):
            if report.total > 1:
                item.progress.setRange(0, report.total)
                item.progress.setValue(report.done)
                item.progress.setFormat("tile %v of %m")
            self.progressed.emit(item.path, report.done, report.total)

    def _on_translation_finished(self, item: TranslationItem, gen: int, result: TranslationResult) -> None:
        if not self._current(item, gen):
            self._update_status()
            return
        item.job = None
        item.state = "done"
        if item.input is None:  # a job reports its input first (TranslationStarted)
            item.input = to_qimage(result.input)
        item.direction = result.direction
        item.scale = result.scale
        h, w = result.input.shape[:2]
        label = dict(DIRECTIONS)[result.direction]
        item.progress.hide()
        if result.output is None:
            item.output = None
            item.view.set_images(item.input, None)
            item.view.set_message("open a model to translate" if self.model is None else
                                  f"this model has no {label} generator")
            self._set_caption(item, f"{w}×{h}")
        else:
            item.output = to_qimage(result.output)
            item.view.set_images(item.input, item.output)
            item.view.set_output_title(label)
            item.view.set_message("")
            tiles = f" · {result.tiles} tiles" if result.tiles > 1 else ""
            self._set_caption(item, f"{w}×{h} · {label} · {self._scale_text(result.scale)} · "
                                    f"{result.seconds:.1f} s{tiles}")
        self._layout_item(item)
        self.save_button.setEnabled(any(i.output is not None for i in self.items))
        self._update_status()
        self.translated.emit(item.path)

    def _on_translation_failed(self, item: TranslationItem, gen: int, message: str, details: str) -> None:
        if not self._current(item, gen):
            self._update_status()
            return
        item.job = None
        item.state = "failed"
        item.error = message
        item.progress.hide()
        first = message.splitlines()[0] if message else "failed"
        item.view.set_message(f"could not translate: {first}")
        self._set_caption(item, f"could not translate: {first}", error=True)
        self._update_status()
        # One box at a time: a folder of images that all fail would otherwise stack a box for each.
        if self._error_box is None:
            self._error_box = show_error(self, f"Could not translate {Path(item.path).name}", message, details)
            self._error_box.finished.connect(self._on_error_box_finished)

    def _on_error_box_finished(self, _result: int) -> None:
        self._error_box = None

    def _show_waiting(self, item: TranslationItem) -> None:
        item.progress.setRange(0, 1)
        item.progress.setValue(0)
        item.progress.setFormat("waiting")
        item.progress.show()
        item.view.set_message("waiting…")
        self._set_caption(item, "waiting")

    def _set_caption(self, item: TranslationItem, text: str, *, error: bool = False) -> None:
        item.caption.setText(f"{Path(item.path).name} · {text}")
        if bool(item.caption.property("level")) != error:
            item.caption.setProperty("level", "error" if error else None)
            item.caption.style().polish(item.caption)

    @staticmethod
    def _scale_text(scale: float) -> str:
        return "at full resolution" if scale == 1.0 else f"at {scale:.2g}× (training scale)"

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
        run = run_of(self.model.source) if self.model is not None else None
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

    def _on_mode_box_changed(self, _index: int) -> None:
        mode = self.mode_box.currentData()
        self.split_slider.setEnabled(mode == "split")
        self.split_controls.setVisible(mode == "split")
        for item in self.items:
            item.view.set_mode(mode)
            self._layout_item(item)

    def _on_split_slider_changed(self, value: int) -> None:
        self.split_value.setText(f"{value} %")
        for item in self.items:
            item.view.set_split(value / 100)

    def _on_view_split_moved(self, fraction: float) -> None:
        self.split_slider.setValue(round(fraction * 100))  # every view follows the one dragged

    def _on_view_zoom_toggled(self, item: TranslationItem) -> None:
        box = item.zoom_box
        box.setCurrentIndex(box.findData(1) if box.currentData() == "fit" else box.findData("fit"))

    def _on_zoom_box_changed(self, item: TranslationItem) -> None:
        self._layout_item(item)

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
        dst = Path(self._tmp.path()) / f"{Path(item.path).stem}_{item.direction}.png"
        return str(dst) if item.output.save(str(dst), "PNG") else None
