"""Training from the window: live signals into plots and previews, controls, closing, errors, runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.io.checkpoint_files import load_checkpoint
from engine.training.reports import FinishedReport
from engine.training.trainer import Trainer
from gui.main_window import MainWindow
from gui.training_controller import TrainingController, TrainingJob

from .conftest import quick_config

TIMEOUT = 60000


def run_dir(window) -> Path:
    return Path(window.run_folder.path())


def test_training_feeds_plots_and_previews_and_stop_leaves_a_checkpoint(qtbot, window):
    c = window.controller
    progress, previews = [], []
    c.progressed.connect(progress.append)
    c.previews_ready.connect(previews.append)
    with qtbot.waitSignal(c.previews_ready, timeout=TIMEOUT):
        window.controls.train.click()
    assert c.state in (c.RUNNING, c.PAUSED)
    assert not window.controls.train.isEnabled() and window.controls.stop.isEnabled()
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as blocker:
        window.controls.stop.click()
    report = blocker.args[0]
    assert isinstance(report, FinishedReport) and report.reason == "stopped"
    assert report.checkpoint and Path(report.checkpoint).is_file()
    assert (run_dir(window) / "checkpoints" / "latest.pt").is_file()

    # Every progress report is one point of each loss curve, and the curves show them all.
    n = len(progress)
    assert n >= 2 and [r.step for r in progress] == list(range(1, n + 1))
    window.plots.flush()
    for key in ("G_A", "G_B", "D_A", "D_B", "cycle", "identity"):
        assert window.plots.point_count(key) == n
        assert window.plots.shown_count(key) == n
    assert previews and window.previews.has_images()
    tile = window.previews.tiles["fake_B"]
    assert not tile.pixmap().isNull() and tile.pixmap().width() >= 32
    assert window.previews.step == previews[-1].step
    assert window.controls.train.isEnabled() and not window.controls.stop.isEnabled()
    assert not window.controls.continue_.isHidden() and window.controls.continue_run == str(run_dir(window))


def test_pause_stops_the_step_counter_and_resume_continues_it(qtbot, window):
    c = window.controller
    steps: list[int] = []
    c.progressed.connect(lambda r: steps.append(r.step))
    window.form.set_values(max_steps=100000, preview_every=100000)
    with qtbot.waitSignal(c.progressed, timeout=TIMEOUT):
        window.controls.train.click()
    window.controls.pause.click()
    assert c.state == c.PAUSED and window.controls.resume.isVisible()
    # A save asked for while paused is written from inside the pause, after the report of the step that
    # was in flight: when it arrives, the trainer is paused at the last step reported.
    with qtbot.waitSignal(c.checkpoint_saved, timeout=TIMEOUT) as saved:  # saving works while paused
        window.controls.save.click()
    assert saved.args[0].step == steps[-1]
    frozen = len(steps)
    # A second save, still paused, is at the same step, and no step was reported in between.
    with qtbot.waitSignal(c.checkpoint_saved, timeout=TIMEOUT) as again:
        window.controls.save.click()
    assert again.args[0].step == saved.args[0].step
    assert len(steps) == frozen, "steps kept coming while paused"
    window.controls.resume.click()
    qtbot.waitUntil(lambda: len(steps) >= frozen + 3, timeout=TIMEOUT)
    assert steps == list(range(1, len(steps) + 1))
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT):
        window.controls.stop.click()


def test_save_checkpoint_button_saves_at_the_next_step(qtbot, window):
    c = window.controller
    window.form.set_values(max_steps=100000, preview_every=100000)
    with qtbot.waitSignal(c.progressed, timeout=TIMEOUT):
        window.controls.train.click()
    with qtbot.waitSignal(c.checkpoint_saved, timeout=TIMEOUT) as blocker:
        window.controls.save.click()
    assert Path(blocker.args[0].path).is_file()
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT):
        window.controls.stop.click()


def test_closing_mid_training_stops_joins_and_leaves_a_checkpoint(qtbot, window):
    c = window.controller
    window.form.set_values(max_steps=100000, preview_every=100000)
    with qtbot.waitSignal(c.progressed, timeout=TIMEOUT):
        window.controls.train.click()
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as blocker:
        window.close()  # deferred: stop, save, join, then close
        assert c.state == c.STOPPING
    assert blocker.args[0].reason == "stopped"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert not c.busy and c.wait(0)  # joined
    ck = run_dir(window) / "checkpoints" / "latest.pt"
    assert ck.is_file()
    assert load_checkpoint(ck)["step"] >= 1


def test_exception_in_the_worker_shows_details_and_a_new_run_can_start(qtbot, window, errors, monkeypatch, tmp_path):
    def boom(self, real_a, real_b):
        raise RuntimeError("simulated failure in the training step")

    monkeypatch.setattr(Trainer, "train_step", boom)
    c = window.controller
    with qtbot.waitSignal(c.failed, timeout=TIMEOUT) as blocker:
        window.controls.train.click()
    assert "simulated failure" in blocker.args[0]
    assert errors and errors[-1][0] == "Training failed"
    assert "simulated failure" in errors[-1][1]
    assert "Traceback" in errors[-1][2] and "boom" in errors[-1][2]
    assert not c.busy and window.controls.train.isEnabled()

    monkeypatch.undo()
    window.run_folder.set_path(str(tmp_path / "second"))
    window.form.set_values(max_steps=3)
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as blocker:
        window.controls.train.click()
    assert blocker.args[0].reason == "completed" and blocker.args[0].step == 3


def test_a_run_ending_in_error_is_reported(qtbot, window, errors, tmp_path):
    blocker_file = tmp_path / "not-a-folder"
    blocker_file.write_text("x")
    window.run_folder.set_path(str(blocker_file / "run"))  # cannot be created
    with qtbot.waitSignal(window.controller.finished, timeout=TIMEOUT) as blocker:
        window.controls.train.click()
    assert blocker.args[0].reason == "error"
    assert errors and "run folder" in errors[-1][1]


def test_train_refuses_a_folder_that_already_holds_a_run(qtbot, window, errors):
    ck = run_dir(window) / "checkpoints" / "latest.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"x")
    window.controls.train.click()
    assert errors and "already holds a run" in errors[-1][1]
    assert not window.controller.busy


def test_open_run_restores_config_plots_preview_and_continue_resumes(qtbot, window, errors):
    c = window.controller
    window.form.set_values(max_steps=100000, gan_mode="wgan-gp", n_critic=1, eval_every=2, val_fraction=0.34,
                           val_min=1)
    qtbot.waitUntil(lambda: window.datasets.ready, timeout=20000)  # the data settings changed: rescanned
    steps = []
    c.progressed.connect(lambda r: steps.append(r.step))
    with qtbot.waitSignal(c.evaluated, timeout=TIMEOUT):
        window.controls.train.click()
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as stopped:
        window.controls.stop.click()
    last = stopped.args[0].step
    run = str(run_dir(window))

    other = MainWindow(quick_config(), persist=False)
    qtbot.addWidget(other)
    assert other.open_run(run)
    assert other.form.config() == window.form.config()
    assert other.plots.point_count("G_A") == len(steps) == last
    assert other.plots.point_count("w_A_val") == last // 2
    assert other.previews.stack.currentIndex() == 1 and other.previews.step is not None
    # Continue appears once the checkpoint has been read (weights only, in the background).
    qtbot.waitUntil(lambda: other.controls.continue_run == run, timeout=20000)
    assert not other.controls.continue_.isHidden() and other.translate.current_button.isEnabled()
    qtbot.waitUntil(lambda: other.datasets.ready, timeout=20000)

    # Continue resumes from the checkpoint the stop left, at the step where it stopped.
    started = []
    other.controller.started.connect(started.append)
    with qtbot.waitSignal(other.controller.progressed, timeout=TIMEOUT) as progressed:
        other.controls.continue_.click()
    assert started[0].step == last and started[0].run_dir == run
    assert progressed.args[0].step == last + 1
    with qtbot.waitSignal(other.controller.finished, timeout=TIMEOUT):
        other.controls.stop.click()
    assert not errors


def test_a_completed_run_is_not_offered_for_continuing(qtbot, window):
    window.form.set_values(max_steps=3)
    with qtbot.waitSignal(window.controller.finished, timeout=TIMEOUT):
        window.controls.train.click()
    assert window.controls.continue_.isHidden()
    assert window.open_run(str(run_dir(window)))
    qtbot.waitUntil(window.translate.current_button.isEnabled, timeout=20000)
    assert window.controls.continue_.isHidden()


def test_open_run_with_an_invalid_config_is_an_error(qtbot, window, errors, tmp_path):
    bad = tmp_path / "badrun"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"data": {"crop_size": 30}}))
    assert not window.open_run(str(bad))
    assert errors and "crop_size" in errors[-1][1]
    assert not window.open_run(str(tmp_path / "nothing"))
    assert "no config.json" in errors[-1][1]


def test_controller_can_be_used_alone_and_a_stop_before_the_trainer_exists(qtbot, domains, tmp_path):
    c = TrainingController()
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as blocker:
        c.start(TrainingJob(str(tmp_path / "r"), quick_config(max_steps=50), str(domains[0]), str(domains[1])))
        c.stop()  # while the trainer is still being built
    assert blocker.args[0].reason == "stopped"
    assert (tmp_path / "r" / "checkpoints" / "latest.pt").is_file()

    c.start(TrainingJob(str(tmp_path / "r2"), quick_config(), str(domains[0]), str(domains[1])))
    with pytest.raises(RuntimeError, match="already in progress"):
        c.start(TrainingJob(str(tmp_path / "r3"), quick_config(), str(domains[0]), str(domains[1])))
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT):
        c.stop()


def test_quitting_the_app_mid_run_stops_and_joins_without_deadlock(qtbot, window):
    """aboutToQuit blocks the GUI thread in wait(): the worker's thread must end on its own."""
    c = window.controller
    window.form.set_values(max_steps=100000, preview_every=100000)
    with qtbot.waitSignal(c.progressed, timeout=TIMEOUT):
        window.controls.train.click()
    c.jobs._on_app_about_to_quit()  # what QApplication.aboutToQuit runs
    assert c.jobs.thread.isFinished()
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as blocker:
        pass
    assert blocker.args[0].reason == "stopped" and not c.busy
    assert (run_dir(window) / "checkpoints" / "latest.pt").is_file()
