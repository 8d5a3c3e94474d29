"""The relation panel: a scene's relation labels, suggestions first; confirm, reject or relabel the
current one with one key. It shows and asks; the window makes the edits (undoable)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.store.scenes import Label
from mfv_desktop.ui.text_colours import MUTED, RIGHT, WARN, pick

STATUS_ORDER = {"suggested": 0, "confirmed": 1, "rejected": 2}
#: a label's status as its text colour: (light theme, dark theme)
STATUS_COLOUR = {"suggested": WARN, "confirmed": RIGHT, "rejected": MUTED}
Triple = tuple[str, str, str]


class RelationPanel(QWidget):
    """Emits what the user asks for; `show_labels` shows a scene's labels."""

    statusRequested = Signal(object, str)  # (subject, relation, object), "confirmed" | "rejected"
    relabelRequested = Signal(object, str)  # (subject, relation, object), new relation
    addRequested = Signal(str, str, str)  # subject, relation, object
    suggestRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.labels: list[Label] = []
        self.objects: list[str] = []
        #: after a confirm, reject or relabel, the next suggestion becomes current
        self._advance = False
        self.vocabulary: list[str] = []
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["subject", "relation", "object", "status"])
        anchor = self.table.horizontalHeaderItem(2)
        if anchor is not None:
            anchor.setToolTip("the anchor: the subject is <relation> of it")
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.keys = QLabel(self)
        self.keys.setWordWrap(True)
        self.keys.setTextFormat(Qt.TextFormat.RichText)
        suggest = QPushButton("Suggest from boxes", self)
        suggest.clicked.connect(self.suggestRequested)
        add = QPushButton("Add relation…", self)
        add.clicked.connect(self.ask_add)
        buttons = QHBoxLayout()
        buttons.addWidget(suggest)
        buttons.addWidget(add)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.keys)

    def set_vocabulary(self, relations: list[str]) -> None:
        """Relations in key order: key 1 is relations[0]."""
        self.vocabulary = relations
        keys = " ".join(f"<b>{i}</b>&nbsp;{r}" for i, r in enumerate(relations[:9], 1))
        self.keys.setText(
            f"{keys}<br><b>Y</b> confirm · <b>X</b> reject · <b>J</b>/<b>K</b> next/previous · "
            "<b>G</b> suggest · <b>A</b> add"
        )

    def _colour_rows(self) -> None:
        for row, lb in enumerate(self.labels):
            brush = QBrush(QColor(pick(STATUS_COLOUR.get(lb.status, MUTED), self.palette())))
            for col in range(self.table.columnCount()):
                item = self.table.item(row, col)
                if item is not None:
                    item.setForeground(brush)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):  # a new theme
            self._colour_rows()

    def show_labels(self, labels: list[Label], objects: list[str]) -> None:
        """Show a scene's labels (suggested first), keeping the current pair selected if it is still there."""
        current = self.current()
        self.objects = objects
        self.labels = sorted(labels, key=lambda lb: (STATUS_ORDER.get(lb.status, 3), lb.id))
        self.table.setRowCount(len(self.labels))
        for row, lb in enumerate(self.labels):
            for col, text in enumerate((lb.subject, lb.relation, lb.object, lb.status)):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self._colour_rows()
        pairs = [(lb.subject, lb.object) for lb in self.labels]
        advance, self._advance = self._advance, False
        if advance and any(lb.status == "suggested" for lb in self.labels):
            self.table.selectRow(0)  # suggestions come first
        elif current is not None and (current[0], current[2]) in pairs:
            self.table.selectRow(pairs.index((current[0], current[2])))
        elif self.labels:
            self.table.selectRow(0)

    def current(self) -> Triple | None:
        row = self.table.currentRow()
        if not 0 <= row < len(self.labels):
            return None
        lb = self.labels[row]
        return lb.subject, lb.relation, lb.object

    def move_selection(self, step: int) -> None:
        """Select the label `step` rows down (up when negative), staying in the table."""
        if self.labels:
            self.table.selectRow(max(0, min(len(self.labels) - 1, self.table.currentRow() + step)))

    def confirm(self) -> None:
        self._status("confirmed")

    def reject(self) -> None:
        self._status("rejected")

    def _status(self, status: str) -> None:
        t = self.current()
        if t is not None:
            self._advance = True
            self.statusRequested.emit(t, status)

    def relation_key(self, n: int) -> None:
        """Key n: the current pair gets the n-th relation, confirmed."""
        t = self.current()
        if t is None or not 1 <= n <= len(self.vocabulary):
            return
        new = self.vocabulary[n - 1]
        self._advance = True
        if new == t[1]:
            self.statusRequested.emit(t, "confirmed")
        else:
            self.relabelRequested.emit(t, new)

    def ask_add(self) -> None:
        if len(self.objects) < 2:
            return
        d = AddRelationDialog(self.objects, self.vocabulary, self)
        if d.exec() == QDialog.DialogCode.Accepted:
            self.addRequested.emit(*d.triple())


class AddRelationDialog(QDialog):
    """subject, relation (any name: typing one adds it to the vocabulary), object."""

    def __init__(self, objects: list[str], relations: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add a relation")
        self.subject, self.object = QComboBox(self), QComboBox(self)
        self.subject.addItems(objects)
        self.object.addItems(objects)
        self.object.setCurrentIndex(1 if len(objects) > 1 else 0)
        self.relation = QComboBox(self)
        self.relation.setEditable(True)
        self.relation.addItems(relations)
        form = QFormLayout(self)
        form.addRow("subject", self.subject)
        form.addRow("is … of", self.relation)
        form.addRow("object (anchor)", self.object)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def triple(self) -> Triple:
        return self.subject.currentText(), self.relation.currentText().strip(), self.object.currentText()
