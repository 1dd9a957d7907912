"""The Translate tab as a tool: fitted results with a 1:1 zoom, the before/after split, per-image progress
from tiled translation, a queue, memory errors in a dialog, and a run's latest or best checkpoint."""

from __future__ import annotations

import threading
import time

import torch
from PIL import Image
from PySide6.QtCore import QPoint, Qt, QThread, QTimer
from PySide6.QtWidgets import QApplication

from engine.config import preset
from engine.io.checkpoint_files import save_checkpoint
from engine.io.tiling import OutOfMemory
from engine.io.translate import TranslationModel
from engine.models.networks import build_generator
from gui.checkpoint_box import NO_BEST
from gui.export_dialog import ExportDialog
from gui.translate_panel import TranslatePanel

from .conftest import quick_config
from .test_translate import tiny_model, write_png

TIMEOUT = 30000
RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid_png(path, w, h, colour):
    Image.new("RGB", (w, h), colour).save(path)
    return path


def pixel(widget, x, y) -> tuple[int, int, int]:
    c = widget.grab().toImage().pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def shown_panel(qtbot, model=None, w=760, h=620, **kw) -> TranslatePanel:
    panel = TranslatePanel(model, **kw)
    qtbot.addWidget(panel)
    panel.resize(w, h)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_a_result_fits_the_view_and_zooms_to_one_to_one(qtbot, tmp_path):
    panel = shown_panel(qtbot, tiny_model())
    src = write_png(tmp_path / "wide.png", 1200, 400)
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        panel.add_files([str(src)])
    item = panel.items[0]
    QApplication.processEvents()
    fitted = item.view.display_size()
    assert fitted.width() <= item.area.viewport().width() <= panel.results.viewport().width()
    assert fitted.height() <= panel.results.viewport().height()
    assert fitted.width() < 1200 and abs(fitted.width() / fitted.height() - 3.0) < 0.02  # aspect kept
    assert item.view.size() == fitted  # split: one image area, input and output in it
    assert item.area.horizontalScrollBar().maximum() == 0  # nothing of it is out of view

    item.zoom_box.setCurrentIndex(item.zoom_box.findData(1))  # 1:1
    QApplication.processEvents()
    assert item.view.display_size().toTuple() == (1200, 400) == item.view.size().toTuple()
    assert item.area.horizontalScrollBar().maximum() > 0  # it scrolls instead
    qtbot.mouseDClick(item.view, Qt.MouseButton.LeftButton, pos=QPoint(40, 40))  # double-click: back to fit
    assert item.zoom_box.currentData() == "fit" and item.view.display_size() == fitted

    # Side by side, both images share the width; a wide window never enlarges them beyond 1:1.
    panel.compare.mode_box.setCurrentIndex(panel.compare.mode_box.findData("side"))
    assert item.view.width() <= item.area.viewport().width() and not panel.compare.split_slider.isVisible()
    panel.compare.mode_box.setCurrentIndex(panel.compare.mode_box.findData("split"))
    panel.resize(1700, 1000)  # relaid out at most ten times a second while the window is resized
    qtbot.waitUntil(lambda: item.view.display_size().toTuple() == (1200, 400), timeout=TIMEOUT)


def test_the_split_shows_the_input_left_and_the_translation_right_of_the_divider(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(TranslationModel, "translate",
                        lambda self, img, direction="AtoB", **kw: Image.new("RGB", img.size, BLUE))
    panel = shown_panel(qtbot, tiny_model())
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        panel.add_files([str(solid_png(tmp_path / "red.png", 200, 120, RED))])
    view = panel.items[0].view
    assert view.size().toTuple() == (200, 120)
    y = 110  # below the divider's knob and the corner tags
    panel.compare.split_slider.setValue(30)
    assert view.divider_x() == 60
    assert pixel(view, 54, y) == RED and pixel(view, 66, y) == BLUE
    assert pixel(view, 5, y) == RED and pixel(view, 195, y) == BLUE

    # Dragging the divider moves it, and the slider (and every other result) follows.
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(60, 60))
    qtbot.mouseMove(view, QPoint(150, 60))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(150, 60))
    assert panel.compare.split_slider.value() == 75 and view.divider_x() == 150
    assert pixel(view, 144, y) == RED and pixel(view, 156, y) == BLUE
    panel.compare.split_slider.setValue(0)
    assert pixel(view, 5, y) == BLUE
    panel.compare.split_slider.setValue(100)
    assert pixel(view, 195, y) == RED
    assert panel.items[0].view.file_for_drag().endswith("red_AtoB.png")  # drag-out still hands out the PNG


