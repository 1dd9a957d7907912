"""The main window: lays the panels out and wires them. It trains nothing and loads nothing itself."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.config import Config, ConfigError, preset
from engine.io.run_folder import RunFolder
from engine.training.reports import CheckpointReport, FinishedReport

from .config_form import ConfigForm, RunFolderPicker
from .controls import ControlsPanel
from .datasets import DatasetsPanel
from .distances_panel import DistancesPanel
from .export_dialog import ExportDialog
from .family_panel import FamilyPanel
from .plots import TrainingPlots
from .previews import PreviewPanel
from .runs import CheckpointCheck, RunError, RunInfo, read_run
from .status import StatusPanel, TensorBoardLine, WarningsPanel
from .system_check import SystemCheckDialog
from .training_controller import RunStarted, TrainingController, TrainingJob, default_run_dir
from .translate_panel import TranslatePanel
from .util import app_data_dir, resource, settings, show_error

__all__ = ["MainWindow"]


class MainWindow(QMainWindow):
    def __init__(self, config: Config | None = None, *, persist: bool = True):
        super().__init__()
        self.setWindowTitle("CycleGAN Studio")
        self.setWindowIcon(QIcon(str(resource("icon.svg"))))
        self._persist = persist
        self._close_pending = False
        self._translate_after_save = False
        self._opened_run: str | None = None  # the run opened last (File → Open run…), once its checkpoint checked out
        self._opening: RunInfo | None = None  # the run opened last, while its checkpoint is being checked
        self._export_dialog: ExportDialog | None = None
        self._system_check: SystemCheckDialog | None = None
        store = settings() if persist else None
        config = config or self._saved_config(store) or preset("cpu-quick")

        # --- panels ---
        self.controller = TrainingController(self)
        self.datasets = DatasetsPanel(config)
        self.form = ConfigForm(config)
        self.run_folder = RunFolderPicker(app_data_dir())
        self.form.add_row("output", "Run folder", self.run_folder)
        self.controls = ControlsPanel(self.controller)
        self.plots = TrainingPlots(config)
        self.previews = PreviewPanel()
        self.warnings = WarningsPanel(self.controller)
        self.tensorboard = TensorBoardLine(self.controller)
        self.family = FamilyPanel(self.controller)
        self.run_check = CheckpointCheck(self)
        self.translate = TranslatePanel()
        self.distances = DistancesPanel()
        self.status = StatusPanel(self.controller, self.statusBar())

        # --- layout: sidebar (data + settings) | controls over tabs ---
        side = QWidget()
        side.setObjectName("sidebar")
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(12, 12, 12, 12)
        side_lay.setSpacing(12)
        side_lay.addWidget(self.datasets)
        title = QLabel("Hyperparameters")
        title.setObjectName("panelTitle")
        side_lay.addWidget(title)
        side_lay.addWidget(self.form, 1)
        side_scroll = QScrollArea()
        side_scroll.setObjectName("sidebarScroll")
        side_scroll.setWidget(side)
        side_scroll.setWidgetResizable(True)
        side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side_scroll.setMinimumWidth(360)

        training = QWidget()
        t_lay = QVBoxLayout(training)
        t_lay.setContentsMargins(0, 8, 0, 0)
        t_lay.setSpacing(8)
        t_lay.addWidget(self.warnings)
        t_lay.addWidget(self.tensorboard)
        t_lay.addWidget(self.family)
        self.training_split = QSplitter(Qt.Orientation.Vertical)
        self.training_split.setChildrenCollapsible(False)
        self.training_split.addWidget(self.plots)
        self.training_split.addWidget(self.previews)
        self.training_split.setStretchFactor(0, 3)
        self.training_split.setStretchFactor(1, 1)
        self.training_split.setSizes([540, 230])
        t_lay.addWidget(self.training_split, 1)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self._tab_keys: list[str] = []
        self.add_tab("training", "Training", training)
        self.add_tab("translate", "Translate", self.translate)
        self.add_tab("distances", "Distances", self.distances)

        main = QWidget()
        main.setObjectName("mainArea")
        m_lay = QVBoxLayout(main)
        m_lay.setContentsMargins(12, 12, 12, 6)
        m_lay.setSpacing(8)
        m_lay.addWidget(self.controls)
        m_lay.addWidget(self.tabs, 1)

        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setObjectName("mainSplit")
        self.split.addWidget(side_scroll)
        self.split.addWidget(main)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([400, 1040])
        self.setCentralWidget(self.split)
        self._build_menus()

        # --- wiring ---
        c = self.controller
        c.started.connect(self._on_controller_started)
        c.progressed.connect(self.plots.add_progress)
        c.evaluated.connect(self.plots.add_eval)
        c.previews_ready.connect(self.previews.show_report)
        c.checkpoint_saved.connect(self._on_controller_checkpoint_saved)
        c.finished.connect(self._on_controller_finished)
        c.failed.connect(self._on_controller_failed)
        c.state_changed.connect(self._on_controller_state_changed)
        self.controls.train_requested.connect(self._on_controls_train_requested)
        self.controls.continue_requested.connect(self._on_controls_continue_requested)
        self.form.changed.connect(self._on_form_changed)
        self.family.pin_requested.connect(self._on_family_pin_requested)
        self.datasets.changed.connect(self._update_train_problem)
        self.translate.current_run_requested.connect(self._on_translate_current_run_requested)
        self.run_check.verified.connect(self._on_run_check_verified)
        self.run_check.refused.connect(self._on_run_check_refused)
        self._update_train_problem()
        self.resize(1440, 900)
        if store is not None:
            self._restore(store)

    # --- layout API ----------------------------------------------------------------------------
    def add_tab(self, key: str, title: str, widget: QWidget) -> None:
        """Adding a tab is one line: ``self.add_tab("distances", "Distances", DistancesPanel(...))``."""
        if key in self._tab_keys:
            raise ValueError(f"a tab {key!r} exists already")
        self._tab_keys.append(key)
        self.tabs.addTab(widget, title)

    def show_tab(self, key: str) -> None:
        if key not in self._tab_keys:
            raise KeyError(f"unknown tab {key!r}; tabs: {', '.join(self._tab_keys)}")
        self.tabs.setCurrentIndex(self._tab_keys.index(key))

    @property
    def tab_keys(self) -> list[str]:
        return list(self._tab_keys)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu: QMenu = bar.addMenu("&File")
        self.open_run_action = self._action(self.file_menu, "Open run…", self._on_open_run_triggered,
                                            QKeySequence.StandardKey.Open)
        self.open_model_action = self._action(self.file_menu, "Open model…", self._on_open_model_triggered, "Ctrl+M")
        # Further file actions go between these two separators.
        self.file_menu.addSeparator()
        self.file_actions_end = self.file_menu.addSeparator()
        self.export_model_action = QAction("Export model…", self)
        self.export_model_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_model_action.setToolTip("One direction of the Translate tab's model as safetensors, ONNX or "
                                            "TorchScript")
        self.export_model_action.triggered.connect(self._on_export_model_triggered)
        self.file_menu.insertAction(self.file_actions_end, self.export_model_action)
        self._action(self.file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        self.help_menu: QMenu = bar.addMenu("&Help")
        self.system_check_action = self._action(self.help_menu, "System check…", self._on_system_check_triggered)
        self.system_check_action.setToolTip("What this machine offers the engine, checked by running it "
                                            "(python -m engine doctor)")
        self._action(self.help_menu, "About CycleGAN Studio", self._on_about_triggered)

    def _action(self, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    # --- starting runs -------------------------------------------------------------------------
    def _update_train_problem(self) -> None:
        problem = self.datasets.problem()
        if not self.form.is_valid:
            problem = f"Fix the settings first: {self.form.first_error()}"
        self.controls.set_train_problem(problem)

    def _on_family_pin_requested(self, family: str) -> None:
        self.form.set_values(netG=family)

    def _on_form_changed(self) -> None:
        self._update_train_problem()
        if self.form.is_valid and not self.controller.busy:
            cfg = self.form.config()
            self.plots.set_config(cfg)
            self.datasets.set_config(cfg)

    def _on_controls_train_requested(self) -> None:
        self._update_train_problem()
        problem = self.controls.train_problem
        if problem or self.controller.busy:
            show_error(self, "Cannot start training", problem or "A run is already in progress.")
            return
        run_dir = Path(self.run_folder.path() or default_run_dir(app_data_dir()))
        if RunFolder(run_dir).has_checkpoint():
            show_error(self, "Cannot start training",
                       f"{run_dir} already holds a run. Choose another run folder (or leave it empty for a new "
                       "one), or open it with File → Open run… and press Continue run.")
            return
        config = self.form.config()
        a, b = self.datasets.paths()
        self.plots.reset(config)
        self.previews.clear()
        self.warnings.clear()
        self.controller.start(TrainingJob(str(run_dir), config, a, b))

    def _on_controls_continue_requested(self) -> None:
        run_dir = self.controls.continue_run
        if run_dir is None or self.controller.busy:
            return
        a, b = self.datasets.paths()
        paths_ok = self.datasets.ready
        self.warnings.clear()
        self.controller.start(TrainingJob(run_dir, resume=True, path_a=a if paths_ok else "",
                                          path_b=b if paths_ok else ""))

    # --- reports -------------------------------------------------------------------------------
    def _on_controller_started(self, info: RunStarted) -> None:
        self._opened_run = self._opening = None
        self.plots.truncate_after(info.step)  # a resumed run rewrites what came after its checkpoint
        self.plots.set_config(info.config)
        self.translate.set_current_run_available(True)
        self.setWindowTitle(f"CycleGAN Studio · {Path(info.run_dir).name}")

    def _on_controller_state_changed(self, _state: str) -> None:
        busy = self.controller.busy
        self.form.setEnabled(not busy)
        self.datasets.setEnabled(not busy)
        self.open_run_action.setEnabled(not busy)

    def _on_controller_checkpoint_saved(self, report: CheckpointReport) -> None:
        self.status.show_message(f"Checkpoint saved at step {report.step:,}: {report.path}")
        if self._translate_after_save:
            self._translate_after_save = False
            self.translate.load_model(report.path)

    def _on_controller_finished(self, report: FinishedReport) -> None:
        run_dir = self.controller.run_dir
        resumable = report.reason != "completed" and report.checkpoint is not None
        self.controls.set_continue_run(run_dir if resumable else None)
        if self._translate_after_save and run_dir:
            self._translate_after_save = False
            self.translate.load_model(run_dir)
        if report.reason == "error":
            show_error(self, "Training stopped", report.message or "The run ended with an error.")
        if self._close_pending:
            self.close()

    def _on_controller_failed(self, message: str, details: str) -> None:
        self._translate_after_save = False
        run_dir = self.controller.run_dir
        if run_dir and RunFolder(run_dir).has_checkpoint():
            self.controls.set_continue_run(run_dir)
        if self._close_pending:
            self.close()
            return
        show_error(self, "Training failed", message, details)

    # --- translate -----------------------------------------------------------------------------
    def _on_translate_current_run_requested(self) -> None:
        if self.controller.can_save:
            self._translate_after_save = True
            self.controller.request_save()
            self.status.show_message("Saving a checkpoint for the Translate tab…")
            return
        run_dir = self._opened_run or self.controller.run_dir
        if run_dir:
            self.translate.load_model(run_dir)

    def _on_open_model_triggered(self) -> None:
        self.show_tab("translate")
        self.translate.open_button.click()

    def _on_export_model_triggered(self) -> None:
        model = self.translate.model
        if model is None:
            show_error(self, "No model to export", "Open a model first: File → Open model… (a checkpoint, a run, "
                       "a .safetensors file or a reference .pth), or Translate → Use current run.")
            return
        if self._export_dialog is not None:
            self._export_dialog.wait()
            self._export_dialog.deleteLater()
        self._export_dialog = ExportDialog(model, self)
        self._export_dialog.exported.connect(self._on_export_dialog_exported)
        self._export_dialog.open()

    def _on_export_dialog_exported(self, path: str) -> None:
        self.status.show_message(f"Exported {path}")

    # --- runs ----------------------------------------------------------------------------------
    def _on_open_run_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run folder", str(app_data_dir() / "runs"))
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str) -> bool:
        """Restore a run's config, plots and latest preview; Continue then resumes it."""
        try:
            info = read_run(folder)
        except RunError as e:
            show_error(self, "Cannot open the run", str(e))
            return False
        self.form.set_config(info.config)
        self.plots.reset(info.config)
        self.plots.load_rows(info.rows)
        self.family.show_record(next((r for r in reversed(info.rows) if r.get("type") == "family"), None))
        self.previews.clear()
        if info.preview_path:
            self.previews.show_saved(info.preview_path, info.preview_step)
        if all(info.data_paths):
            self.datasets.set_paths(*info.data_paths)
        # Continue and Use current run wait until the checkpoint has been read the safe way.
        self.controls.set_continue_run(None)
        self._opened_run = None
        self._opening = info if info.has_checkpoint else None
        self.translate.set_current_run_available(False)
        self.tensorboard.show_run(info.run_dir, info.config)
        self.setWindowTitle(f"CycleGAN Studio · {Path(info.run_dir).name}")
        if info.has_checkpoint:
            self.run_check.check(info.run_dir)
            self.status.show_message(f"Opened {info.run_dir} (step {info.last_step:,}) · checking its checkpoint…")
        else:
            self.status.show_message(f"Opened {info.run_dir} (step {info.last_step:,}) · no checkpoint: it cannot "
                                     "be continued")
        return True

    def _on_run_check_verified(self, run_dir: str, step: int) -> None:
        info = self._opening
        if info is None or info.run_dir != run_dir:
            return  # another run was opened meanwhile
        self._opening = None
        self._opened_run = run_dir
        if not self.controller.busy:
            self.controls.set_continue_run(run_dir if info.can_continue else None)
        self.translate.set_current_run_available(True)
        self.status.show_message(f"Opened {run_dir} · checkpoint at step {step:,}")

    def _on_run_check_refused(self, run_dir: str, message: str) -> None:
        if self._opening is None or self._opening.run_dir != run_dir:
            return
        self._opening = None
        self.status.show_message("The run's checkpoint was refused: it cannot be continued or translated with", 0)
        show_error(self, "Cannot use the run's checkpoint", message)

    def _on_system_check_triggered(self) -> None:
        if self._system_check is None:
            self._system_check = SystemCheckDialog(parent=self)
        self._system_check.show()
        self._system_check.raise_()
        if self._system_check.report is None:
            self._system_check.start()  # no-op while it runs

    def _on_about_triggered(self) -> None:
        QMessageBox.about(self, "About CycleGAN Studio",
                          "<h3>CycleGAN Studio</h3><p>Unpaired image-to-image translation (CycleGAN, Zhu et al. "
                          "2017) with live losses, a Wasserstein estimate and previews.</p>"
                          "<p>PySide6 and pyqtgraph over a pure-PyTorch engine.</p>")

    # --- settings and closing ------------------------------------------------------------------
    @staticmethod
    def _saved_config(store) -> Config | None:
        if store is None:
            return None
        text = store.value("config/json", "", str)
        try:
            return Config.from_json(text) if text else None
        except ConfigError:
            return None  # an older or edited settings file: start from the preset

    def _restore(self, store) -> None:
        geometry = store.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        a, b = store.value("data/path_a", "", str), store.value("data/path_b", "", str)
        for name, path in (("A", a), ("B", b)):
            if path and Path(path).is_dir():
                self.datasets.set_path(name, path)

    def _save_settings(self) -> None:
        store = settings()
        store.setValue("window/geometry", self.saveGeometry())
        a, b = self.datasets.paths()
        store.setValue("data/path_a", a)
        store.setValue("data/path_b", b)
        if self.form.is_valid:
            store.setValue("config/json", self.form.config().to_json(indent=None))
        store.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.controller.busy:
            # Stop at the next step; the trainer saves a checkpoint on its way out. The window
            # closes when the thread has been joined (see _on_controller_finished/_failed).
            self._close_pending = True
            self.controller.stop()
            self.status.show_message("Stopping: saving a checkpoint, then closing…", 0)
            event.ignore()
            return
        if self._system_check is not None and self._system_check.busy:
            # Its checks cannot be cut short: close once they are done, without freezing meanwhile.
            self._system_check.done.connect(self.close)
            self.status.show_message("Closing when the system check has finished…", 0)
            event.ignore()
            return
        self.distances.shutdown()
        self.datasets.wait()
        self.translate.shutdown()  # a big image's tiles would otherwise hold the window open
        self.run_check.wait()
        if self._export_dialog is not None:
            self._export_dialog.wait()
        if self._persist:
            self._save_settings()
        super().closeEvent(event)
