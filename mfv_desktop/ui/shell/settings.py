"""Settings: data folder, model, device, dtype, theme, where jobs compute and shortcuts, kept in QSettings."""

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
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.backends.registry import FAMILIES
from mfv_desktop.compute import RAY_MISSING, Compute, ray_available
from mfv_desktop.ui.shell.actions import SPECS, Actions

DEFAULTS = {
    "data_dir": "",
    "model": "bundled",
    "device": "cpu",
    "dtype": "fp32",
    "theme": "system",
    "compute/executor": "local",
    "compute/address": "",
    "compute/workers": "0",
}
#: Settings > Compute: (what the user picks, the executor, whether it joins a cluster at an address)
COMPUTE_CHOICES = (
    ("This process", "local", False),
    ("Ray on this machine: a worker per GPU (or per CPU for a model on the CPU)", "ray", False),
    ("Ray cluster at an address", "ray", True),
)


def app_settings(path: str | Path | None = None) -> QSettings:
    """The user's settings, or an INI file (tests and scripts use their own)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("mfv_desktop", "mfv_desktop")


def get(settings: QSettings, key: str) -> str:
    return str(settings.value(key, DEFAULTS[key]))


def compute_of(settings: QSettings) -> Compute:
    """Where the app's long jobs compute (Settings > Compute); a damaged setting: this process."""
    address = get(settings, "compute/address").strip() or None
    try:
        workers = int(get(settings, "compute/workers")) or None
        return Compute(get(settings, "compute/executor"), address, workers)  # type: ignore[arg-type]
    except ValueError:
        return Compute()


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
        tabs.addTab(self._compute_tab(), "Compute")

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

    def _compute_tab(self) -> QWidget:
        """Where AIE, previews, sweeps, evaluations and reports compute; fine-tuning stays here."""
        tab = QWidget()
        form = QFormLayout(tab)
        current = compute_of(self.settings)
        self.executor = QComboBox()
        for text, *_ in COMPUTE_CHOICES:
            self.executor.addItem(text)
        self.executor.setCurrentIndex(2 if current.address else (1 if current.executor == "ray" else 0))
        form.addRow("Long jobs run in", self.executor)
        self.address = QLineEdit(current.address or "")
        self.address.setPlaceholderText("auto, or HOST:PORT of the Ray head (e.g. 10.0.0.5:6379)")
        form.addRow("Cluster address", self.address)
        self.workers = QSpinBox()
        self.workers.setRange(0, 1024)
        self.workers.setSpecialValueText("one per GPU or CPU")
        self.workers.setValue(current.workers or 0)
        form.addRow("Workers", self.workers)
        self.compute_note = QLabel()
        self.compute_note.setWordWrap(True)
        form.addRow(self.compute_note)
        self.executor.currentIndexChanged.connect(self._compute_changed)
        self._compute_changed()
        return tab

    def _compute_changed(self) -> None:
        _, executor, at_address = COMPUTE_CHOICES[self.executor.currentIndex()]
        self.address.setEnabled(at_address)
        self.workers.setEnabled(executor == "ray")
        if executor == "ray" and not ray_available():
            note = RAY_MISSING[0].upper() + RAY_MISSING[1:] + "."
        elif executor == "ray":
            note = (
                "Each worker loads the model from the same path as here (a shared folder on a cluster) and checks "
                "its files by hash. Results are the same as in this process; fine-tuning always runs here."
            )
        else:
            note = "Jobs run in this process, one batch after another."
        self.compute_note.setText(note)

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
            ("compute/executor", COMPUTE_CHOICES[self.executor.currentIndex()][1]),
            (
                "compute/address",
                (self.address.text().strip() or "auto") if COMPUTE_CHOICES[self.executor.currentIndex()][2] else "",
            ),
            ("compute/workers", str(self.workers.value())),
        ):
            self.settings.setValue(key, value)
        for action_id, ed in self.editors.items():
            keys = ed.keySequence().toString()
            if keys != self.shortcuts.shortcut(action_id):
                self.shortcuts.set_shortcut(action_id, keys)
        apply_theme(self.theme.currentText())
        super().accept()