def test_tiled_translation_reports_progress_to_the_gui_thread_and_the_window_stays_responsive(
        qtbot, tmp_path, monkeypatch):
    cfg = preset("cpu-quick").with_values(netG="resnet", ngf=8, n_blocks=1)
    torch.manual_seed(0)
    path = TranslationModel(build_generator(cfg).eval(), None, cfg, "tiny").save(tmp_path / "tiny.safetensors")
    original = TranslationModel.translate

    def slow_tiles(self, img, direction="AtoB", *, progress=None, **kw):
        def each(done, total):
            time.sleep(0.05)  # a big image's tiles take a while
            progress(done, total)
        return original(self, img, direction, progress=each, **kw)

    monkeypatch.setattr(TranslationModel, "translate", slow_tiles)
    panel = shown_panel(qtbot, tile=32)
    with qtbot.waitSignal(panel.model_changed, timeout=TIMEOUT):
        panel.load_model(str(path))
    seen, threads, ticks = [], [], []
    panel.progressed.connect(lambda p, done, total: (seen.append((done, total)),
                                                     threads.append(QThread.currentThread())))
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        panel.add_files([str(write_png(tmp_path / "big.png", 96, 80))])
        qtbot.waitUntil(lambda: panel.items[0].progress.maximum() == 9, timeout=TIMEOUT)  # 3 × 3 tiles of 32 px
        assert panel.items[0].progress.format() == "tile %v of %m" and panel.items[0].progress.isVisible()
    timer.stop()
    assert seen and seen[-1] == (9, 9) and all(total == 9 for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(t is QApplication.instance().thread() for t in threads)  # handed over, never from the worker
    assert len(ticks) >= 5  # the event loop ran all along (9 tiles × 50 ms)
    item = panel.items[0]
    assert item.output.size().toTuple() == (96, 80) and not item.progress.isVisible()
    assert "9 tiles" in item.caption.text() and "at full resolution" in item.caption.text()


def test_a_second_drop_waits_for_the_first_and_both_finish(qtbot, tmp_path, monkeypatch):
    release = threading.Event()
    original = TranslationModel.translate

    def gated(self, img, direction="AtoB", **kw):
        release.wait(10)
        return original(self, img, direction, **kw)

    monkeypatch.setattr(TranslationModel, "translate", gated)
    panel = shown_panel(qtbot, tiny_model())
    finished = []
    panel.translated.connect(finished.append)
    a, b = write_png(tmp_path / "a.png", 30, 20), write_png(tmp_path / "b.png", 20, 30)
    panel.add_files([str(a)])
    qtbot.waitUntil(lambda: panel.items[0].state == "translating", timeout=TIMEOUT)
    panel.add_files([str(b)])
    second = panel.items[1]
    assert second.state == "waiting" and "waiting" in second.caption.text()
    assert second.progress.format() == "waiting" and "1 waiting" in panel.status.text()
    assert panel.busy
    release.set()
    qtbot.waitUntil(lambda: len(finished) == 2 and not panel.busy, timeout=TIMEOUT)
    assert finished == [str(a), str(b)]
    assert [it.output.size().toTuple() for it in panel.items] == [(30, 20), (20, 30)]
    assert panel.status.text() == ""


def test_out_of_memory_shows_a_dialog_and_the_tab_stays_usable(qtbot, tmp_path, monkeypatch, errors):
    original = TranslationModel.translate

    def fails(self, img, direction="AtoB", *, max_memory, **kw):
        if max_memory > 512 << 20:
            raise OutOfMemory("a 2048×2048-px tile did not fit in memory (CUDA out of memory): use a smaller tile")
        return original(self, img, direction, max_memory=max_memory, **kw)

    monkeypatch.setattr(TranslationModel, "translate", fails)
    panel = shown_panel(qtbot, tiny_model())
    src = write_png(tmp_path / "huge.png", 40, 30)
    panel.add_files([str(src)])
    item = panel.items[0]
    qtbot.waitUntil(lambda: item.state == "failed", timeout=TIMEOUT)
    title, text, _details = errors[-1]
    assert title == "Could not translate huge.png"
    assert "did not fit in memory" in text and "Memory for translation" in text
    assert "could not translate" in item.caption.text() and "did not fit" in item.view.message
    assert item.output is None and not panel.busy and panel.add_button.isEnabled()
    # Less memory: what failed is translated again, and now fits.
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        panel.memory_box.setCurrentIndex(panel.memory_box.findData(512 << 20))
    assert item.state == "done" and item.output.size().toTuple() == (40, 30) and not item.error


def test_match_training_scale_translates_at_the_scale_the_model_learned(qtbot, tmp_path, monkeypatch):
    scales = []
    original = TranslationModel.translate

    def record(self, img, direction="AtoB", *, scale=1.0, **kw):
        scales.append(scale)
        return original(self, img, direction, scale=scale, **kw)

    monkeypatch.setattr(TranslationModel, "translate", record)
    model = tiny_model()
    model.data_scale = {"A": 0.5625, "B": 1.0}
    panel = shown_panel(qtbot, model)
    assert panel.scale_note.isVisible() and "learned at 0.56×" in panel.scale_note.text()
    assert panel.match_scale.isVisible() and not panel.match_scale.isChecked()
    assert panel.match_scale.text() == "Match training scale (0.56×)"
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        panel.add_files([str(write_png(tmp_path / "photo.png", 64, 48))])
    assert scales[-1] == 1.0 and "at full resolution" in panel.items[0].caption.text()
    del scales[:]  # from here: the panel's call first, then the engine's own at 1 on the shrunk image
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        panel.match_scale.setChecked(True)
    assert scales[0] == 0.5625 and "at 0.56× (training scale)" in panel.items[0].caption.text()
    assert panel.items[0].output.size().toTuple() == (64, 48)
    del scales[:]
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):  # B learned at its own size: no note
        panel.direction.setCurrentIndex(panel.direction.findData("BtoA"))
    assert not panel.scale_note.isVisible() and not panel.match_scale.isVisible() and scales == [1.0]


