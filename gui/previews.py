"""Live previews: real A | G(A) | F(G(A)) and real B | F(B) | G(F(B)), crisp and labelled.

All six are enlarged by the largest integer factor at which each fits its tile, with nearest
neighbour sampling, so a 64-px crop shows its real pixels at one common scale. Clicking one opens it larger.
A run opened from disk shows its latest saved preview grid instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.training.reports import PreviewReport

from .util import integer_scale, to_qimage

__all__ = ["PreviewPanel", "ImageTile", "ImageDialog"]

ROWS = (
    (("real_A", "real A"), ("fake_B", "G(A) translated"), ("rec_A", "F(G(A)) reconstructed")),
    (("real_B", "real B"), ("fake_A", "F(B) translated"), ("rec_B", "G(F(B)) reconstructed")),
)


class ImageTile(QLabel):
    """Shows one image at the largest integer scale that fits; emits ``clicked`` on a click."""

    clicked = Signal()
    resized = Signal()

    def __init__(self, placeholder: str = "", parent: QWidget | None = None, *, max_scale: int = 16):
        super().__init__(parent)
        self.setObjectName("imageTile")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(48, 48)
        self.setText(placeholder)
        self._image: QImage | None = None
        self.max_scale = max_scale
        self.scale_source = None  # callable → a scale shared with sibling tiles, or None: fit this tile
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self._render()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(160, 160)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.resized.emit()
        if self.scale_source is None:
            self._render()

    def render(self) -> None:  # noqa: A003 - re-render at the current size/scale
        self._render()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def fit_scale(self) -> int:
        img = self._image
        if img is None:
            return self.max_scale
        return integer_scale(img.width(), img.height(), self.width() - 4, self.height() - 4, self.max_scale)

    def _render(self) -> None:
        if self._image is None:
            self.setPixmap(QPixmap())
            return
        img = self._image
        scale = self.scale_source() if self.scale_source is not None else self.fit_scale()
        if scale > 1:
            img = img.scaled(img.width() * scale, img.height() * scale)  # nearest neighbour by default
        elif img.width() > self.width() or img.height() > self.height():
            # Bigger than the tile even at 1×: shrink smoothly to fit (a saved grid, a big photo).
            img = img.scaled(max(1, self.width() - 4), max(1, self.height() - 4),
                             Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(QPixmap.fromImage(img))


class ImageDialog(QDialog):
    """One preview image, large: integer-scaled to about 512 px (or the screen), in a scroll area."""

    def __init__(self, image: QImage, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        screen = self.screen().availableGeometry() if self.screen() else None
        max_w = int(screen.width() * 0.8) if screen else 1024
        max_h = int(screen.height() * 0.8) if screen else 768
        scale = integer_scale(image.width(), image.height(), min(max_w, 640), min(max_h, 640), 16)
        shown = image.scaled(image.width() * scale, image.height() * scale) if scale > 1 else image
        label = QLabel()
        label.setObjectName("dialogImage")
        label.setPixmap(QPixmap.fromImage(shown))
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(label)
        scroll.setWidgetResizable(True)
        caption = QLabel(f"{title} · {image.width()}×{image.height()} px shown at {scale}×")
        caption.setObjectName("caption")
        lay = QVBoxLayout(self)
        lay.addWidget(scroll, 1)
        lay.addWidget(caption)
        self.resize(min(max_w, shown.width() + 40), min(max_h, shown.height() + 70))


class PreviewPanel(QWidget):
    """The latest ``PreviewReport`` (sample 0) as two labelled rows of three."""

    def __init__(self, report: PreviewReport | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("previewPanel")
        self.step_label = QLabel("No previews yet: they appear every “Preview every” steps.")
        self.step_label.setObjectName("previewStep")
        title = QLabel("Previews")
        title.setObjectName("panelTitle")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.step_label)

        # One row: real A | G(A) | F(G(A))   ·   real B | F(B) | G(F(B)), all at one integer scale.
        grid_page = QWidget()
        grid = QGridLayout(grid_page)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.tiles: dict[str, ImageTile] = {}
        self.captions: dict[str, str] = {}
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._on_render_timer_timeout)
        for r, row in enumerate(ROWS):
            for c, (key, caption) in enumerate(row):
                col = 4 * r + c
                cap = QLabel(caption)
                cap.setObjectName("caption")
                cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
                tile = ImageTile("")
                tile.setToolTip(f"{caption}: click to enlarge")
                tile.scale_source = self.common_scale
                tile.clicked.connect(lambda k=key: self._on_tile_clicked(k))
                tile.resized.connect(self._render_timer.start)
                grid.addWidget(cap, 0, col)
                grid.addWidget(tile, 1, col)
                grid.setColumnStretch(col, 1)
                self.tiles[key] = tile
                self.captions[key] = caption
        grid.setColumnMinimumWidth(3, 10)
        grid.setRowStretch(1, 1)

        self.saved_tile = ImageTile("", max_scale=4)
        self.saved_tile.clicked.connect(lambda: self._on_tile_clicked(None))
        self.stack = QStackedWidget()
        self.stack.addWidget(grid_page)
        self.stack.addWidget(self.saved_tile)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addLayout(head)
        lay.addWidget(self.stack, 1)
        self.step: int | None = None
        if report is not None:
            self.show_report(report)

    def clear(self) -> None:
        for tile in self.tiles.values():
            tile.set_image(None)
        self.step = None
        self.step_label.setText("Waiting for the first preview…")
        self.stack.setCurrentIndex(0)

    def show_report(self, report: PreviewReport) -> None:
        for key, tile in self.tiles.items():
            arr = report.images.get(key)
            if arr is not None and len(arr):
                tile.set_image(to_qimage(np.asarray(arr[0])))
        self._on_render_timer_timeout()  # now that all are set, at one common scale
        self.step = report.step
        self.step_label.setText(report.title)
        self.stack.setCurrentIndex(0)

    def show_saved(self, path: str | Path, step: int | None) -> None:
        """A saved preview grid (RUN/previews/step_XXXXXXX.png), shown as one image."""
        image = QImage(str(path))
        if image.isNull():
            self.step_label.setText(f"could not read {Path(path).name}")
            return
        self.saved_tile.set_image(image)
        self.step = step
        self.step_label.setText(f"saved preview · step {step:,}" if step is not None else "saved preview")
        self.stack.setCurrentIndex(1)

    def common_scale(self) -> int:
        """The largest integer scale at which every preview fits its tile."""
        return min((t.fit_scale() for t in self.tiles.values() if t.image() is not None), default=1)

    def _on_render_timer_timeout(self) -> None:
        for tile in self.tiles.values():
            tile.render()

    def has_images(self) -> bool:
        return all(t.image() is not None for t in self.tiles.values())

    def _on_tile_clicked(self, key: str | None) -> None:
        tile = self.saved_tile if key is None else self.tiles[key]
        image = tile.image()
        if image is None:
            return
        what = "preview" if key is None else self.captions[key]
        step = f" · step {self.step:,}" if self.step is not None else ""
        dlg = ImageDialog(image, f"{what}{step}", self)
        dlg.show()
