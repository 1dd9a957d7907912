"""The application shell: settings persistence, tabs, menus, the command line and the smoke mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel

import gui.app
from engine.config import preset
from gui.main_window import MainWindow
from gui.util import APPLICATION, ORGANISATION, app_data_dir, settings

from .conftest import quick_config


def test_folders_config_and_geometry_persist_in_qsettings(qtbot, domains, tmp_path):
    w = MainWindow(quick_config(), persist=True)
    qtbot.addWidget(w)
    w.show()
    w.datasets.set_paths(str(domains[0]), str(domains[1]))
    qtbot.waitUntil(lambda: w.datasets.ready, timeout=20000)
    w.form.set_values(ngf=12, gan_mode="wgan-gp")
    w.resize(1234, 777)
    w.close()
    store = settings()
    assert Path(store.fileName()).is_relative_to(tmp_path)  # isolated by the conftest fixture
    assert store.value("data/path_a") == str(domains[0])
    assert store.value("window/geometry")  # restored with restoreGeometry (the offscreen screen may clamp it)

    again = MainWindow(persist=True)
    qtbot.addWidget(again)
    again.show()
    assert again.datasets.paths() == (str(domains[0]), str(domains[1]))
    assert again.form.config().model.ngf == 12 and again.form.config().objective.gan_mode == "wgan-gp"
    assert again.size().width() != 1440  # not the default size: the saved geometry was applied
    qtbot.waitUntil(lambda: not again.datasets.scanning, timeout=20000)


def test_the_data_folder_names_the_app_once(qapp, monkeypatch, tmp_path):
    """Demo data and runs go to <user data>/CycleGAN Studio, not …/CycleGAN Studio/CycleGAN Studio."""
    names = qapp.organizationName(), qapp.applicationName()
    qapp.setOrganizationName(ORGANISATION)  # as configure_app names the app
    qapp.setApplicationName(APPLICATION)
    try:
        monkeypatch.setenv("CYCLEGAN_STUDIO_DATA", str(tmp_path / "override"))
        assert app_data_dir() == tmp_path / "override"
        monkeypatch.delenv("CYCLEGAN_STUDIO_DATA")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))  # the user data folder on Linux
        data = app_data_dir()
        assert data.name == APPLICATION and APPLICATION not in data.parent.parts
        if sys.platform.startswith("linux"):
            assert data == tmp_path / "share" / APPLICATION
        store = settings()  # the settings keep their own place, and work
        store.setValue("probe", 1)
        store.sync()
        assert settings().value("probe", 0, int) == 1 and Path(store.fileName()).is_relative_to(tmp_path)
    finally:
        qapp.setOrganizationName(names[0])
        qapp.setApplicationName(names[1])


def test_a_broken_saved_config_falls_back_to_the_preset(qtbot):
    settings().setValue("config/json", '{"data": {"crop_size": 31}}')
    w = MainWindow(persist=True)
    qtbot.addWidget(w)
    assert w.form.config() == preset("cpu-quick")


def test_adding_a_tab_is_one_line_and_menus_leave_room(qtbot):
    w = MainWindow(quick_config(), persist=False)
    qtbot.addWidget(w)
    page = QLabel("notes")
    w.add_tab("notes", "Notes", page)
    w.show_tab("notes")
    assert w.tabs.currentWidget() is page and w.tab_keys == ["training", "translate", "distances", "notes"]
    with pytest.raises(KeyError):
        w.show_tab("nope")
    with pytest.raises(ValueError):
        w.add_tab("notes", "Again", QLabel())
    texts = [a.text() for a in w.file_menu.actions()]
    assert texts[:2] == ["Open run…", "Open model…"] and texts[-1] == "Quit"
    assert w.file_actions_end in w.file_menu.actions()
    assert [a.text() for a in w.help_menu.actions()] == ["System check…", "About CycleGAN Studio"]


def test_command_line_errors(capsys):
    from gui.app import main

    with pytest.raises(SystemExit):
        main(["--translate", "x.png"])
    assert "--translate needs --screenshot" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--train-steps", "0", "--screenshot", "x.png"])
    with pytest.raises(SystemExit):
        main(["only_one_folder"])
    assert "give two folders" in capsys.readouterr().err


def test_two_folders_on_the_command_line_are_chosen_as_a_and_b(qtbot, domains, monkeypatch):
    """`cyclegan-studio A_FOLDER B_FOLDER` opens the window with both folders scanned and chosen."""
    opened: list[MainWindow] = []

    class Recorded(MainWindow):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(gui.app, "MainWindow", Recorded)
    monkeypatch.setattr(QApplication, "exec", lambda *_: 0)
    monkeypatch.setattr(gui.app, "_close_on_sigint", lambda _w: None)
    assert gui.app.main([str(domains[0]), str(domains[1])]) == 0
    (w,) = opened
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: not w.datasets.scanning, timeout=10_000)
    assert w.datasets.paths() == (str(domains[0].resolve()), str(domains[1].resolve()))
    assert w.datasets.ready, w.datasets.problem()


@pytest.mark.slow
def test_smoke_mode_end_to_end(tmp_path):
    """The documented smoke command, as CI runs it: a real process, demo data, training, screenshots."""
    from PIL import Image

    src = tmp_path / "in.png"
    Image.new("RGB", (50, 37), (90, 160, 60)).save(src)
    out = tmp_path / "shot.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "CYCLEGAN_STUDIO_DATA": str(tmp_path / "appdata"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "main.py", "--demo", "--train-steps", "2", "--screenshot", str(out),
                           "--translate", str(src)], cwd=Path(__file__).resolve().parents[2], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(out) as shot, Image.open(tmp_path / "shot-translate.png") as tr:
        assert shot.size[0] >= 1200 and tr.size == shot.size
