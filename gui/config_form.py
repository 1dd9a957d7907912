"""The hyperparameter form, generated from ``engine.config.field_specs()``, never field by field.

One collapsible section per group (``GROUP_LABELS``), advanced fields folded into an
"Advanced" part of their group. Every edit is parsed with ``engine.config.parse_value`` and
the whole tree is validated with ``Config.with_values``; a bad value gets a red border and
a message under the field, and ``is_valid`` turns False (which blocks Train).

The fields that give the run's length carry a budget (``FieldSpec.budget``): a "Train for"
choice (epochs, steps or minutes, ``engine.config.BUDGETS``) heads them, and only the chosen
budget's fields show. Choosing another applies ``engine.config.budget_changes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.config import (
    BUDGETS,
    GROUP_LABELS,
    PRESETS,
    Config,
    ConfigError,
    FieldSpec,
    budget_changes,
    budget_of,
    field_specs,
    parse_value,
    preset,
)
from engine.devices import available_devices

from .config_fields import LABEL_WIDTH, ConfigField, Section

__all__ = ["ConfigForm", "RunFolderPicker", "Section"]

CUSTOM = "custom"


class ConfigForm(QWidget):
    """Edits a ``Config``. ``config()`` returns the validated tree or raises ``ConfigError``."""

    changed = Signal()
    validity_changed = Signal(bool)

    def __init__(self, config: Config, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("configForm")
        self._fields: dict[str, ConfigField] = {}
        self._forms: dict[str, QFormLayout] = {}
        self._form_of: dict[str, QFormLayout] = {}
        self._sections: dict[str, Section] = {}
        self._config: Config | None = config
        self._valid = True
        self._loading = False
        self._budget = budget_of(config)
        self._budget_memory: dict[str, Any] = {}  # the last values of budget fields a switch set to 0
        self.budget_box: QComboBox | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset"))
        self.preset_box = QComboBox()
        self.preset_box.setObjectName("presetBox")
        self.preset_box.setToolTip("cpu-quick: small networks that learn visibly within minutes on a CPU.\n"
                                   "paper: the published recipe (Zhu et al. 2017).")
        for name in PRESETS:
            self.preset_box.addItem(name, name)
        self.preset_box.addItem(CUSTOM, CUSTOM)
        self._disable_item(self.preset_box, self.preset_box.count() - 1)
        top.addWidget(self.preset_box, 1)
        outer.addLayout(top)
        self.form_error = QLabel()
        self.form_error.setObjectName("fieldError")
        self.form_error.setWordWrap(True)
        self.form_error.hide()
        outer.addWidget(self.form_error)

        by_group: dict[str, list[FieldSpec]] = {}
        for spec in field_specs():
            by_group.setdefault(spec.group, []).append(spec)
        for group, label in GROUP_LABELS.items():
            section = Section(label, expanded=group in ("objective", "data", "schedule", "output"))
            self._sections[group] = section
            body = QVBoxLayout(section.body)
            body.setContentsMargins(8, 4, 2, 6)
            body.setSpacing(4)
            basic = self._make_form()
            body.addLayout(basic)
            self._forms[group] = basic
            advanced_specs = [s for s in by_group.get(group, []) if s.advanced]
            adv_form = None
            if advanced_specs:
                adv = Section("Advanced", expanded=False, sub=True)
                adv_form = self._make_form()
                adv.body.setLayout(adv_form)
                adv_form.setContentsMargins(8, 2, 0, 2)
                body.addWidget(adv)
            for spec in by_group.get(group, []):
                if spec.budget is not None and self.budget_box is None:
                    basic.addRow(*self._make_budget_row())
                f = ConfigField(spec, self)
                form = adv_form if spec.advanced else basic
                form.addRow(f.label, f.container)
                self._fields[spec.name] = f
                self._form_of[spec.name] = form
                f.connect(self._on_field_edited)
            outer.addWidget(section)
        outer.addStretch(1)

        self._decorate_device_box(self._fields["device"].editor)
        self.preset_box.activated.connect(self._on_preset_box_activated)
        self.set_config(config)

    # --- public API ------------------------------------------------------------------------
    @property
    def is_valid(self) -> bool:
        return self._valid

    def config(self) -> Config:
        if self._config is None:
            raise ConfigError(self.first_error() or "the configuration is invalid")
        return self._config

    def set_config(self, config: Config) -> None:
        self._set_fields(config.flat())

    def set_values(self, **values: Any) -> None:
        """Set some fields as a user would (by their text) and revalidate; "Train for" follows them."""
        self._set_fields(values)

    @property
    def budget(self) -> str:
        """The budget chosen under "Train for" (one of ``engine.config.BUDGETS``)."""
        return self._budget

    def set_budget(self, budget: str) -> None:
        """Choose a budget as a user would under "Train for"."""
        assert self.budget_box is not None
        index = self.budget_box.findData(budget)
        if index < 0:
            raise ValueError(f"unknown budget {budget!r}; budgets: {', '.join(BUDGETS)}")
        self.budget_box.setCurrentIndex(index)
        self.budget_box.activated.emit(index)

    def editor(self, name: str) -> QWidget:
        return self._fields[name].editor

    def is_field_shown(self, name: str) -> bool:
        return self._form_of[name].isRowVisible(self._fields[name].container)

    def errors(self) -> dict[str, str]:
        return {n: f.error.text() for n, f in self._fields.items() if f.error.text()}

    def first_error(self) -> str:
        errs = self.errors()
        if errs:
            return next(iter(errs.values()))
        return self.form_error.text()

    def add_row(self, group: str, label: str, widget: QWidget) -> None:
        """A row that is not a config field (e.g. the run folder), placed in a group's section."""
        self._forms[group].addRow(label, widget)

    # --- internals -------------------------------------------------------------------------
    def _set_fields(self, values: dict[str, Any], *, sync_budget: bool = True) -> None:
        self._loading = True
        try:
            for name, value in values.items():
                self._fields[name].set_value(value)
        finally:
            self._loading = False
        self._validate(sync_budget=sync_budget)

    def _make_budget_row(self) -> tuple[QLabel, QComboBox]:
        """The "Train for" choice, from the budgets and the labels of their fields."""
        box = QComboBox()
        box.setObjectName("budgetBox")
        parts = []
        for budget in BUDGETS:
            box.addItem(budget, budget)
            labels = ", ".join(s.label for s in field_specs() if s.budget == budget)
            parts.append(f"<b>{budget}</b>: {labels}")
        box.setToolTip("How long to train; only the chosen budget's fields show.<br>" + "<br>".join(parts))
        label = QLabel("Train for")
        label.setFixedWidth(LABEL_WIDTH)
        label.setToolTip(box.toolTip())
        box.activated.connect(self._on_budget_box_activated)
        self.budget_box = box
        return label, box

    def _on_budget_box_activated(self, index: int) -> None:
        budget = self.budget_box.itemData(index) if self.budget_box is not None else None
        if budget is None or budget == self._budget:
            return
        values = self._readable_values()
        changes = budget_changes(values, budget, start=self._budget_memory)
        for name, value in changes.items():  # what a switch back should restore
            if not value and values.get(name):
                self._budget_memory[name] = values[name]
        self._budget = budget
        self._set_fields(changes, sync_budget=False)

    def _readable_values(self) -> dict[str, Any]:
        values = {}
        for name, f in self._fields.items():
            try:
                values[name] = parse_value(name, f.text())
            except ConfigError:
                pass
        return values

    @staticmethod
    def _make_form() -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(5)
        return form

    @staticmethod
    def _disable_item(box: QComboBox, index: int, text: str | None = None) -> None:
        model = box.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(index)
            item.setEnabled(False)
            if text:
                item.setText(text)

    def _decorate_device_box(self, box: QComboBox) -> None:
        have = set(available_devices())
        for i in range(box.count()):
            dev = box.itemData(i)
            if dev != "auto" and dev not in have:
                self._disable_item(box, i, f"{dev} (not available)")
        auto = "cuda" if "cuda" in have else "mps" if "mps" in have else "cpu"
        box.setItemText(box.findData("auto"), f"auto ({auto})")

    def _on_field_edited(self, *_: Any) -> None:
        if not self._loading:
            self._validate()

    def _on_preset_box_activated(self, index: int) -> None:
        name = self.preset_box.itemData(index)
        if name in PRESETS:
            self.set_config(preset(name))

    def _validate(self, *, sync_budget: bool = False) -> None:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, f in self._fields.items():
            try:
                values[name] = parse_value(name, f.text())
            except ConfigError as e:
                errors[name] = _plain(str(e))
        if sync_budget:  # fields set by the program: "Train for" shows the budget they make
            self._budget = budget_of(values)
        # The chosen budget must give the run a length (else another budget would be in force).
        mine = [s for s in field_specs() if s.budget == self._budget]
        if not any(s.name in errors for s in mine) and not any(values.get(s.name) for s in mine):
            errors[mine[0].name] = (f"set {' or '.join(s.label for s in mine)} above 0 to train for {self._budget}, "
                                    "or choose another budget under Train for")
        config, form_error = None, ""
        try:
            # Cross-field rules (crop_size vs load_size …) are checked even while another field is
            # unreadable: that field keeps its default for the check.
            config = Config().with_values(values)
        except ConfigError as e:
            if e.field in self._fields:
                errors.setdefault(e.field, _plain(str(e)))
            else:
                form_error = str(e)
        if errors:
            config = None
        for name, f in self._fields.items():
            f.set_error(errors.get(name, ""))
            if name in errors and not self._loading:
                self._reveal(f)
        self.form_error.setText(form_error)
        self.form_error.setVisible(bool(form_error))
        self._config = config
        if self.budget_box is not None:
            self.budget_box.setCurrentIndex(self.budget_box.findData(self._budget))
        self._update_visibility(values.get("gan_mode", self._fields["gan_mode"].text()))
        self._update_preset_box(values if config is not None else None)
        if (config is not None) != self._valid:
            self._valid = config is not None
            self.validity_changed.emit(self._valid)
        self.changed.emit()

    def _reveal(self, f: ConfigField) -> None:
        """Unfold the section (and its Advanced part) holding an invalid field, so its message shows."""
        w = f.container.parentWidget()
        while w is not None and w is not self:
            if isinstance(w, Section) and not w.header.isChecked():
                w.header.setChecked(True)
            w = w.parentWidget()

    def _update_visibility(self, gan_mode: str) -> None:
        """Show the objective-specific fields (``FieldSpec.shown_for``) only under their objectives, and
        the budget fields (``FieldSpec.budget``) only under their budget."""
        for name, f in self._fields.items():
            spec = f.spec
            if spec.shown_for is not None or spec.budget is not None:
                shown = spec.applies_to(gan_mode) and spec.budget in (None, self._budget)
                self._form_of[name].setRowVisible(f.container, shown)

    def _update_preset_box(self, values: dict[str, Any] | None) -> None:
        match = CUSTOM
        if values is not None:
            for name in PRESETS:
                if preset(name).flat() == values:
                    match = name
                    break
        self.preset_box.setCurrentIndex(self.preset_box.findData(match))


def _plain(message: str) -> str:
    """'lr='abc' is not allowed: lr must be a number' → 'lr must be a number' (the field is already named)."""
    _, sep, rest = message.partition(": ")
    return rest if sep else message


class RunFolderPicker(QWidget):
    """The run folder: empty means a fresh ``<data dir>/runs/<timestamp>`` at each Train."""

    changed = Signal()

    def __init__(self, default_root: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.default_root = default_root
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.edit = QLineEdit()
        self.edit.setObjectName("runFolderEdit")
        self.edit.setPlaceholderText("automatic: runs/<date-time>")
        self.edit.setToolTip(f"Where checkpoints, previews and metrics go.\nEmpty: a new folder under "
                             f"{default_root / 'runs'} for each run.")
        self.browse = QPushButton("Browse…")
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.browse)
        self.browse.clicked.connect(self._on_browse_clicked)
        self.edit.textChanged.connect(self.changed)

    def path(self) -> str:
        return self.edit.text().strip()

    def set_path(self, path: str) -> None:
        self.edit.setText(path)

    def _on_browse_clicked(self) -> None:
        start = self.path() or str(self.default_root / "runs")
        folder = QFileDialog.getExistingDirectory(self, "Run folder", start)
        if folder:
            self.edit.setText(folder)
