"""The Datasets panel: a picker per domain (folder dialog or drop), counts, thumbnails, warnings.

Folders are scanned with ``engine.data.ImageFolder`` as jobs on the panel's worker thread
(``gui.jobs.JobRunner``), so a folder of 100k images never freezes the window;
only a frozen ``ScanResult`` (numbers, strings and
thumbnail copies) comes back. "Use demo dataset" writes the built-in demo data into the
app's data folder, off the GUI thread, and selects its trainA/trainB.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from engine.config import Config
from engine.data import DataError, open_domain, same_folder
from engine.data.demo import SUBFOLDERS, is_demo_dataset, make_demo_dataset

from .jobs import JobRunner
from .util import app_data_dir, to_qimage

__all__ = ["DatasetsPanel", "DomainPicker", "ScanResult", "scan_folder", "make_demo"]

THUMBS = 8
THUMB_PX = 52


@dataclass(frozen=True)
class ScanResult:
    path: str
    count: int = 0
    skipped: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    thumbnails: tuple[np.ndarray, ...] = ()
    error: str = ""


def scan_folder(path: str, config: Config, name: str) -> ScanResult:
    """Runs on the worker thread: check the folder as the trainer will (every file decoded once, without
    keeping the pixels: the trainer decodes and caches them itself), and take a few thumbnails."""
    try:
        ds = open_domain(path, config, name, cache=False)
    except DataError as e:
        return ScanResult(path, error=str(e))
    thumbs = []
    for i in range(min(THUMBS, len(ds))):
        try:
            thumbs.append(np.array(ds.thumbnail(i, size=THUMB_PX), dtype=np.uint8, copy=True))
        except (DataError, OSError, ValueError):
            continue  # a file that went away since the scan: the strip just shows one fewer
    skipped = tuple((str(s.path), str(s.reason)) for s in ds.skipped)
    root = ds.root + os.sep
    warnings = tuple(str(w).replace(root, "") for w in ds.warnings)  # file names relative to the folder
    return ScanResult(path, len(ds), skipped, warnings, tuple(thumbs))


def make_demo(root: str) -> tuple[str, str]:
    """Runs on the worker thread: write (or reuse) the demo dataset; returns (trainA, trainB)."""
    out = Path(root)
    complete = is_demo_dataset(out) and all(any((out / s).glob("*.png")) for s in SUBFOLDERS)
    if not complete:
        make_demo_dataset(out)
    return str(out / "trainA"), str(out / "trainB")


def _local_folder(event) -> str | None:
    """The first local folder in a drag's URLs (a dropped file stands for its folder)."""
    md = event.mimeData()
    if not md.hasUrls():
        return None
    for url in md.urls():
        if url.isLocalFile():
            p = Path(url.toLocalFile())
            if p.is_dir():
                return str(p)
            if p.is_file():
                return str(p.parent)
    return None


