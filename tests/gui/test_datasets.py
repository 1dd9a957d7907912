"""The Datasets panel: counts, thumbnails, skip reasons, warnings; unusable folders block Train."""

from __future__ import annotations

from pathlib import Path

from engine.config import preset
from gui.datasets import DatasetsPanel
from gui.main_window import MainWindow
from gui.util import send_drop

from .conftest import quick_config


def wait_scanned(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.scanning, timeout=20000)


def test_choosing_folders_shows_counts_thumbnails_and_skipped_files(qtbot, domains):
    a, b = domains
    (a / "notes.png").write_text("this is not an image")
    (a / "empty.jpg").write_bytes(b"")
    panel = DatasetsPanel(quick_config())
    qtbot.addWidget(panel)
    panel.show()
    panel.set_paths(str(a), str(b))
    wait_scanned(qtbot, panel)
    pa, pb = panel.pickers["A"], panel.pickers["B"]
    assert pa.count_label.text() == "6 images" and pb.count_label.text() == "5 images"
    assert sum(not lab.isHidden() for lab in pa._thumb_labels) == 6
    assert not pa._thumb_labels[0].pixmap().isNull()
    text = "\n".join(pa.messages())
    assert "2 files skipped" in text and "not an image" in text and "empty file" in text
    assert pb.messages() == []  # 40-px images with a 32-px crop: nothing to say
    assert panel.ready and panel.problem() == ""


def test_tiny_images_and_the_same_folder_are_warned_about(qtbot, domains):
    a, b = domains
    panel = DatasetsPanel(quick_config(load_size=72, crop_size=64))
    qtbot.addWidget(panel)
    panel.set_paths(str(a), str(a))
    wait_scanned(qtbot, panel)
    msgs = "\n".join(panel.pickers["A"].messages())
    assert "same folder" in msgs and "smaller than the 64 px crop" in msgs
    assert not panel.ready and "same folder" in panel.problem()
    panel.set_path("B", str(b))
    wait_scanned(qtbot, panel)
    assert panel.ready
    assert "same folder" not in "\n".join(panel.pickers["A"].messages())


def test_an_empty_or_missing_folder_is_an_error_and_train_does_not_start(qtbot, domains, tmp_path, errors):
    empty = tmp_path / "empty"
    empty.mkdir()
    w = MainWindow(quick_config(), persist=False)
    qtbot.addWidget(w)
    w.datasets.set_paths(str(empty), str(domains[1]))
    wait_scanned(qtbot, w.datasets)
    picker = w.datasets.pickers["A"]
    assert picker.count_label.text() == "unusable"
    assert "nothing usable" in picker.messages()[0]
    assert not w.controls.train.isEnabled() and "Domain A" in w.controls.train_problem
    w.controls.train_requested.emit()  # as if forced: refused with a message, no thread started
    assert errors and errors[-1][0] == "Cannot start training" and "nothing usable" in errors[-1][1]
    assert not w.controller.busy

    w.datasets.set_path("A", str(tmp_path / "does-not-exist"))
    wait_scanned(qtbot, w.datasets)
    assert "not found" in picker.messages()[0] and not w.controls.train.isEnabled()


def test_a_folder_can_be_dropped_on_a_picker(qtbot, domains):
    panel = DatasetsPanel(quick_config())
    qtbot.addWidget(panel)
    picker = panel.pickers["B"]
    assert send_drop(picker, [str(domains[1])])
    wait_scanned(qtbot, panel)
    assert picker.path == str(domains[1]) and picker.count_label.text() == "5 images"


def test_use_demo_dataset_generates_and_selects_train_folders(qtbot, tmp_path):
    panel = DatasetsPanel(preset("cpu-quick"))
    qtbot.addWidget(panel)
    panel.demo_button.click()
    qtbot.waitUntil(lambda: panel.paths()[0] != "" and not panel.scanning, timeout=60000)
    a, b = panel.paths()
    assert Path(a) == tmp_path / "appdata" / "demo" / "trainA" and Path(b).name == "trainB"
    assert panel.ready and panel.pickers["A"].result.count == 150
