"""A checkable list of the store's function vectors (newest first), for the panels that apply or
compose them. It reloads when the window's vectors change and keeps what was checked; a click
anywhere on a row checks or unchecks it. Jobs get the checked vectors as `vector:ID` references."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.store import vectors as vrepo
from mfv_desktop.ui.shell.context import AppContext

COLUMNS = ("", "id", "label", "relation", "kind", "layer", "strength")


class VectorPicker(QWidget):
    #: the checked vectors changed
    checkedChanged = Signal()
    #: rows shown without scrolling
    MAX_ROWS = 6

    def __init__(
        self,
        ctx: AppContext,
        parent: QWidget | None = None,
        default: Callable[[list[dict[str, Any]]], Iterable[int]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        #: which vectors to check until the user picks (new vectors may change the default), and when
        #: the checked ones are gone
        self.default = default
        self.user_picked = False
        self.rows: list[dict[str, Any]] = []
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.tree.setAlternatingRowColors(True)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.tree.header()
        header.setMinimumSectionSize(18)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)  # the label takes what is left
        header.setStretchLastSection(False)
        self.empty = QLabel(
            "No function vectors in the store yet: build one on the AIE tab, or import one (Vectors dock)."
        )
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #666;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty)
        self._loading = False
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemClicked.connect(self._clicked)
        ctx.vectorsChanged.connect(self.reload)
        self.reload()

    # -- the list ----------------------------------------------------------------------------------
    def reload(self) -> None:
        keep = set(self.checked_ids())
        self.rows = vrepo.list_vectors(self.ctx.store)
        known = {v["id"] for v in self.rows}
        keep &= known
        if (not keep or not self.user_picked) and self.default is not None:
            keep = set(self.default(self.rows)) & known
        self._loading = True
        self.tree.clear()
        for v in self.rows:
            item = QTreeWidgetItem(
                ["", str(v["id"]), v["label"], v["relation"], v["kind"], str(v["layer"]), f"{v['strength']:g}"]
            )
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if v["id"] in keep else Qt.CheckState.Unchecked)
            item.setData(0, Qt.ItemDataRole.UserRole, v["id"])
            tip = f"{v['label']}\nmodel {v['model_id']} · {v['hook_point']} · layer {v['layer']} of {v['n_layers']}"
            for c in range(len(COLUMNS)):
                item.setToolTip(c, tip)
            self.tree.addTopLevelItem(item)
        self._loading = False
        self.empty.setVisible(not self.rows)
        self.tree.setVisible(bool(self.rows))
        self._fit_height()
        self.checkedChanged.emit()

    def _fit_height(self) -> None:
        """As tall as its rows (3 to MAX_ROWS of them): no empty list taking the panel's room."""
        row_h = self.tree.sizeHintForRow(0) if self.rows else self.fontMetrics().height() + 6
        n = min(max(len(self.rows), 3), self.MAX_ROWS)
        frame = 2 * self.tree.frameWidth() + self.tree.header().sizeHint().height() + 2
        self.tree.setMinimumHeight(frame + 2 * max(row_h, 1))  # it shrinks to two rows, and scrolls
        self.tree.setMaximumHeight(frame + n * max(row_h, 1))

    def _items(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    def _item_changed(self, _item: QTreeWidgetItem, column: int) -> None:
        if column == 0 and not self._loading:
            self.user_picked = True
            self.checkedChanged.emit()

    def _clicked(self, item: QTreeWidgetItem, column: int) -> None:
        """A click on a row (not on its check box, which toggles by itself) toggles it too."""
        if column != 0:
            item.setCheckState(
                0, Qt.CheckState.Unchecked if item.checkState(0) == Qt.CheckState.Checked else Qt.CheckState.Checked
            )

    # -- what is checked ---------------------------------------------------------------------------
    def checked_ids(self) -> list[int]:
        return [
            int(it.data(0, Qt.ItemDataRole.UserRole))
            for it in self._items()
            if it.checkState(0) == Qt.CheckState.Checked
        ]

    def checked_refs(self) -> list[str]:
        """The checked vectors as job inputs: ["vector:3", ...]."""
        return [f"vector:{i}" for i in self.checked_ids()]

    def checked_rows(self) -> list[dict[str, Any]]:
        ids = set(self.checked_ids())
        return [v for v in self.rows if v["id"] in ids]

    def check(self, ids: Iterable[int]) -> None:
        """Check exactly these vectors."""
        ids = set(ids)
        self.user_picked = True
        self._loading = True
        for it in self._items():
            it.setCheckState(
                0, Qt.CheckState.Checked if it.data(0, Qt.ItemDataRole.UserRole) in ids else Qt.CheckState.Unchecked
            )
        self._loading = False
        self.checkedChanged.emit()

    def row_rect(self, vector_id: int):
        """Where a vector's row is on the list's viewport (its label cell): for pointing at it."""
        for it in self._items():
            if it.data(0, Qt.ItemDataRole.UserRole) == vector_id:
                self.tree.scrollToItem(it)
                return self.tree.visualItemRect(it).adjusted(self.tree.columnViewportPosition(2), 0, 0, 0)
        raise KeyError(vector_id)


def newest_per_relation(relations: Iterable[str]) -> Callable[[list[dict[str, Any]]], list[int]]:
    """A default for VectorPicker: the newest vector of each of these relations (rows come newest first)."""
    wanted = list(relations)

    def pick(rows: list[dict[str, Any]]) -> list[int]:
        found: dict[str, int] = {}
        for v in rows:
            if v["relation"] in wanted and v["relation"] not in found:
                found[v["relation"]] = v["id"]
        return [found[r] for r in wanted if r in found]

    return pick