class ElidedLabel(QLabel):
    """A one-line label that elides its text in the middle: long paths keep both ends readable."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(20, self.width())))


class DomainPicker(QFrame):
    """One domain's folder: choose or drop, then see what the trainer will see."""

    path_chosen = Signal(str)

    def __init__(self, name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = name
        self.setObjectName("domainPicker")
        self.setAcceptDrops(True)
        self.result: ScanResult | None = None
        self.path = ""
        self.scanning = False
        self._extra_warnings: list[str] = []

        title = QLabel(f"Domain {name}")
        title.setObjectName("pickerTitle")
        self.choose = QPushButton("Choose…")
        self.choose.setObjectName(f"choose{name}")
        self.choose.setToolTip(f"Choose the folder of domain {name} images (or drop a folder here)")
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(title)
        self.count_label = QLabel("no folder")
        self.count_label.setObjectName("countLabel")
        head.addWidget(self.count_label)
        head.addStretch(1)
        head.addWidget(self.choose)

        self.path_label = ElidedLabel("Drop a folder here or press Choose…")
        self.path_label.setObjectName("pathLabel")

        self.strip = QHBoxLayout()
        self.strip.setContentsMargins(0, 0, 0, 0)
        self.strip.setSpacing(3)
        self._thumb_labels: list[QLabel] = []
        for _ in range(THUMBS):
            lab = QLabel()
            lab.setObjectName("thumb")
            lab.setFixedSize(THUMB_PX, THUMB_PX)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.hide()
            self.strip.addWidget(lab)
            self._thumb_labels.append(lab)
        self.strip.addStretch(1)
        self.strip_box = strip_box = QWidget()
        strip_box.setLayout(self.strip)
        strip_box.setFixedHeight(THUMB_PX)
        strip_box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        strip_box.hide()  # until there are thumbnails

        self.message = QLabel()
        self.message.setObjectName("pickerMessage")
        self.message.setWordWrap(True)
        self.message.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.setSpacing(4)
        lay.addLayout(head)
        lay.addWidget(self.path_label)
        lay.addWidget(strip_box)
        lay.addWidget(self.message)
        self.choose.clicked.connect(self._on_choose_clicked)

    # --- state shown -----------------------------------------------------------------------
    def show_scanning(self, path: str) -> None:
        self.path, self.result, self.scanning = path, None, True
        self._set_path_text(path)
        self.count_label.setText("scanning…")
        for lab in self._thumb_labels:
            lab.hide()
        self.strip_box.hide()
        self._show_message("", "")

    def show_result(self, result: ScanResult) -> None:
        self.result, self.scanning = result, False
        for lab in self._thumb_labels:
            lab.hide()
        self.strip_box.hide()
        if result.error:
            self.count_label.setText("unusable")
            self._refresh_message()
            return
        self.count_label.setText(f"{result.count:,} image{'s' if result.count != 1 else ''}")
        for lab, arr in zip(self._thumb_labels, result.thumbnails):
            lab.setPixmap(QPixmap.fromImage(to_qimage(arr)))
            lab.show()
        self.strip_box.setVisible(bool(result.thumbnails))
        self._refresh_message()

    def set_extra_warnings(self, warnings: list[str]) -> None:
        """Warnings about the pair (A and B the same folder) rather than this folder alone."""
        if warnings != self._extra_warnings:
            self._extra_warnings = warnings
            self._refresh_message()

    def messages(self) -> list[str]:
        return [line for line in self.message.text().split("\n") if line]

    @property
    def usable(self) -> bool:
        r = self.result
        return r is not None and not r.error and r.count > 0 and not self.scanning

    def _refresh_message(self) -> None:
        r = self.result
        if r is None:
            self._show_message("", "")
            return
        if r.error:
            self._show_message(r.error, "error")
            return
        lines = list(self._extra_warnings)
        if r.skipped:
            reasons = Counter(reason for _, reason in r.skipped)
            top = "; ".join(f"{n}× {why}" for why, n in reasons.most_common(3))
            more = f" (+{len(reasons) - 3} other reasons)" if len(reasons) > 3 else ""
            lines.append(f"{len(r.skipped):,} file{'s' if len(r.skipped) != 1 else ''} skipped: {top}{more}")
        shown = 2
        lines += list(r.warnings[:shown])
        if len(r.warnings) > shown:
            lines.append(f"… and {len(r.warnings) - shown:,} more small images (upscaled to the load size)")
        if r.count == 0:
            lines.insert(0, "no usable images in this folder")
        level = "error" if r.count == 0 or self._extra_warnings else "warning"
        self._show_message("\n".join(lines), level if lines else "")
        if r.skipped:
            self.message.setToolTip("\n".join(f"{Path(p).name}: {why}" for p, why in r.skipped[:40]))

    def _show_message(self, text: str, level: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.message.setProperty("level", level)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setToolTip("")

    def _set_path_text(self, path: str) -> None:
        self.path_label.set_full_text(path)
        self.path_label.setToolTip(path)

    # --- input -----------------------------------------------------------------------------
    def _on_choose_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Domain {self.name} images", self.path or str(Path.home()))
        if folder:
            self.path_chosen.emit(folder)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_folder(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        folder = _local_folder(event)
        if folder:
            event.acceptProposedAction()
            self.path_chosen.emit(folder)


class DatasetsPanel(QWidget):
    """Both domains and the demo button. ``ready`` when both folders are usable and different."""

    changed = Signal()

    def __init__(self, config: Config, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("datasetsPanel")
        self._config = config
        self._generation = {"A": 0, "B": 0}
        self.jobs = JobRunner("datasets", self)  # scans and demo data, one after another
        self.pickers = {"A": DomainPicker("A"), "B": DomainPicker("B")}
        self.demo_button = QPushButton("Use demo dataset")
        self.demo_button.setObjectName("demoButton")
        self.demo_button.setToolTip("Generate the built-in demo data (two synthetic domains with ground truth, "
                                    f"offline, ~2 s) into {app_data_dir() / 'demo'} and select it.")
        self.demo_status = QLabel()
        self.demo_status.setObjectName("hint")

        title = QLabel("Datasets")
        title.setObjectName("panelTitle")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.demo_status)
        head.addWidget(self.demo_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addLayout(head)
        for name, picker in self.pickers.items():
            lay.addWidget(picker)
            picker.path_chosen.connect(lambda path, n=name: self.set_path(n, path))
        self.demo_button.clicked.connect(self._on_demo_button_clicked)

    # --- public API ------------------------------------------------------------------------
    def paths(self) -> tuple[str, str]:
        return self.pickers["A"].path, self.pickers["B"].path

    def set_path(self, name: str, path: str) -> None:
        """Scan ``path`` for domain ``name`` in the background; ``changed`` fires when done."""
        self._generation[name] += 1
        gen = self._generation[name]
        picker = self.pickers[name]
        picker.show_scanning(path)
        self._update_pair()
        self.jobs.submit(scan_folder, path, self._config, name,
                         finished=lambda result: self._on_scan_finished(name, gen, result),
                         failed=lambda msg, _tb: self._on_scan_finished(name, gen, ScanResult(path, error=msg)))
        self.changed.emit()

    def set_paths(self, path_a: str, path_b: str) -> None:
        self.set_path("A", path_a)
        self.set_path("B", path_b)

    def set_config(self, config: Config) -> None:
        """Rescan when a setting that decides what counts as usable changes."""
        old, self._config = self._config, config
        keys = ("preprocess", "netG", "load_size", "crop_size", "max_pixels")  # netG: auto preprocessing follows it
        if any(old.get(k) != config.get(k) for k in keys):
            for name, picker in self.pickers.items():
                if picker.path:
                    self.set_path(name, picker.path)

    @property
    def scanning(self) -> bool:
        return any(p.scanning for p in self.pickers.values())

    @property
    def ready(self) -> bool:
        return not self.problem()

    def problem(self) -> str:
        """Why training cannot start with these folders ('' when it can)."""
        for name, p in self.pickers.items():
            if not p.path:
                return f"Choose a folder for domain {name} (or use the demo dataset)."
            if p.scanning:
                return f"Still scanning domain {name}…"
            if p.result is not None and p.result.error:
                return f"Domain {name}: {p.result.error}"
            if not p.usable:
                return f"Domain {name} has no usable images."
        if self._same_folder():
            return "Domain A and domain B are the same folder."
        return ""

    def use_demo(self) -> None:
        self._on_demo_button_clicked()

    def wait(self) -> None:
        """Block until background scans finish (shutdown)."""
        self.jobs.wait()

    # --- internals -------------------------------------------------------------------------
    def _same_folder(self) -> bool:
        a, b = self.paths()
        return bool(a and b and same_folder(a, b))

    def _update_pair(self) -> None:
        warn = ["A and B are the same folder: choose two different domains."] if self._same_folder() else []
        for p in self.pickers.values():
            p.set_extra_warnings(warn)

    def _on_scan_finished(self, name: str, gen: int, result: ScanResult) -> None:
        if gen != self._generation[name]:
            return  # a newer folder was chosen meanwhile
        self.pickers[name].show_result(result)
        self._update_pair()
        self.changed.emit()

    def _on_demo_button_clicked(self) -> None:
        self.demo_button.setEnabled(False)
        self.demo_status.setText("generating…")
        self.jobs.submit(make_demo, str(app_data_dir() / "demo"), finished=self._on_demo_finished,
                         failed=self._on_demo_failed)

    def _on_demo_finished(self, paths: tuple[str, str]) -> None:
        self.demo_button.setEnabled(True)
        self.demo_status.setText("")
        self.set_paths(*paths)

    def _on_demo_failed(self, message: str, _details: str) -> None:
        self.demo_button.setEnabled(True)
        self.demo_status.setText("demo data failed")
        self.demo_status.setToolTip(message)
