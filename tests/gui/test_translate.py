"""The Translate tab: dropped files come back translated at their own size, in the chosen direction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.io.translate import TranslationModel
from engine.models.networks import build_generator
from gui.translate_jobs import (
    TranslateRequest,
    TranslationCancelled,
    TranslationProgress,
    TranslationStarted,
    translate_job,
)
from gui.translate_panel import TranslatePanel

from .conftest import quick_config


def tiny_model(directions=("AtoB", "BtoA")) -> TranslationModel:
    cfg = quick_config()
    torch.manual_seed(0)
    G = build_generator(cfg).eval() if "AtoB" in directions else None
    F = build_generator(cfg).eval() if "BtoA" in directions else None
    return TranslationModel(G, F, cfg, "tiny-test-model", step=7)


def write_png(path: Path, w: int, h: int) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def drop(widget, paths) -> QDropEvent:
    """A drag from the file manager: enter, then drop, with file URLs."""
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, QDragEnterEvent(QPoint(10, 10), *args))  # Qt delivers a drop only after this
    event = QDropEvent(QPointF(10, 10), *args)
    QApplication.sendEvent(widget, event)
    return event


def test_a_dropped_image_is_translated_at_its_own_size(qtbot, tmp_path):
    panel = TranslatePanel(tiny_model())
    qtbot.addWidget(panel)
    src = write_png(tmp_path / "odd.png", 50, 37)
    with qtbot.waitSignal(panel.translated, timeout=20000):
        assert drop(panel, [src]).isAccepted()
    item = panel.items[0]
    assert item.view.display_size().toTuple() == (50, 37)  # fitted, and a small image is never enlarged
    assert (item.input.width(), item.input.height()) == (50, 37)
    assert (item.output.width(), item.output.height()) == (50, 37)
    assert item.view.output is item.output and item.view.input is item.input
    assert "A → B" in item.caption.text() and "50×37" in item.caption.text()
    assert panel.results.drop_hint.isHidden()


def test_direction_follows_the_model_and_outputs_can_be_saved(qtbot, tmp_path):
    panel = TranslatePanel(tiny_model(("AtoB",)))
    qtbot.addWidget(panel)
    assert "A→B only" in panel.model_label.text()
    box = panel.direction
    assert box.model().item(box.findData("BtoA")).isEnabled() is False
    srcs = [write_png(tmp_path / f"in{i}.png", 20 + i, 24) for i in range(2)]
    with qtbot.waitSignals([panel.translated, panel.translated], timeout=20000):
        panel.add_files([str(p) for p in srcs])
    qtbot.waitUntil(lambda: not panel.busy, timeout=20000)
    out = tmp_path / "out"
    out.mkdir()
    written = panel.save_all(str(out))
    assert sorted(Path(p).name for p in written) == ["in0_AtoB.png", "in1_AtoB.png"]
    with Image.open(written[1]) as img:
        assert img.size == (21, 24)

    # A model with both directions: B → A becomes available and retranslates everything.
    with qtbot.waitSignals([panel.translated, panel.translated], timeout=20000):
        panel.set_model(tiny_model())
    with qtbot.waitSignals([panel.translated, panel.translated], timeout=20000):
        box.setCurrentIndex(box.findData("BtoA"))
    assert all("B → A" in it.caption.text() for it in panel.items)
    panel.clear()
    assert panel.items == [] and not panel.results.drop_hint.isHidden()


def test_without_a_model_the_input_shows_and_files_that_are_not_images_are_refused(qtbot, tmp_path):
    panel = TranslatePanel()
    qtbot.addWidget(panel)
    (tmp_path / "notes.txt").write_text("hello")
    assert not drop(panel, [tmp_path / "notes.txt"]).isAccepted()
    with qtbot.waitSignal(panel.translated, timeout=20000):
        drop(panel, [write_png(tmp_path / "a.png", 12, 10)])
    item = panel.items[0]
    assert item.output is None and "open a model" in item.view.message
    assert (item.input.width(), item.input.height()) == (12, 10) and item.view.input is item.input
    assert item.view.display_size().toTuple() == (12, 10)


def test_a_broken_image_or_model_is_reported_in_place(qtbot, tmp_path, errors):
    panel = TranslatePanel(tiny_model())
    qtbot.addWidget(panel)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    panel.add_files([str(bad)])
    qtbot.waitUntil(lambda: bool(panel.items[0].error), timeout=20000)
    assert "could not translate" in panel.items[0].caption.text()
    panel.load_model(str(tmp_path / "missing.pt"))
    qtbot.waitUntil(lambda: "Could not open the model" in panel.model_label.text(), timeout=20000)
    assert errors[-1][0] == "Cannot open the model" and "does not exist" in errors[-1][1]


def test_use_current_run_loads_the_model_being_trained(qtbot, window):
    c = window.controller
    window.form.set_values(max_steps=100000, preview_every=100000)
    with qtbot.waitSignal(c.progressed, timeout=60000):
        window.controls.train.click()
    assert window.translate.current_button.isEnabled()
    with qtbot.waitSignal(window.translate.model_changed, timeout=60000) as blocker:
        window.translate.current_button.click()  # saves a checkpoint first, then loads it
    model = blocker.args[0]
    assert model.directions == ["AtoB", "BtoA"] and model.step >= 1
    assert Path(model.source).parent.parent == Path(window.run_folder.path())
    with qtbot.waitSignal(c.finished, timeout=60000):
        window.controls.stop.click()


class FakeContext:
    """What a job sees of ``gui.jobs.JobContext``: the stop flag and ``emit``."""

    def __init__(self, stop: bool = False):
        self.stop_requested = stop
        self.reports: list = []

    def emit(self, report) -> None:
        self.reports.append(report)


def test_the_translate_job_runs_without_qt_and_reports_the_input_first(tmp_path):
    """The job types are Qt-free: importing them pulls in no Qt, and the job runs on any thread."""
    code = ("import sys, gui.translate_jobs, gui.translate_paths, gui.series, gui.divergences; "
            "sys.exit(any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
    src = write_png(tmp_path / "a.png", 40, 30)
    ctx = FakeContext()
    result = translate_job(ctx, tiny_model(), TranslateRequest(str(src), "BtoA", tile=32), interval=0.0)
    assert isinstance(ctx.reports[0], TranslationStarted) and ctx.reports[0].input.shape == (30, 40, 3)
    assert isinstance(ctx.reports[-1], TranslationProgress) and ctx.reports[-1].done == ctx.reports[-1].total
    assert result.output.shape == (30, 40, 3) and result.direction == "BtoA" and result.tiles == ctx.reports[-1].total
    with pytest.raises(TranslationCancelled):
        translate_job(FakeContext(stop=True), tiny_model(), TranslateRequest(str(src), "AtoB"))
