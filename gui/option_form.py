"""A form built from a plugin's own option descriptions (name, type, default, help).

Sources, gates and marker outputs describe their options as ``compactrig.plugins.sources.base.Option``;
this widget shows one field per option (a check box for yes/no, a line edit otherwise)
with the help as tooltip, and hands back only the values the user changed, so the
plugin's own parsing (``parse_settings``) stays the one place that checks them.
"""

from __future__ import annotations

import json
from typing import Any

from PyQt6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QWidget

from compactrig.plugins.sources.base import Option


class OptionForm(QWidget):
    """One row per option; ``values()`` gives the settings that differ from the defaults."""

    def __init__(self, options: tuple[Option, ...], values: dict[str, Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.options = options
        self.fields: dict[str, QCheckBox | QLineEdit] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if not options:
            layout.addRow(QLabel("no options"))
        for option in options:
            field: QCheckBox | QLineEdit
            if option.kind is bool:
                field = QCheckBox()
                field.setChecked(bool(option.default))
            else:
                field = QLineEdit(str(option.default))
            field.setToolTip(option.help)
            label = QLabel(option.name)
            label.setToolTip(option.help)
            layout.addRow(label, field)
            self.fields[option.name] = field
        self.set_values(values or {})

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (unknown names are left for the plugin to refuse when it starts)."""
        for name, value in values.items():
            field = self.fields.get(name)
            if isinstance(field, QCheckBox):
                field.setChecked(str(value).lower() in ("true", "1", "yes"))
            elif field is not None:  # a table from the rig file as JSON, which the plugin reads back
                field.setText(json.dumps(value) if isinstance(value, (dict, list)) else str(value))

    def values(self) -> dict[str, Any]:
        """Settings whose field differs from the option's default (as typed; the plugin converts)."""
        changed: dict[str, Any] = {}
        for option in self.options:
            field = self.fields[option.name]
            value: bool | str
            default: bool | str
            if isinstance(field, QCheckBox):
                value, default = field.isChecked(), bool(option.default)
            else:
                value, default = field.text().strip(), str(option.default)
            if value != default:
                changed[option.name] = value
        return changed