def fake_run(root, cfg):
    """A run folder with checkpoints/latest.pt (step 10); ``best`` writes checkpoints/best.pt (step 6)."""
    (root / "checkpoints").mkdir(parents=True)
    (root / "config.json").write_text(cfg.to_json())

    def write(name, step, seed):
        torch.manual_seed(seed)
        G, F = build_generator(cfg), build_generator(cfg)
        save_checkpoint(root / "checkpoints" / name, {"config": cfg.to_json(), "step": step,
                                                      "models": {"G": G.state_dict(), "F": F.state_dict()}})
        return G

    return write("latest.pt", 10, 1), lambda: write("best.pt", 6, 2)


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_runs_best_checkpoint_is_offered_once_it_exists_and_loads(qtbot, tmp_path):
    cfg = quick_config()
    latest_G, write_best = fake_run(tmp_path / "run", cfg)
    panel = shown_panel(qtbot)
    assert panel.checkpoint_box.isHidden()  # no run, no choice
    with qtbot.waitSignal(panel.model_changed, timeout=TIMEOUT):
        panel.load_model(str(tmp_path / "run"))
    box = panel.checkpoint_box
    best = box.findData("best")
    assert box.isVisible() and box.choice == "latest" and panel.model.step == 10
    assert not box.model().item(best).isEnabled() and box.itemData(best, Qt.ItemDataRole.ToolTipRole) == NO_BEST
    assert "run “run”" in panel.model_label.text()

    best_G = write_best()
    box.refresh()  # what opening the list does
    assert box.model().item(best).isEnabled()
    with qtbot.waitSignal(panel.model_changed, timeout=TIMEOUT) as loaded:
        box.setCurrentIndex(best)
    model = loaded.args[0]
    assert model.source == str(tmp_path / "run" / "checkpoints" / "best.pt") and model.step == 6
    assert same_weights(model.G, best_G) and "best checkpoint" in panel.model_label.text()
    assert box.choice == "best"
    with qtbot.waitSignal(panel.model_changed, timeout=TIMEOUT) as loaded:
        box.setCurrentIndex(box.findData("latest"))
    assert loaded.args[0].step == 10 and same_weights(loaded.args[0].G, latest_G)


def test_export_writes_the_checkpoint_the_user_picked(qtbot, tmp_path):
    cfg = quick_config()
    latest_G, write_best = fake_run(tmp_path / "run", cfg)
    model = TranslationModel.load(tmp_path / "run")  # latest
    plain = ExportDialog(tiny_model(), folder=str(tmp_path))
    qtbot.addWidget(plain)
    assert plain.checkpoint is None  # a model file has no checkpoints to choose from
    dlg = ExportDialog(model, folder=str(tmp_path))
    qtbot.addWidget(dlg)
    box = dlg.checkpoint_box
    assert dlg.checkpoint == "latest" and not box.model().item(box.findData("best")).isEnabled()
    best_G = write_best()
    dlg2 = ExportDialog(model, folder=str(tmp_path))
    qtbot.addWidget(dlg2)
    dlg2.checkpoint_box.setCurrentIndex(dlg2.checkpoint_box.findData("best"))
    assert dlg2.path_edit.text() == str(tmp_path / "run_best_AtoB.safetensors")
    with qtbot.waitSignal(dlg2.exported, timeout=TIMEOUT) as done:
        assert dlg2.export()
    written = TranslationModel.load(done.args[0])
    assert same_weights(written.G, best_G) and not same_weights(written.G, latest_G)
    with qtbot.waitSignal(dlg.exported, timeout=TIMEOUT) as done:  # the open model: latest
        assert dlg.export()
    assert same_weights(TranslationModel.load(done.args[0]).G, latest_G)


def test_clearing_stops_queued_translations(qtbot, tmp_path):
    panel = shown_panel(qtbot, tiny_model())
    panel.add_files([str(write_png(tmp_path / f"{i}.png", 64, 64)) for i in range(4)])
    panel.clear()
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=TIMEOUT)
    assert panel.items == [] and not panel.busy and panel.status.text() == ""
