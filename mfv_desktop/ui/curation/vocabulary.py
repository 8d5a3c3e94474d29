"""The words the current model knows as one answer token (naming.single_token_words), as a list with a
filter field: in the name dialog (double-click or Enter on a word fills the name) and on its own from
the Scene menu ("Vocabulary…")."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSortFilterProxyModel, QStringListModel, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QListView, QVBoxLayout, QWidget

from mfv_desktop.ui.curation.naming import single_token_words


class _WordList(QListView):
    """Enter on the current word chooses it (and does not reach the dialog's default button)."""

    entered = Signal(str)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.entered.emit(str(self.currentIndex().data()))
            return
        super().keyPressEvent(event)


class VocabularyList(QWidget):
    """A filter field over the model's one-token words (a model's vocabulary can hold 100,000 of
    them: a filtered list model, not one widget per word); `wordChosen` on double-click or Enter."""

    wordChosen = Signal(str)

    def __init__(self, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.words = single_token_words(model)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText(f"search {len(self.words)} words")
        self.filter.setClearButtonEnabled(True)
        self.filter.installEventFilter(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(QStringListModel(self.words, self))
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.list = _WordList(self)
        self.list.setModel(self.proxy)
        self.list.setUniformItemSizes(True)
        self.list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.list.doubleClicked.connect(lambda index: self.wordChosen.emit(str(index.data())))
        self.list.entered.connect(self.wordChosen)
        self.filter.textChanged.connect(self._filtered)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.filter)
        column.addWidget(self.list, 1)
        if not self.words:
            self.filter.setEnabled(False)
            self.filter.setPlaceholderText("this model has no tokenizer file to list words from")

    def _filtered(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self.list.setCurrentIndex(self.proxy.index(0, 0))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter in the filter field moves into the list (its first word current); it is not OK."""
        if (
            watched is self.filter
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            if self.proxy.rowCount():
                self.list.setFocus()
                if not self.list.currentIndex().isValid():
                    self.list.setCurrentIndex(self.proxy.index(0, 0))
            return True
        return super().eventFilter(watched, event)

    def index_of(self, word: str) -> QModelIndex:
        """The shown row of a word (invalid if the filter hides it)."""
        hits = self.proxy.match(self.proxy.index(0, 0), Qt.ItemDataRole.DisplayRole, word, 1, Qt.MatchFlag.MatchExactly)
        return hits[0] if hits else QModelIndex()

    def shown(self) -> list[str]:
        """The words the filter lets through, in order."""
        return [str(self.proxy.index(i, 0).data()) for i in range(self.proxy.rowCount())]


class VocabularyDialog(QDialog):
    """The model's one-token words on their own (Scene > Vocabulary…): a double-click copies a word."""

    def __init__(self, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        short = Path(model).name if any(c in model for c in "/\\") else model
        self.setWindowTitle(f"Words {short} knows")
        self.vocabulary = VocabularyList(model, self)
        self.header = QLabel(self)
        self.header.setWordWrap(True)
        self.header.setText(
            f"The {len(self.vocabulary.words)} words the model <b>{html.escape(model)}</b> reads as one token: "
            "object names from this list can be answers. Double-click a word to copy it."
        )
        self.copied = QLabel(self)
        self.vocabulary.wordChosen.connect(self._copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(self.header)
        column.addWidget(self.vocabulary, 1)
        column.addWidget(self.copied)
        column.addWidget(buttons)
        self.setMinimumWidth(360)
        self.resize(380, 520)

    def _copy(self, word: str) -> None:
        QGuiApplication.clipboard().setText(word)
        self.copied.setText(f"copied {word!r}")
