"""GUI test fixtures: isolated settings and data folders, and a guard against leaked threads."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QThread
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.helpers import make_domains, tiny_config


@pytest.fixture(autouse=True)
def isolated_app_state(tmp_path, monkeypatch):
    """QSettings and the app's data folder (demo data, runs) live in this test's tmp_path."""
    monkeypatch.setenv("CYCLEGAN_STUDIO_DATA", str(tmp_path / "appdata"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp, monkeypatch):
    """Fail any test that leaves a QThread running (it would keep training into the next test)."""
    started: list[QThread] = []
    original = QThread.start

    def start(self, *args):
        started.append(self)
        return original(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield
    leaked = []
    for thread in started:
        try:
            running = thread.isRunning()
        except RuntimeError:  # already deleted on the C++ side: it has finished
            continue
        if running and not thread.wait(2000):
            leaked.append(thread.objectName() or repr(thread))
    if leaked:
        # Stop the culprits (the worker honours requestInterruption) so the next tests run clean.
        for w in QApplication.topLevelWidgets():
            controller = getattr(w, "controller", None)
            if controller is not None:
                controller.stop()
        for thread in started:
            try:
                thread.requestInterruption()
                thread.wait(30000)
            except RuntimeError:
                pass
        pytest.fail(f"test left QThread(s) running: {', '.join(leaked)}")


@pytest.fixture
def errors(monkeypatch):
    """Error boxes are recorded as (title, text, details) instead of being shown."""
    shown: list[tuple[str, str, str]] = []

    def fake_open(self, *args):
        shown.append((self.windowTitle(), self.text(), self.detailedText()))

    monkeypatch.setattr(QMessageBox, "open", fake_open)
    return shown


@pytest.fixture
def domains(tmp_path):
    return make_domains(tmp_path / "data")


def quick_config(**overrides):
    """The tiny test config, one torch thread (the CI machine is small and shared), 40 steps."""
    base = dict(max_steps=40, threads=1, log_every=1, preview_every=2, eval_every=100, save_every=1000)
    base.update(overrides)
    return tiny_config(**base)


@pytest.fixture
def window(qtbot, domains, tmp_path):
    """The main window with tiny data chosen and scanned, and a run folder in tmp_path."""
    from gui.main_window import MainWindow

    w = MainWindow(quick_config(), persist=False)
    qtbot.addWidget(w)
    w.show()
    w.datasets.set_paths(str(domains[0]), str(domains[1]))
    qtbot.waitUntil(lambda: w.datasets.ready, timeout=20000)
    w.run_folder.set_path(str(tmp_path / "run"))
    return w
