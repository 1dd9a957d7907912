"""The Translate tab's results: an input, its translation and how far the job has come, one row each.

A ``ResultRow`` owns its widgets (caption, progress bar, zoom box, and the ``CompareView`` in a
scrolling area of its own) and its state: ``waiting`` → ``translating`` → ``done`` or ``failed``,
and back to ``waiting`` when it is translated again. The panel submits the jobs and tells the row
what they report; a job's reports carry the row's generation, so a stale job's are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .compare_view import ZOOMS, CompareView
from .jobs import Job
from .translate_jobs import DIRECTIONS, TranslationResult
from .util import Throttle, to_qimage

__all__ = ["ResultRow", "ResultList", "STATES"]

STATES = ("waiting", "translating", "done", "failed")


def scale_text(scale: float) -> str:
    return "at full resolution" if scale == 1.0 else f"at {scale:.2g}× (training scale)"


class ResultRow(QFrame):
    """The input at ``path`` beside (or split with) its translation. ``room()`` is the size the list
    gives a result; ``file_for_drag(row)`` writes the output as a PNG file to drag out, or returns None."""

    def __init__(self, path: str, mode: str, split: float, room: Callable[[], QSize],
                 file_for_drag: Callable[[ResultRow], str | None]):
        super().__init__()
        self.setObjectName("translateRow")
        self.path = path
        self.input: QImage | None = None
        self.output: QImage | None = None
        self.state = "waiting"
        self.error = ""
        self.job: Job | None = None
        self.generation = 0  # which translation of this row is current
        self.direction = ""
        self.scale = 1.0
        self._room = room

        self.caption = QLabel(f"{Path(path).name} · waiting")
        self.caption.setObjectName("caption")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setObjectName("itemProgress")
        self.progress.setFixedWidth(200)
        self.zoom_box = QComboBox()
        self.zoom_box.setObjectName("zoomBox")
        for key, text in ZOOMS:
            self.zoom_box.addItem(text, key)
        self.zoom_box.setToolTip("Fit: the whole image in view, never enlarged. 1:1: one image pixel per screen "
                                 "pixel (double-click the image to switch)")
        self.view = CompareView()
        self.view.set_mode(mode)
        self.view.set_split(split)
        self.view.file_for_drag = lambda: file_for_drag(self)
        self.area = QScrollArea()
        self.area.setObjectName("compareArea")
        self.area.setFrameShape(QFrame.Shape.NoFrame)
        self.area.setWidget(self.view)
        self.area.setWidgetResizable(False)
        self.area.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.area.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        header = QHBoxLayout()
        header.setSpacing(8)
        header.addWidget(self.caption, 1)
        header.addWidget(self.progress)
        header.addWidget(self.zoom_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(6)
        lay.addLayout(header)
        lay.addWidget(self.area)

        self.view.zoom_toggled.connect(self._on_view_zoom_toggled)
        self.zoom_box.currentIndexChanged.connect(self._on_zoom_box_changed)
        self.show_waiting()

    @property
    def output_name(self) -> str:
        """The file name its translation is saved or dragged out as."""
        return f"{Path(self.path).stem}_{self.direction}.png"

    # --- state transitions -----------------------------------------------------------------
    def restart(self) -> int:
        """A new translation replaces any earlier one (its job is stopped); returns its generation."""
        self.stop()
        self.generation += 1
        self.show_waiting()
        return self.generation

    def stop(self) -> None:
        """Stop the job: a running one ends at its next tile; a queued one never starts."""
        if self.job is not None:
            self.job.stop()

    def show_waiting(self) -> None:
        self.state, self.error = "waiting", ""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("waiting")
        self.progress.show()
        self.view.set_message("waiting…")
        self._set_caption("waiting")

    def show_started(self, inp: np.ndarray) -> None:
        """The job has decoded the input: show it, busy until the first tile reports."""
        self.state = "translating"
        self.input = to_qimage(inp)
        self.output = None
        self.view.set_images(self.input, None)
        self.view.set_message("translating…")
        h, w = inp.shape[:2]
        self._set_caption(f"{w}×{h} · translating…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("")
        self.progress.show()
        self.fit()

    def show_progress(self, done: int, total: int) -> None:
        if total > 1:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat("tile %v of %m")

    def show_result(self, result: TranslationResult, *, have_model: bool) -> None:
        self.job = None
        self.state = "done"
        if self.input is None:  # a job reports its input first (TranslationStarted)
            self.input = to_qimage(result.input)
        self.direction = result.direction
        self.scale = result.scale
        h, w = result.input.shape[:2]
        label = dict(DIRECTIONS)[result.direction]
        self.progress.hide()
        if result.output is None:
            self.output = None
            self.view.set_images(self.input, None)
            self.view.set_message(f"this model has no {label} generator" if have_model else
                                  "open a model to translate")
            self._set_caption(f"{w}×{h}")
        else:
            self.output = to_qimage(result.output)
            self.view.set_images(self.input, self.output)
            self.view.set_output_title(label)
            self.view.set_message("")
            if "LUT" in result.route:  # a colour map's look-up table: its chunks are not tiles
                tiles = " · " + result.route.removeprefix("a checked ")
            else:
                tiles = f" · {result.tiles} tiles" if result.tiles > 1 else ""
            self._set_caption(f"{w}×{h} · {label} · {scale_text(result.scale)} · {result.seconds:.1f} s{tiles}")
        self.fit()

    def show_failure(self, message: str) -> None:
        self.job = None
        self.state = "failed"
        self.error = message
        self.progress.hide()
        first = message.splitlines()[0] if message else "failed"
        self.view.set_message(f"could not translate: {first}")
        self._set_caption(f"could not translate: {first}", error=True)

    def _set_caption(self, text: str, *, error: bool = False) -> None:
        self.caption.setText(f"{Path(self.path).name} · {text}")
        if bool(self.caption.property("level")) != error:
            self.caption.setProperty("level", "error" if error else None)
            self.caption.style().polish(self.caption)

    # --- layout ----------------------------------------------------------------------------
    def fit(self) -> None:
        """Lay the view out in the room the list gives it: fitted, or zoomed and scrolling inside the row
        (which keeps to the view's height)."""
        box = self._room()
        self.view.set_box(box)
        self.view.set_zoom(self.zoom_box.currentData())
        size = self.view.size()
        if self.view.zoom == "fit":
            self.area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.area.setFixedHeight(size.height())
        else:
            self.area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            self.area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            bar = self.area.horizontalScrollBar().sizeHint().height() if size.width() > box.width() else 0
            self.area.setFixedHeight(min(size.height() + bar, box.height()))

    def set_mode(self, mode: str) -> None:
        self.view.set_mode(mode)
        self.fit()

    def _on_view_zoom_toggled(self) -> None:
        box = self.zoom_box
        box.setCurrentIndex(box.findData(1) if box.currentData() == "fit" else box.findData("fit"))

    def _on_zoom_box_changed(self, _index: int) -> None:
        self.fit()


class ResultList(QScrollArea):
    """The rows, one under another, fitted to the list's width and most of its height; a drop hint
    while there are none. Results never scroll sideways here: a zoomed one scrolls in its own area."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[ResultRow] = []
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
        self.setWidget(self.list_widget)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # A window being resized sends many sizes; each one rescales every image: ten a second at most.
        self._relayout = Throttle(self.fit_all, 10.0, self)

    def add(self, path: str, mode: str, split: float, file_for_drag: Callable[[ResultRow], str | None]) -> ResultRow:
        row = ResultRow(path, mode, split, self.room, file_for_drag)
        self.list_layout.insertWidget(self.list_layout.count() - 1, row)
        self.rows.append(row)
        self.drop_hint.hide()
        row.fit()
        return row

    def clear(self) -> None:
        """Remove every row, stopping its job (a running one ends at its next tile; queued ones never start)."""
        for row in self.rows:
            row.stop()
            row.deleteLater()
        self.rows.clear()
        self.drop_hint.show()

    def room(self) -> QSize:
        """The room a result has: the list's width (its scroll bar always counted, so that the bar coming
        and going cannot resize the images back and forth) and most of its height."""
        frame = 2 * self.frameWidth()
        bar = self.verticalScrollBar().sizeHint().width()
        chrome_w = 2 * 4 + 2 * 8 + 2  # the list's margins, the row's margins, the row's border
        chrome_h = 2 * 4 + 6 + 8 + 6 + 30  # margins, spacing and the caption line
        return QSize(max(64, self.width() - frame - bar - chrome_w), max(120, self.height() - frame - chrome_h))

    def fit_all(self) -> None:
        for row in self.rows:
            row.fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout.mark()
