"""The window's entry points refuse malicious checkpoints, and closing mid-save waits for the save.

The malicious file is a pickle whose ``__reduce__`` would create a marker file when unpickled
(tests/evil.py). Each entry point must show a clear error and leave no marker behind. The engine's
entry points (Python and command line) are covered in tests/test_checkpoint.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from engine.io.checkpoint_files import CheckpointFolder, load_checkpoint
from gui.training_controller import TrainingJob
from gui.util import send_drop
from tests.evil import make_evil_checkpoint

from .conftest import quick_config

TIMEOUT = 60000


@pytest.fixture
def evil_run(tmp_path):
    """A run folder that looks right (valid config.json and metrics) around a malicious latest.pt."""
    run = tmp_path / "evil-run"
    marker = tmp_path / "PWNED"
    make_evil_checkpoint(run / "checkpoints" / "latest.pt", marker)
    (run / "config.json").write_text(quick_config().to_json())
    (run / "metrics.jsonl").write_text('{"type": "progress", "step": 1, "time": 0.1, "G_A": 1.0}\n')
    return run, marker


def refused(errors) -> str:
    assert errors, "no error was shown"
    title, text, _details = errors[-1]
    assert "refused" in text and "never unpickled" in text, text
    return title


def test_open_run_refuses_a_malicious_checkpoint(qtbot, window, errors, evil_run):
    run, marker = evil_run
    assert window.open_run(str(run))  # config and plots are plain text: they open
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    assert refused(errors) == "Cannot use the run's checkpoint"
    assert not marker.exists()
    # Nothing offers to use it: no Continue, no Use current run.
    assert window.controls.continue_.isHidden() and not window.translate.current_button.isEnabled()
    assert window.plots.point_count("G_A") == 1


def test_open_run_through_the_menu_dialog(qtbot, window, errors, evil_run, monkeypatch):
    run, marker = evil_run
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(run))
    window.open_run_action.trigger()
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    refused(errors)
    assert not marker.exists()


def test_continuing_a_malicious_run_is_refused_by_the_worker(qtbot, window, errors, evil_run):
    """Even past the open check (e.g. the file swapped afterwards), resuming loads weights-only."""
    run, marker = evil_run
    c = window.controller
    with qtbot.waitSignal(c.failed, timeout=TIMEOUT) as failed:
        c.start(TrainingJob(str(run), resume=True))
    assert "refused" in failed.args[0]
    assert errors[-1][0] == "Training failed" and not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_open_model_refuses_a_malicious_file(qtbot, window, errors, tmp_path, monkeypatch, suffix):
    marker = tmp_path / "PWNED"
    evil = make_evil_checkpoint(tmp_path / f"model{suffix}", marker)
    chosen = []

    def fake_dialog(parent, caption, folder, filters):
        chosen.append(filters)
        return str(evil), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_dialog)
    window.open_model_action.trigger()
    assert window.tabs.currentWidget() is window.translate
    assert all(f in chosen[0] for f in ("*.pt", "*.pth", "*.safetensors", "config.json"))
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    assert refused(errors) == "Cannot open the model"
    assert not marker.exists() and window.translate.model is None
    assert "Could not open the model" in window.translate.model_label.text()


@pytest.mark.parametrize("what", ["file", "run folder"])
def test_dropping_a_malicious_model_on_the_translate_tab_is_refused(qtbot, window, errors, evil_run, what):
    run, marker = evil_run
    target = run / "checkpoints" / "latest.pt" if what == "file" else run
    assert send_drop(window.translate, [str(target)])
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    assert refused(errors) == "Cannot open the model"
    assert not marker.exists() and window.translate.model is None


def test_closing_the_window_during_a_save_waits_for_the_save(qtbot, window, monkeypatch):
    """The save in flight is slowed down; close() must not return the window before it has finished."""
    original = CheckpointFolder.save
    saving, saves_done = threading.Event(), []

    def slow_save(self, step, payload):
        saving.set()
        time.sleep(0.4)
        path = original(self, step, payload)
        saves_done.append((step, time.monotonic()))
        return path

    monkeypatch.setattr(CheckpointFolder, "save", slow_save)
    c = window.controller
    window.form.set_values(max_steps=100000, preview_every=100000)
    with qtbot.waitSignal(c.progressed, timeout=TIMEOUT):
        window.controls.train.click()
    window.controls.save.click()
    qtbot.waitUntil(saving.is_set, timeout=TIMEOUT)
    window.close()  # mid-save
    assert window.isVisible() and c.state == c.STOPPING, "the window closed under a save in flight"
    closed_at = []
    qtbot.waitUntil(lambda: not window.isVisible() and (closed_at.append(time.monotonic()) or True), timeout=TIMEOUT)
    assert not c.busy and c.wait(0)  # joined
    # The requested save and the save on the way out both finished before the window went.
    assert len(saves_done) == 2 and saves_done[-1][1] <= closed_at[0]
    ck = Path(window.run_folder.path()) / "checkpoints" / "latest.pt"
    assert load_checkpoint(ck)["step"] == saves_done[-1][0]
