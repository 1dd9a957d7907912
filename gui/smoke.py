"""Smoke mode: drive the real window through a short demo run and screenshot it.

It presses the same buttons a person would (Use demo dataset, Train) and drops a file on
the Translate tab with a real QDropEvent, so it exercises the app, not a shortcut around it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from engine.config import preset
from engine.training.reports import FinishedReport

from .main_window import MainWindow
from .util import send_drop

log = logging.getLogger(__name__)

__all__ = ["SmokeRun", "smoke_values"]

CRITIC_STEPS = 300  # --tab distances: enough for the dual to reach W on the parallel lines (~2 s)


def smoke_values(steps: int) -> dict:
    """cpu-quick, cut to ``steps``, reporting often enough that plots and previews fill within the run.

    Half the cores for torch: the GUI thread and the batch prefetch need one, and on a small
    shared CI machine a thread per core makes every step many times slower (OpenMP spinning).
    """
    return {"max_steps": steps, "log_every": max(1, steps // 20), "preview_every": max(1, steps // 2),
            "eval_every": max(1, steps // 3), "save_every": max(1, steps),
            "threads": max(1, (os.cpu_count() or 2) // 2)}


class SmokeRun(QObject):
    def __init__(self, window: MainWindow, args: argparse.Namespace):
        super().__init__(window)
        self.window = window
        self.args = args
        self.code: int | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="cyclegan-smoke-"))
        self._t0 = time.monotonic()
        self._poll = QTimer(self)
        self._poll.setInterval(100)
        self._poll.timeout.connect(self._on_poll_timeout)
        self._condition = self._then = None

    # --- driver ----------------------------------------------------------------------------
    def exec(self) -> int:
        app = QApplication.instance()
        QTimer.singleShot(0, self._begin)
        deadline = QTimer(self)
        deadline.setSingleShot(True)
        deadline.timeout.connect(lambda: self._fail(f"timed out after {self.args.timeout:g} s"))
        deadline.start(int(self.args.timeout * 1000))
        app.exec()
        shutil.rmtree(self._tmp, ignore_errors=True)
        return self.code if self.code is not None else 1

    def _finish(self, code: int) -> None:
        if self.code is not None:
            return
        self.code = code
        self._poll.stop()
        w = self.window
        if w.controller.busy:
            w.controller.stop()
            w.controller.wait()
        QTimer.singleShot(0, QApplication.instance().quit)

    def _fail(self, message: str) -> None:
        log.error("smoke mode failed: %s", message)
        self._finish(3 if "timed out" in message else 2)

    def _wait_until(self, condition, then) -> None:
        """Poll ``condition`` every 100 ms (the event loop keeps running), then call ``then``."""
        self._condition, self._then = condition, then
        self._poll.start()

    def _on_poll_timeout(self) -> None:
        if self.code is None and self._condition is not None and self._condition():
            self._poll.stop()
            then, self._condition, self._then = self._then, None, None
            then()

    # --- steps -----------------------------------------------------------------------------
    def _begin(self) -> None:
        w = self.window
        w.resize(1440, 900)
        w.show()
        w.controller.failed.connect(lambda msg, _tb: self._fail(f"training failed: {msg}"))
        w.controller.finished.connect(self._on_controller_finished)
        if self.args.demo:
            w.datasets.demo_button.click()
            self._wait_until(lambda: w.datasets.ready, self._on_data_ready)
        elif self.args.folders:
            w.datasets.set_paths(*self.args.folders)
            self._wait_until(lambda: not w.datasets.scanning, self._on_data_ready)
        else:
            self._on_data_ready()

    def _on_data_ready(self) -> None:
        w = self.window
        steps = self.args.train_steps
        if not steps:
            self._screenshot_and_go_on()
            return
        if not w.datasets.ready:
            self._fail(f"no usable data: {w.datasets.problem()} (use --demo)")
            return
        w.form.set_config(preset("cpu-quick").with_values(smoke_values(steps)))
        w.run_folder.set_path(str(self._tmp / "run"))
        if not w.controls.train.isEnabled():
            self._fail(f"Train is disabled: {w.controls.train_problem}")
            return
        log.info("smoke: training %d steps into %s", steps, self._tmp / "run")
        w.controls.train.click()

    def _on_controller_finished(self, report: FinishedReport) -> None:
        if report.reason not in ("completed", "stopped", "drifted"):
            self._fail(f"run ended: {report.reason} {report.message}")
            return
        log.info("smoke: run finished at step %d (%s)", report.step, report.reason)
        w = self.window

        def shown() -> bool:
            w.plots.flush()
            return w.plots.shown_count("G_A") > 0 and w.previews.has_images()

        self._wait_until(shown, self._screenshot_and_go_on)

    def _screenshot_and_go_on(self) -> None:
        w = self.window
        if self.args.tab:
            w.show_tab(self.args.tab)
        if self.args.tab == "distances" and w.distances.result is None:
            self._train_critic()
            return
        if self.args.screenshot:
            self._grab(self.args.screenshot)
        if self.args.translate:
            self._translate()
        else:
            self._finish(0)

    def _train_critic(self) -> None:
        """A short critic run on the Distances tab, so the screenshot shows its dual curve and heatmap."""
        d = self.window.distances
        d.steps_box.setValue(CRITIC_STEPS)
        d.controller.failed.connect(lambda msg, _tb: self._fail(f"critic training failed: {msg}"))
        log.info("smoke: training a critic for %d steps on the Distances tab", CRITIC_STEPS)
        d.train_button.click()
        self._wait_until(lambda: d.result is not None and not d.busy, self._screenshot_and_go_on)

    def _translate(self) -> None:
        w = self.window
        src = Path(self.args.translate)
        if not src.is_file():
            self._fail(f"--translate: {src} is not a file")
            return
        run_dir = w.controller.run_dir
        if not run_dir:
            self._fail("--translate needs a trained model (use --train-steps)")
            return
        w.show_tab("translate")
        w.translate.load_model(run_dir)
        w.translate.model_changed.connect(lambda _m: self._drop(src))

    def _drop(self, src: Path) -> None:
        w = self.window
        if not send_drop(w.translate, [str(src)]):
            self._fail("the Translate tab refused the drop")
            return
        self._wait_until(lambda: bool(w.translate.items) and w.translate.items[-1].output is not None
                         and not w.translate.busy, self._on_translated)

    def _on_translated(self) -> None:
        out = Path(self.args.screenshot)
        self._grab(str(out.with_name(out.stem + "-translate.png")), tab="translate")
        self._finish(0)

    def _grab(self, path: str, tab: str | None = None) -> None:
        w = self.window
        if tab:
            w.show_tab(tab)
        QApplication.processEvents()
        w.plots.flush()
        QApplication.processEvents()
        if not w.grab().save(path):
            self._fail(f"could not write {path}")
            return
        log.info("smoke: screenshot %s (%.1f s)", path, time.monotonic() - self._t0)

