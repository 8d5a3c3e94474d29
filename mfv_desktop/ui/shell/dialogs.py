"""Small dialogs: naming an object (with the single-token check inline), generating scenes, the log."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.jobs import GenerateSpec
from mfv_desktop.logs import log_file, tail
from mfv_desktop.ui.curation.naming import check_name


class NameDialog(QDialog):
    """An object's name, completed from the names the store knows, checked as you type."""

    def __init__(self, known: list[str], model: str, current: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Name the object")
        self.model = model
        self.edit = QLineEdit(current, self)
        completer = QCompleter(sorted(set(known)), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.edit.setCompleter(completer)
        self.check = QLabel(self)
        self.check.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("name", self.edit)
        form.addRow(self.check)
        form.addRow(self.buttons)
        self.edit.textChanged.connect(self._checked)
        self._checked(current)

    def _checked(self, text: str) -> None:
        ok, msg = check_name(text.strip(), self.model) if text.strip() else (False, "type a one-word name")
        one_word = ok or "token" in msg or "vocabulary" in msg
        colour = "#1b7a2f" if ok else ("#b36b00" if one_word else "#b00020")
        self.check.setText(f"<span style='color:{colour}'>{msg}</span>")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(one_word)

    @classmethod
    def ask(cls, parent: QWidget, known: list[str], model: str, current: str = "") -> str | None:
        d = cls(known, model, current, parent)
        return d.edit.text().strip() if d.exec() == QDialog.DialogCode.Accepted else None


class GenerateDialog(QDialog):
    """The generator's settings: the paper's layout, diagonal mode, counts, seed, object kinds."""

    def __init__(self, parent: QWidget | None = None, dataset: str = "generated"):
        super().__init__(parent)
        self.setWindowTitle("Generate scenes")
        form = QFormLayout(self)
        self.dataset = QLineEdit(dataset, self)
        self.n = QSpinBox(self)
        self.n.setRange(1, 100_000)
        self.n.setValue(200)
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.canvas = QSpinBox(self)
        self.canvas.setRange(128, 2048)
        self.canvas.setValue(800)
        self.split = QLineEdit("train", self)
        self.diagonal = QCheckBox("neighbours at the anchor's corners (composite relations)", self)
        self.novel = QCheckBox("held-out object kinds (the novel-objects split)", self)
        self.kinds = QLineEdit(self)
        self.kinds.setPlaceholderText("all training kinds; or e.g. apple,cup,key,car,hat,moon")
        for label, w in (
            ("data set", self.dataset),
            ("scenes", self.n),
            ("seed", self.seed),
            ("canvas (px)", self.canvas),
            ("split", self.split),
            ("", self.diagonal),
            ("", self.novel),
            ("object kinds", self.kinds),
        ):
            form.addRow(label, w)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def spec(self) -> GenerateSpec:
        kinds = tuple(k.strip() for k in self.kinds.text().split(",") if k.strip())
        return GenerateSpec(
            n_scenes=self.n.value(),
            seed=self.seed.value(),
            split=self.split.text().strip() or "train",
            diagonal=self.diagonal.isChecked(),
            novel=self.novel.isChecked(),
            kinds=kinds,
            canvas=self.canvas.value(),
        )


class LogDialog(QDialog):
    """The end of the app's log file (jobs, errors with their tracebacks), and where it is."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Log")
        self.path = log_file()
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        where = QLabel(f"{self.path}", self)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        reload = buttons.addButton("Reload", QDialogButtonBox.ButtonRole.ActionRole)
        reload.clicked.connect(self.reload)
        folder = buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        folder.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path.parent))))
        layout = QVBoxLayout(self)
        layout.addWidget(where)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(900, 520)
        self.reload()

    def reload(self) -> None:
        self.text.setPlainText(tail(self.path))
        self.text.moveCursor(QTextCursor.MoveOperation.End)
