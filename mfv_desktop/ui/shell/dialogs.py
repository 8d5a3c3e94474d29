"""Small dialogs: naming an object (with the single-token check inline), generating scenes, the log."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, QRect, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication, QKeyEvent, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.jobs import GenerateSpec
from mfv_desktop.logs import log_file, tail
from mfv_desktop.ui.curation.naming import check_name
from mfv_desktop.ui.curation.vocabulary import VocabularyList
from mfv_desktop.ui.text_colours import RIGHT, WARN, WRONG, pick

#: the single-token check's width: its longest message wraps to a few lines, never cut off
CHECK_WIDTH = 380


def plural(n: int, word: str) -> str:
    """'1 scene', '2 scenes', '1,200 images'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


class NameDialog(QDialog):
    """An object's name, completed from the names the store knows, checked as you type, with the words
    the model knows as one token beside it. Return is OK: it takes the text as typed, or the
    completion the user moved to in the completer's popup. Placed beside `near` (a global screen
    rectangle: the box just drawn) when given."""

    def __init__(
        self,
        known: list[str],
        model: str,
        current: str = "",
        parent: QWidget | None = None,
        near: QRect | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Name the object")
        self.model = model
        self.near = near
        self.edit = QLineEdit(current, self)
        self.edit.setPlaceholderText("one word, e.g. cup")
        completer = QCompleter(sorted(set(known)), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.edit.setCompleter(completer)
        popup = completer.popup()
        assert popup is not None  # a completer makes its popup when asked
        self.popup = popup
        popup.installEventFilter(self)  # after the completer's own filter: this one runs first
        self.check = QLabel(self)
        self.check.setWordWrap(True)
        self.check.setMinimumWidth(CHECK_WIDTH)
        self.check.setTextFormat(Qt.TextFormat.RichText)
        self.vocabulary = VocabularyList(model, self)
        self.vocabulary.wordChosen.connect(self._word_chosen)
        words = QLabel(f"Words the model knows as one token ({len(self.vocabulary.words)}):", self)
        words.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(QLabel("Name", self))
        column.addWidget(self.edit)
        column.addWidget(self.check)
        column.addSpacing(6)
        column.addWidget(words)
        column.addWidget(self.vocabulary, 1)
        column.addWidget(self.buttons)
        self.edit.textChanged.connect(self._checked)
        self._checked(current)
        self.resize(self.sizeHint().width(), 420)
        self.edit.setFocus()

    def name(self) -> str:
        return self.edit.text().strip()

    def _ok(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def _checked(self, text: str) -> None:
        ok, msg = check_name(text.strip(), self.model) if text.strip() else (False, "type a one-word name")
        one_word = ok or "token" in msg or "vocabulary" in msg
        colour = pick(RIGHT if ok else (WARN if one_word else WRONG), self.palette())
        self.check.setText(f"<span style='color:{colour}'>{html.escape(msg)}</span>")
        self._ok().setEnabled(one_word)
        self._fit()

    def _fit(self) -> None:
        """Grow the dialog when the message wraps to more lines than it has room for (a top-level
        window does not follow its label's height-for-width by itself)."""
        layout = self.layout()
        if layout is None or not self.isVisible():
            return
        layout.activate()
        short = self.check.heightForWidth(self.check.width()) - self.check.height()
        if short > 0:
            self.resize(self.width(), self.height() + short)
            layout.activate()

    def _word_chosen(self, word: str) -> None:
        self.edit.setText(word)
        self.edit.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Return or Enter in the completer's popup is OK, not only "close the popup"."""
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            popup = self.popup
            if watched is popup:
                index = popup.currentIndex()
                if index.isValid():  # the user moved into the popup: that completion
                    self.edit.setText(str(index.data()))
                popup.hide()
                if self._ok().isEnabled():
                    self.accept()
                return True
        return super().eventFilter(watched, event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.near is not None:
            place_beside(self, self.near)
        self._fit()

    @classmethod
    def ask(
        cls, parent: QWidget, known: list[str], model: str, current: str = "", near: QRect | None = None
    ) -> str | None:
        d = cls(known, model, current, parent, near)
        return d.name() if d.exec() == QDialog.DialogCode.Accepted else None


def place_beside(window: QWidget, rect: QRect, gap: int = 12) -> None:
    """Move a top-level window beside `rect` (global coordinates): on its right, else its left, else
    below or above it, always on the screen that shows the rectangle."""
    screen = QGuiApplication.screenAt(rect.center()) or window.screen() or QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    frame = window.frameGeometry()  # move() places the frame
    w, h = frame.width(), frame.height()

    def clamp(v: int, lo: int, hi: int) -> int:
        return max(lo, min(v, max(lo, hi)))

    top = clamp(rect.top(), area.top(), area.bottom() + 1 - h)
    left = clamp(rect.left(), area.left(), area.right() + 1 - w)
    spots = [
        (rect.right() + 1 + gap, top),
        (rect.left() - gap - w, top),
        (left, rect.bottom() + 1 + gap),
        (left, rect.top() - gap - h),
    ]
    fits = [(x, y) for x, y in spots if area.contains(QRect(x, y, w, h))]
    if fits:
        x, y = fits[0]
    else:  # no room anywhere: the side with more of it, on the screen
        x, y = spots[0] if area.right() - rect.right() >= rect.left() - area.left() else spots[1]
        x = clamp(x, area.left(), area.right() + 1 - w)
    window.move(x, y)


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
