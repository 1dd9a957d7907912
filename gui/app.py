"""``python main.py`` / ``cyclegan-studio``: the application, and its smoke mode for people and CI.

    python main.py --demo --train-steps 60 --screenshot shot.png [--translate in.png] [--tab translate]

opens the real window, selects the demo dataset, trains N steps with the cpu-quick preset,
waits until the plots and previews show that run, saves a screenshot of the window and exits
0 (non-zero on a timeout or a failed run). ``--translate FILE`` also drops FILE on the
Translate tab and saves that tab to ``shot-translate.png``. ``--tab distances`` trains a
short critic on the Distances tab first, so the screenshot shows its dual curve and heatmap::

    python main.py --tab distances --screenshot distances.png
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from .main_window import MainWindow
from .smoke import SmokeRun
from .util import APPLICATION, ORGANISATION, RESOURCES, resource

__all__ = ["main", "build_parser", "configure_app"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclegan-studio", description="CycleGAN Studio: unpaired image-to-image "
                                "translation with live plots and previews.")
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="open with these folders chosen: A_FOLDER B_FOLDER (domain A, then domain B)")
    p.add_argument("--demo", action="store_true", help="select the built-in demo dataset (generated on first use)")
    p.add_argument("--train-steps", type=int, metavar="N",
                   help="smoke mode: train N steps with the cpu-quick preset, then exit")
    p.add_argument("--screenshot", metavar="OUT.png", help="smoke mode: save a screenshot of the window, then exit")
    p.add_argument("--translate", metavar="FILE",
                   help="smoke mode: also translate FILE on the Translate tab and save OUT-translate.png")
    p.add_argument("--tab", metavar="NAME",
                   help="the tab to show: training, translate or distances (smoke mode: distances trains a short "
                        "critic before the screenshot)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="smoke mode: give up (exit 3) after this many seconds (default 900)")
    return p


def _palette() -> QPalette:
    pal = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#1b1e24", QPalette.ColorRole.WindowText: "#d7dce4",
        QPalette.ColorRole.Base: "#14161b", QPalette.ColorRole.AlternateBase: "#1f2329",
        QPalette.ColorRole.ToolTipBase: "#262b33", QPalette.ColorRole.ToolTipText: "#e6eaf0",
        QPalette.ColorRole.Text: "#d7dce4", QPalette.ColorRole.Button: "#262b33",
        QPalette.ColorRole.ButtonText: "#d7dce4", QPalette.ColorRole.Highlight: "#3d6fe0",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#6ea0ff",
        QPalette.ColorRole.PlaceholderText: "#6b7380",
    }
    for role, color in colors.items():
        pal.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c6370"))
    return pal


def configure_app(app: QApplication) -> None:
    """Names (for QSettings and QStandardPaths), the dark theme and the icon."""
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setWindowIcon(QIcon(str(resource("icon.svg"))))
    app.setStyle("Fusion")
    app.setPalette(_palette())
    qss = resource("style.qss")
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8").replace("@RESOURCES@", RESOURCES.as_posix()))
    pg.setConfigOptions(antialias=True, background="#16181d", foreground="#9aa3b2")


def _close_on_sigint(window) -> None:
    """Ctrl+C in the terminal closes the window the normal way (stop, save, join)."""
    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)  # lets the Python interpreter run its signal handlers now and then
    timer.timeout.connect(lambda: None)
    timer.start(250)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    smoke = args.train_steps is not None or args.screenshot is not None
    if args.translate and not args.screenshot:
        parser.error("--translate needs --screenshot (it saves OUT-translate.png)")
    if args.train_steps is not None and args.train_steps < 1:
        parser.error("--train-steps must be at least 1")
    if len(args.folders) not in (0, 2):
        parser.error("give two folders, A_FOLDER B_FOLDER (domain A, then domain B), or none")
    if args.folders and args.demo:
        parser.error("choose either two folders or --demo, not both")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = QApplication.instance() or QApplication([sys.argv[0]])
    configure_app(app)

    args.folders = [str(Path(f).expanduser().resolve()) for f in args.folders]
    window = MainWindow(persist=not smoke)  # smoke runs leave the user's settings alone
    if args.tab and args.tab not in window.tab_keys:
        parser.error(f"unknown tab {args.tab!r}; tabs: {', '.join(window.tab_keys)}")
    if smoke:
        return SmokeRun(window, args).exec()
    _close_on_sigint(window)
    window.show()
    if args.tab:
        window.show_tab(args.tab)
    if args.demo:
        window.datasets.use_demo()
    elif args.folders:
        window.datasets.set_paths(*args.folders)
    return app.exec()
