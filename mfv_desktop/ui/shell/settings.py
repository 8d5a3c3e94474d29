"""Settings: data folder, model, device, dtype, theme and shortcuts, kept in QSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QKeySequenceEdit,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.backends.registry import FAMILIES
from mfv_desktop.ui.shell.actions import SPECS, Actions

DEFAULTS = {"data_dir": "", "model": "bundled", "device": "cpu", "dtype": "fp32", "theme": "system"}


def app_settings(path: str | Path | None = None) -> QSettings:
    """The user's settings, or an INI file (tests and scripts use their own)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("mfv_desktop", "mfv_desktop")


def get(settings: QSettings, key: str) -> str:
    return str(settings.value(key, DEFAULTS[key]))


#: the dark theme: (role, active colour, disabled colour). Disabled text is dimmed, not hidden: a
#: disabled button must look disabled, and placeholder text must stay readable on a text field
DARK = (
    (QPalette.ColorRole.Window, "#2b2b2b", "#2b2b2b"),
    (QPalette.ColorRole.WindowText, "#e6e6e6", "#7a7a7a"),
    (QPalette.ColorRole.Base, "#1f1f1f", "#262626"),
    (QPalette.ColorRole.AlternateBase, "#2b2b2b", "#2b2b2b"),
    (QPalette.ColorRole.Text, "#e6e6e6", "#7a7a7a"),
    (QPalette.ColorRole.Button, "#353535", "#2e2e2e"),
    (QPalette.ColorRole.ButtonText, "#e6e6e6", "#7a7a7a"),
    (QPalette.ColorRole.BrightText, "#ff6b6b", "#ff6b6b"),
    (QPalette.ColorRole.Highlight, "#3d6fb4", "#3a3a3a"),
    (QPalette.ColorRole.HighlightedText, "#ffffff", "#9a9a9a"),
    (QPalette.ColorRole.ToolTipBase, "#353535", "#353535"),
    (QPalette.ColorRole.ToolTipText, "#e6e6e6", "#e6e6e6"),
    (QPalette.ColorRole.PlaceholderText, "#9a9a9a", "#6a6a6a"),
    (QPalette.ColorRole.Link, "#7fb0ff", "#6a6a6a"),
    (QPalette.ColorRole.LinkVisited, "#c39bff", "#6a6a6a"),
    (QPalette.ColorRole.Light, "#4a4a4a", "#4a4a4a"),
    (QPalette.ColorRole.Midlight, "#3f3f3f", "#3f3f3f"),
    (QPalette.ColorRole.Mid, "#2f2f2f", "#2f2f2f"),
    (QPalette.ColorRole.Dark, "#1a1a1a", "#1a1a1a"),
    (QPalette.ColorRole.Shadow, "#0f0f0f", "#0f0f0f"),
)


def dark_palette() -> QPalette:
    p = QPalette()
    for role, active, disabled in DARK:
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            p.setColor(group, role, QColor(active))
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return p


def apply_theme(theme: str) -> None:
    """The app's palette for a theme; widgets and plots (ui/plot_theme.py) follow it at once."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):  # none yet (or a console application: no style to set)
        return
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if theme == "dark" else app.style().standardPalette())


class SettingsDialog(QDialog):
    def __init__(self, settings: QSettings, actions: Actions, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings, self.shortcuts = settings, actions
        self.setWindowTitle("Settings")
        tabs = QTabWidget(self)

        general = QWidget()
        form = QFormLayout(general)
        self.data_dir = QLineEdit(get(settings, "data_dir"))
        self.data_dir.setPlaceholderText("the default per-user data folder")
        form.addRow("Data folder (after a restart)", self._with_browse(self.data_dir, folder=True))
        self.model = QComboBox()
        self.model.setEditable(True)
        tiny = ", ".join(f.tiny_ref for f in FAMILIES.values())
        self.model.addItems(["bundled", *(f.tiny_ref for f in FAMILIES.values())])
        self.model.setCurrentText(get(settings, "model"))
        self.model.setToolTip(
            f"'bundled', a tiny random model ({tiny}) or a model folder of any family this app "
            f"knows ({', '.join(FAMILIES)}); Model > Model manager checks it"
        )
        model_edit = self.model.lineEdit()
        assert model_edit is not None  # the combo box is editable
        form.addRow("Model", self._with_browse(model_edit, folder=True))
        self.device = QComboBox()
        self.device.addItems(["cpu", "cuda", "mps", "auto"])
        self.device.setCurrentText(get(settings, "device"))
        form.addRow("Device", self.device)
        self.dtype = QComboBox()
        self.dtype.addItems(["fp32", "bf16", "fp16", "auto"])
        self.dtype.setCurrentText(get(settings, "dtype"))
        form.addRow("Precision", self.dtype)
        self.theme = QComboBox()
        self.theme.addItems(["system", "light", "dark"])
        self.theme.setCurrentText(get(settings, "theme"))
        form.addRow("Theme", self.theme)
        tabs.addTab(general, "General")

        self.keys = QTableWidget(len(SPECS), 2)
        self.keys.setHorizontalHeaderLabels(["action", "keys"])
        self.editors: dict[str, QKeySequenceEdit] = {}
        for row, spec in enumerate(SPECS):
            self.keys.setItem(
                row, 0, QTableWidgetItem(f"{spec.menu.replace('&', '').replace('/', ' > ')}: {spec.text}")
            )
            ed = QKeySequenceEdit(QKeySequence(actions.shortcut(spec.id)))
            self.keys.setCellWidget(row, 1, ed)
            self.editors[spec.id] = ed
        self.keys.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.keys.verticalHeader().hide()
        tabs.addTab(self.keys, "Shortcuts")

        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(box)
        self.resize(560, 520)

    def _with_browse(self, edit: QLineEdit, folder: bool) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit)
        b = QPushButton("Browse…")
        b.clicked.connect(
            lambda: edit.setText(QFileDialog.getExistingDirectory(self, "Choose a folder") or edit.text())
        )
        row.addWidget(b)
        return w

    def accept(self) -> None:
        for key, value in (
            ("data_dir", self.data_dir.text().strip()),
            ("model", self.model.currentText().strip()),
            ("device", self.device.currentText()),
            ("dtype", self.dtype.currentText()),
            ("theme", self.theme.currentText()),
        ):
            self.settings.setValue(key, value)
        for action_id, ed in self.editors.items():
            keys = ed.keySequence().toString()
            if keys != self.shortcuts.shortcut(action_id):
                self.shortcuts.set_shortcut(action_id, keys)
        apply_theme(self.theme.currentText())
        super().accept()
