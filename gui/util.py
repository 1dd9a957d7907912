"""Small Qt helpers shared by the panels: paths, settings, image conversion, throttling, drops, errors.

Background work goes through ``gui.jobs.JobRunner``, the one thread-job abstraction.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import (
    QMimeData,
    QObject,
    QPointF,
    QSettings,
    QStandardPaths,
    Qt,
    QTimer,
    QUrl,
)
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

ORGANISATION = "CycleGAN Studio"
APPLICATION = "CycleGAN Studio"
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
# Overrides the data directory (demo data, runs): used by tests and throwaway sessions.
DATA_DIR_ENV = "CYCLEGAN_STUDIO_DATA"


def resource(name: str) -> Path:
    return RESOURCES / name


def app_data_dir() -> Path:
    """Where demo data and runs go: $CYCLEGAN_STUDIO_DATA, else ``<user data folder>/CycleGAN Studio``
    (``~/.local/share/CycleGAN Studio`` on Linux, ``~/Library/Application Support/CycleGAN Studio`` on
    macOS, ``%LOCALAPPDATA%/CycleGAN Studio`` on Windows).

    Not AppDataLocation: that appends the organisation *and* the application name, which are both
    "CycleGAN Studio", so the name came twice. The settings file (``settings()``) is unaffected.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(loc) / APPLICATION if loc else Path.home() / ".cyclegan-studio"


def settings() -> QSettings:
    """The app's settings, always an INI file (tests redirect it with ``QSettings.setPath``)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def to_qimage(arr: np.ndarray) -> QImage:
    """(H, W, 3) uint8 → a QImage that owns its pixels (a copy: the array may go away)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def integer_scale(w: int, h: int, avail_w: int, avail_h: int, cap: int = 16) -> int:
    """The largest integer factor that fits (w, h) into the available space (at least 1)."""
    if w <= 0 or h <= 0:
        return 1
    return max(1, min(cap, avail_w // w, avail_h // h))


class Throttle(QObject):
    """Calls ``callback`` at most ``hz`` times a second, and only after ``mark()`` said something changed."""

    def __init__(self, callback: Callable[[], None], hz: float = 10.0, parent: QObject | None = None):
        super().__init__(parent)
        self._callback = callback
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(1000 / hz))
        self._timer.timeout.connect(self._on_timer_timeout)

    def mark(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Run the pending callback now (tests, screenshots)."""
        if self._timer.isActive():
            self._timer.stop()
            self._callback()

    def _on_timer_timeout(self) -> None:
        self._callback()


def send_drop(widget: QWidget, paths: list[str]) -> bool:
    """Deliver a file drop to ``widget`` as the window system does (drag enter, then drop).

    Returns whether the drop was accepted. Used by the smoke mode and the tests.
    """
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(Path(p).resolve())) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    args = (Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(pos.toPoint(), *args)  # QPoint here, QPointF for the drop
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(pos, *args)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """A window-modal error box with an optional "Show Details…" traceback; does not block the caller."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
