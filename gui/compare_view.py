"""One image area that compares an input with its translation: a before/after split, or side by side.

``CompareView`` only draws. In ``split`` mode it shows the input left of a vertical divider and the
translation right of it; the divider follows ``set_split`` (the Translate tab's slider) or is dragged
with the mouse, which reports ``split_moved`` so the owner can keep every view and its slider in step.
In ``side`` mode the two images stand next to each other. The view is sized by its owner:
``set_box`` gives the space available, ``set_zoom`` a zoom, ``"fit"`` (scaled down to the box, aspect
kept, never enlarged beyond 1:1) or a factor (1: one image pixel per screen pixel, 2, 4: enlarged).

Dragging anywhere but on the divider hands the translation out as a PNG file (``file_for_drag``);
a double-click reports ``zoom_toggled``.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QMimeData, QPoint, QRect, QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDrag,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import QApplication, QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QWidget

__all__ = ["CompareView", "CompareControls", "fit_size", "MODES", "ZOOMS"]

MODES = (("split", "Split"), ("side", "Side by side"))
ZOOMS = (("fit", "Fit"), (1, "1:1"), (2, "2×"), (4, "4×"))
GAP = 28          # px between the two images side by side (the arrow sits there)
GRAB = 12         # px either side of the divider that grab it
PLACEHOLDER = QSize(320, 96)

_BG = QColor("#14161b")
_TEXT = QColor("#8a93a3")
_ACCENT = QColor("#4f7dff")


def fit_size(image: QSize, box: QSize) -> QSize:
    """``image`` scaled down to fit ``box``, aspect kept, never enlarged (at least 1×1)."""
    w, h = image.width(), image.height()
    if w <= 0 or h <= 0:
        return QSize(0, 0)
    s = min(1.0, box.width() / w, box.height() / h)
    return QSize(max(1, round(w * s)), max(1, round(h * s)))


class CompareView(QWidget):
    """Input | translation in one image area; sized by its owner (``set_box``, ``set_zoom``)."""

    split_moved = Signal(float)  # the user dragged the divider to this fraction of the width (0 … 1)
    zoom_toggled = Signal()      # double-click

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareView")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.file_for_drag: Callable[[], str | None] = lambda: None  # set by the owner: a PNG path, or None
        self.input: QImage | None = None
        self.output: QImage | None = None
        self.message = ""
        self.output_title = "Output"
        self.mode = "split"
        self.split = 0.5
        self.zoom: str | int = "fit"
        self._box = QSize(800, 600)
        self._scaled: dict[tuple[str, int, int], QPixmap] = {}
        self._dragging_divider = False
        self._press: QPoint | None = None
        self._relayout()

    # --- what it shows ---------------------------------------------------------------------
    def set_images(self, inp: QImage | None, out: QImage | None) -> None:
        self.input, self.output = inp, out
        self._scaled.clear()
        self.setToolTip("Drag the divider to compare · drag the image out to copy the translation as a PNG · "
                        "double-click for 1:1" if out is not None else "")
        self._relayout()

    def set_message(self, text: str) -> None:
        """Shown where the translation goes while there is none (waiting, failed, no model)."""
        self.message = text
        self.update()

    def set_output_title(self, text: str) -> None:
        self.output_title = text
        self.update()

    def set_split(self, fraction: float) -> None:
        self.split = min(1.0, max(0.0, float(fraction)))
        self.update()

    def set_mode(self, mode: str) -> None:
        if mode not in dict(MODES):
            raise ValueError(f"unknown mode {mode!r}; valid choices: {', '.join(dict(MODES))}")
        self.mode = mode
        self._relayout()

    def set_zoom(self, zoom: str | int) -> None:
        if zoom not in dict(ZOOMS):
            raise ValueError(f"unknown zoom {zoom!r}; valid choices: {', '.join(map(str, dict(ZOOMS)))}")
        self.zoom = zoom
        self._relayout()

    def set_box(self, box: QSize) -> None:
        """The space the view may take in ``fit`` (the owner's visible width and height)."""
        if box != self._box:
            self._box = QSize(box)
            self._relayout()

    # --- geometry --------------------------------------------------------------------------
    def image_size(self) -> QSize:
        img = self.input or self.output
        return img.size() if img is not None else QSize(0, 0)

    def display_size(self) -> QSize:
        """The size (logical px) one image is drawn at: fitted, or at the zoom factor."""
        size = self.image_size()
        if size.isEmpty():
            return QSize(min(PLACEHOLDER.width(), self._box.width()), PLACEHOLDER.height())
        dpr = self.devicePixelRatioF() or 1.0
        if self.zoom == "fit":
            box = self._box
            if self.mode == "side":
                box = QSize(max(1, (box.width() - GAP) // 2), box.height())
            return fit_size(QSize(round(size.width() / dpr), round(size.height() / dpr)), box)
        z = float(self.zoom) / dpr
        return QSize(max(1, round(size.width() * z)), max(1, round(size.height() * z)))

    def image_rects(self) -> tuple[QRect, QRect]:
        """Where the input and the translation are drawn (the same rectangle in split mode)."""
        d = self.display_size()
        first = QRect(QPoint(0, 0), d)
        if self.mode == "side":
            return first, QRect(QPoint(d.width() + GAP, 0), d)
        return first, QRect(first)

    def divider_x(self) -> int:
        return round(self.split * self.display_size().width())

    def _relayout(self) -> None:
        d = self.display_size()
        self.setFixedSize(QSize(2 * d.width() + GAP, d.height()) if self.mode == "side" else d)
        self.update()

    # --- drawing ---------------------------------------------------------------------------
    def _pixmap(self, which: str, img: QImage, size: QSize) -> QPixmap:
        dpr = self.devicePixelRatioF() or 1.0
        w, h = round(size.width() * dpr), round(size.height() * dpr)
        key = (which, w, h)
        pm = self._scaled.get(key)
        if pm is None:
            if (w, h) == (img.width(), img.height()):
                scaled = img
            else:  # smooth when shrinking; whole pixels when enlarging, to inspect them
                mode = (Qt.TransformationMode.SmoothTransformation if w < img.width()
                        else Qt.TransformationMode.FastTransformation)
                scaled = img.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio, mode)
            pm = QPixmap.fromImage(scaled)
            pm.setDevicePixelRatio(dpr)
            self._scaled = {k: v for k, v in self._scaled.items() if k[0] != which}
            self._scaled[key] = pm
        return pm

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        in_rect, out_rect = self.image_rects()
        if self.input is None:
            p.fillRect(self.rect(), _BG)
            self._draw_message(p, self.rect(), self.message or "…")
            return
        in_pm = self._pixmap("input", self.input, in_rect.size())
        out_pm = self._pixmap("output", self.output, out_rect.size()) if self.output is not None else None
        if self.mode == "side":
            p.drawPixmap(in_rect, in_pm)
            if out_pm is not None:
                p.drawPixmap(out_rect, out_pm)
            else:
                p.fillRect(out_rect, _BG)
                self._draw_message(p, out_rect, self.message)
            self._draw_arrow(p, in_rect.right() + 1, in_rect.center().y())
            self._draw_tag(p, in_rect, "Input", left=True)
            if out_pm is not None:
                self._draw_tag(p, out_rect, self.output_title, left=True)
            return
        if out_pm is None:  # waiting, failed or no model: the input, dimmed, and why there is no translation
            p.drawPixmap(in_rect, in_pm)
            if self.message:
                p.fillRect(in_rect, QColor(20, 22, 27, 170))
                self._draw_message(p, in_rect, self.message)
            self._draw_tag(p, in_rect, "Input", left=True)
            return
        x = self.divider_x()
        left = QRect(0, 0, x, in_rect.height())
        right = QRect(x, 0, in_rect.width() - x, in_rect.height())
        p.save()
        p.setClipRect(left)
        p.drawPixmap(in_rect, in_pm)
        p.setClipRect(right)
        p.drawPixmap(in_rect, out_pm)
        p.restore()
        if left.width() > 70:
            self._draw_tag(p, left, "Input", left=True)
        if right.width() > 70:
            self._draw_tag(p, right, self.output_title, left=False)
        self._draw_divider(p, x, in_rect.height())

    def _draw_divider(self, p: QPainter, x: int, h: int) -> None:
        p.setPen(QPen(QColor(0, 0, 0, 110), 3))
        p.drawLine(x, 0, x, h)
        p.setPen(QPen(QColor("#f2f4f8"), 1.5))
        p.drawLine(x, 0, x, h)
        r = min(11, max(6, h // 8))
        cy = h / 2
        p.setPen(QPen(QColor("#f2f4f8"), 1.5))
        p.setBrush(_ACCENT)
        p.drawEllipse(QRectF(x - r, cy - r, 2 * r, 2 * r))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#ffffff"))
        a = r * 0.45
        for sign in (-1, 1):  # ◂ ▸
            tip = x + sign * (r * 0.75)
            base = x + sign * (r * 0.2)
            p.drawPolygon(QPolygonF([QPoint(round(tip), round(cy)), QPoint(round(base), round(cy - a)),
                                     QPoint(round(base), round(cy + a))]))

    def _draw_tag(self, p: QPainter, area: QRect, text: str, *, left: bool) -> None:
        if area.height() < 40:
            return
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 12, fm.height() + 4
        if w + 12 > area.width():
            return
        x = area.left() + 6 if left else area.right() - 6 - w
        rect = QRectF(x, area.top() + 6, w, h)
        path = QPainterPath()
        path.addRoundedRect(rect, 4, 4)
        p.fillPath(path, QColor(10, 12, 16, 170))
        p.setPen(QColor("#e6eaf0"))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_message(self, p: QPainter, area: QRect, text: str) -> None:
        if not text:
            return
        p.setPen(_TEXT)
        p.setFont(self.font())
        p.drawText(area.adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)

    def _draw_arrow(self, p: QPainter, x: int, cy: int) -> None:
        p.setPen(QPen(QColor("#6b7380"), 2))
        x0, x1 = x + 7, x + GAP - 8
        p.drawLine(x0, cy, x1, cy)
        p.drawLine(x1, cy, x1 - 5, cy - 5)
        p.drawLine(x1, cy, x1 - 5, cy + 5)

    # --- mouse -----------------------------------------------------------------------------
    def _near_divider(self, pos: QPoint) -> bool:
        return (self.mode == "split" and self.input is not None and self.output is not None
                and abs(pos.x() - self.divider_x()) <= GRAB)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        pos = event.position().toPoint()
        if self._near_divider(pos):
            self._dragging_divider = True
        else:
            self._press = pos
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position().toPoint()
        if self._dragging_divider:
            width = max(1, self.display_size().width())
            self.set_split(pos.x() / width)
            self.split_moved.emit(self.split)
            return
        if self._press is None:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos) else Qt.CursorShape.ArrowCursor)
            return
        if (pos - self._press).manhattanLength() >= QApplication.startDragDistance():
            self._press = None
            self._drag_out()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._dragging_divider = False
        self._press = None
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.input is not None:
            self.zoom_toggled.emit()

    def _drag_out(self) -> None:
        if self.output is None:
            return
        path = self.file_for_drag()
        if path is None:
            return
        md = QMimeData()
        md.setUrls([QUrl.fromLocalFile(path)])
        md.setImageData(self.output)
        drag = QDrag(self)
        drag.setMimeData(md)
        drag.setPixmap(QPixmap.fromImage(self.output).scaled(min(128, self.output.width()),
                                                             min(128, self.output.height()),
                                                             Qt.AspectRatioMode.KeepAspectRatio,
                                                             Qt.TransformationMode.SmoothTransformation))
        drag.exec(Qt.DropAction.CopyAction)


class CompareControls(QWidget):
    """How a list of ``CompareView``s compares: split (and where the divider stands) or side by side."""

    mode_changed = Signal(str)
    split_changed = Signal(float)  # 0 … 1

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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
        self.split_controls = QWidget()  # only for the split: side by side has no divider
        split_lay = QHBoxLayout(self.split_controls)
        split_lay.setContentsMargins(6, 0, 0, 0)
        split_lay.setSpacing(6)
        split_lay.addWidget(QLabel("Input"))
        split_lay.addWidget(self.split_slider)
        split_lay.addWidget(QLabel("Output"))
        split_lay.addWidget(self.split_value)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(QLabel("Compare"))
        lay.addWidget(self.mode_box)
        lay.addWidget(self.split_controls)
        self.mode_box.currentIndexChanged.connect(self._on_mode_box_changed)
        self.split_slider.valueChanged.connect(self._on_split_slider_changed)

    @property
    def mode(self) -> str:
        return self.mode_box.currentData()

    @property
    def split(self) -> float:
        return self.split_slider.value() / 100

    def set_split(self, fraction: float) -> None:
        self.split_slider.setValue(round(fraction * 100))

    def _on_mode_box_changed(self, _index: int) -> None:
        mode = self.mode
        self.split_slider.setEnabled(mode == "split")
        self.split_controls.setVisible(mode == "split")
        self.mode_changed.emit(mode)

    def _on_split_slider_changed(self, value: int) -> None:
        self.split_value.setText(f"{value} %")
        self.split_changed.emit(value / 100)
