"""The widgets the hyperparameter form is built from: a field's editor (from its ``FieldSpec``) with
its label and error line, and a foldable section. No knowledge of the form's rules: ``ConfigForm``
validates; a field only shows what it is told."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from engine.config import FieldSpec

__all__ = ["ConfigField", "Section", "format_value", "LABEL_WIDTH"]

LABEL_WIDTH = 150


def format_value(value: Any) -> str:
    """The text a field shows; parse_value(format_value(v)) == v (repr is float's shortest round-trip)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _repolish(w: QWidget) -> None:
    w.style().unpolish(w)
    w.style().polish(w)


class Section(QWidget):
    """A header button that folds its content away."""

    def __init__(self, title: str, expanded: bool = True, parent: QWidget | None = None, *, sub: bool = False):
        super().__init__(parent)
        self.header = QToolButton(self)
        self.header.setObjectName("subSectionHeader" if sub else "sectionHeader")
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.body = QWidget(self)
        self.body.setObjectName("sectionBody")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.header)
        lay.addWidget(self.body)
        self.header.toggled.connect(self._on_header_toggled)
        self._on_header_toggled(expanded)

    def _on_header_toggled(self, on: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)


class ConfigField:
    """One editor with its error line. ``text()`` is what parse_value reads."""

    def __init__(self, spec: FieldSpec, parent: QWidget):
        self.spec = spec
        self.container = QWidget(parent)
        lay = QVBoxLayout(self.container)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        if spec.choices is not None:
            self.editor: QWidget = QComboBox()
            for c in spec.choices:
                self.editor.addItem(str(c), c)
        elif spec.type is bool:
            self.editor = QCheckBox()
        else:
            self.editor = QLineEdit()
            self.editor.setPlaceholderText(format_value(spec.default))
        self.editor.setObjectName(f"field_{spec.name}")
        lay.addWidget(self.editor)
        self.error = QLabel(self.container)
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        lay.addWidget(self.error)
        unit = f" ({spec.unit})" if spec.unit else ""
        self.label = QLabel(spec.label + unit)
        self.label.setWordWrap(True)
        self.label.setFixedWidth(LABEL_WIDTH)  # one label column for every section
        tip = (f"<b>{spec.label}</b> &nbsp;<code>{spec.name}</code><br>{spec.help}"
               f"<br><i>Allowed: {spec.describe_allowed()}{unit}. Default: {format_value(spec.default)}.</i>")
        for w in (self.label, self.editor):
            w.setToolTip(tip)

    def connect(self, slot) -> None:
        e = self.editor
        if isinstance(e, QComboBox):
            e.currentIndexChanged.connect(slot)
        elif isinstance(e, QCheckBox):
            e.toggled.connect(slot)
        else:
            e.textChanged.connect(slot)

    def text(self) -> str:
        e = self.editor
        if isinstance(e, QComboBox):
            return str(e.currentData())
        if isinstance(e, QCheckBox):
            return "true" if e.isChecked() else "false"
        return e.text()

    def set_value(self, value: Any) -> None:
        e = self.editor
        if isinstance(e, QComboBox):
            e.setCurrentIndex(e.findData(value))
        elif isinstance(e, QCheckBox):
            e.setChecked(bool(value))
        else:
            e.setText(format_value(value))

    def set_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))
        if self.editor.property("invalid") != bool(message):
            self.editor.setProperty("invalid", bool(message))
            _repolish(self.editor)
