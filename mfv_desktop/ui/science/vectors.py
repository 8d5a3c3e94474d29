"""The vector library: the store's function vectors, newest first, with what each one is and where
it came from (its heads and their indirect effects, a composite's parts and weights, the run and the
model that made it). Rename (undoable), delete, export and import.

Import checks the vector's geometry against the current model in a worker job (the model loads
there, never on the GUI thread); a file that is not a function vector, or one made for another
model, is refused with a message naming the file, and nothing stored changes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.store import StoreError
from mfv_desktop.store import vectors as vrepo
from mfv_desktop.ui.shell.context import AppContext

if TYPE_CHECKING:
    from mfv_desktop.ui.shell.jobs import Job

COLUMNS = ("id", "label", "relation", "kind", "model", "layer", "strength", "heads", "created")


class RenameVector(QUndoCommand):
    """Rename a vector; undo gives the old label back (both through the store at once)."""

    def __init__(self, ctx: AppContext, vector_id: int, old: str, new: str, done: bool = False):
        super().__init__(f"rename vector {vector_id} to {new}")
        self.ctx, self.vector_id, self.old, self.new = ctx, vector_id, old, new
        #: the rename is done already: the push's first redo has nothing to do
        self._done = done

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)

    def _set(self, label: str) -> None:
        try:
            vrepo.rename_vector(self.ctx.store, self.vector_id, label)
        except StoreError as e:  # deleted meanwhile, or a read-only store
            self.ctx.notify(str(e), error=True)
            return
        self.ctx.vectorsChanged.emit()


def describe(v: dict[str, Any]) -> str:
    """A vector's row and provenance in words, then the raw provenance."""
    prov = v.get("provenance") or {}
    lines = [
        f"Vector {v['id']} · '{v['label']}' · relation {v['relation']} · {v['kind']}",
        f"model {v['model_id']} (d_model {v['d_model']}, {v['n_layers']} layers) · inject at layer "
        f"{v['layer']} · strength {v['strength']:g} · bias {v['bias']}",
        f"hook point {v['hook_point']}",
        f"made {time.strftime('%Y-%m-%d %H:%M', time.localtime(v['created']))}"
        + (
            f" by run {v['source_run_id']} (Jobs panel)"
            if v.get("source_run_id")
            else " · imported"
            if v["kind"] == "imported"
            else ""
        ),
    ]
    heads = v.get("heads") or []
    if heads:
        aie = prov.get("heads_aie") or []
        lines += ["", f"{len(heads)} heads (layer, head)" + (" and their average indirect effect:" if aie else ":")]
        for i, (layer, head) in enumerate(heads):
            lines.append(f"  L{layer:<3} H{head:<3}" + (f"  AIE {aie[i]:+.4f}" if i < len(aie) else ""))
    parts = prov.get("parents") or []
    if v.get("parents") or parts:
        lines += ["", "composite of:"]
        by_sha = {p.get("sha256"): p for p in parts}
        for p in v.get("parents") or []:
            lines.append(f"  vector {p['id']} '{p['label']}'  × {p['weight']:.4f}")
        if not v.get("parents"):
            for p in by_sha.values():
                lines.append(
                    f"  '{p.get('label', '?')}' ({p.get('relation', '?')})  × {float(p.get('weight', 0)):.4f}"
                    "  (not in the store)"
                )
        if prov.get("weighting"):
            lines.append(f"  weights: {prov['weighting']}")
    if v.get("children"):
        lines += ["", "part of composite " + ", ".join(f"vector {c['id']} '{c['label']}'" for c in v["children"])]
    if prov.get("model_folder") or prov.get("files"):
        lines += [
            "",
            f"model folder {prov.get('model_folder', '?')} · {prov.get('device', '?')} · {prov.get('dtype', '?')}",
        ]
        for name, digest in (prov.get("files") or {}).items():
            lines.append(f"  {name}: {digest}")
    if prov.get("versions"):
        lines.append("  " + ", ".join(f"{k} {val}" for k, val in prov["versions"].items()))
    lines += [
        "",
        f"artifact {v['artifact']}",
        "",
        "provenance (raw):",
        json.dumps(prov, indent=1, sort_keys=True, default=str),
    ]
    return "\n".join(lines)


class VectorLibrary(QWidget):
    """The store's function vectors. Reloads when `ctx.vectorsChanged` fires."""

    #: a vector was double-clicked (its id)
    vectorActivated = Signal(int)
    #: the selection changed (the selected ids, newest first)
    selectionChanged = Signal(list)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        #: replaceable by tests and scripts: a new label (None: cancelled), an export folder, a file to import
        self.ask_label: Callable[[str], str | None] = self._ask_label
        self.ask_folder: Callable[[], str | None] = lambda: (
            QFileDialog.getExistingDirectory(self, "Export vectors to a folder") or None
        )
        self.ask_file: Callable[[], str | None] = lambda: (
            QFileDialog.getOpenFileName(self, "Import a function vector", "", "Function vectors (*.safetensors)")[0]
            or None
        )
        self.rows: list[dict[str, Any]] = []

        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("filter: label, relation, kind or model")
        self.filter.setClearButtonEnabled(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.detail.setPlaceholderText("select a vector to see its heads, its parts and where it came from")
        self.count = QLabel(self)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.hide()

        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for name, text, tip, fn in (
            ("rename", "Rename…", "give the selected vector a new label (undoable)", self.rename_selected),
            ("delete", "Delete", "delete the selected vectors (not the parts of a composite)", self.delete_selected),
            (
                "export",
                "Export…",
                "write the selected vectors as .safetensors + .json to a folder",
                self.export_selected,
            ),
            ("import", "Import…", "add a vector file, checked against the current model", self.ask_import),
        ):
            b = QPushButton(text, self)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, fn=fn: fn())
            row.addWidget(b)
            self.buttons[name] = b
        row.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.count)

        row_h = self.table.verticalHeader().defaultSectionSize()
        self.table.setMinimumHeight(3 * row_h)  # the header and two rows at least
        self.detail.setMinimumHeight(row_h)
        #: the list above the details in a tall dock, beside them in a wide one (see resizeEvent)
        self.split = split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)

        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.cellDoubleClicked.connect(lambda r, _c: self._activate(r))
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.filter.textChanged.connect(lambda _: self._apply_filter())
        ctx.vectorsChanged.connect(self.refresh)
        self.refresh()

    def resizeEvent(self, event) -> None:
        wide = event.size().width() > 2 * event.size().height()
        self.split.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        super().resizeEvent(event)

    # -- the list ----------------------------------------------------------------------------
    @property
    def store(self):
        return self.ctx.store

    def refresh(self) -> None:
        keep = set(self.selected_ids())
        self.rows = vrepo.list_vectors(self.store)
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(self.rows))
        for i, v in enumerate(self.rows):
            cells = (
                str(v["id"]),
                v["label"],
                v["relation"],
                v["kind"],
                v["model_id"],
                str(v["layer"]),
                f"{v['strength']:g}",
                str(v["n_heads"]),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(v["created"])),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (0, 5, 6, 7):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 1 and v["children"]:
                    item.setToolTip("part of composite " + ", ".join(str(ch["id"]) for ch in v["children"]))
                self.table.setItem(i, c, item)
        for i, v in enumerate(self.rows):
            if v["id"] in keep:
                self.table.selectRow(i)
        self.table.blockSignals(False)
        self._apply_filter()
        self._selection_changed()

    def _apply_filter(self) -> None:
        words = self.filter.text().lower().split()
        shown = 0
        for i, v in enumerate(self.rows):
            hay = " ".join(str(v[k]) for k in ("id", "label", "relation", "kind", "model_id")).lower()
            hide = any(w not in hay for w in words)
            self.table.setRowHidden(i, hide)
            shown += not hide
        n = len(self.rows)
        self.count.setText(f"{n} vectors" if shown == n else f"{shown} of {n} vectors")

    def vector(self, vector_id: int) -> dict[str, Any] | None:
        return next((v for v in self.rows if v["id"] == vector_id), None)

    def selected_ids(self) -> list[int]:
        rows = sorted({ix.row() for ix in self.table.selectionModel().selectedRows()})
        return [self.rows[r]["id"] for r in rows if r < len(self.rows) and not self.table.isRowHidden(r)]

    def select(self, vector_ids: int | list[int]) -> None:
        ids = {vector_ids} if isinstance(vector_ids, int) else set(vector_ids)
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for i, v in enumerate(self.rows):
            if v["id"] in ids:
                self.table.selectRow(i)
                item = self.table.item(i, 0)
                if item is not None:
                    self.table.scrollToItem(item)
        self.table.setSelectionMode(mode)

    def _selection_changed(self) -> None:
        ids = self.selected_ids()
        one = len(ids) == 1
        self.buttons["rename"].setEnabled(one and not self.store.read_only)
        self.buttons["delete"].setEnabled(bool(ids) and not self.store.read_only)
        self.buttons["export"].setEnabled(bool(ids))
        self.buttons["import"].setEnabled(not self.store.read_only)
        shown = self.vector(ids[0]) if one else None
        if shown is not None:
            self.detail.setPlainText(describe(shown))
        elif ids:
            self.detail.setPlainText(f"{len(ids)} vectors selected: " + ", ".join(map(str, ids)))
        else:
            self.detail.clear()
        self.selectionChanged.emit(ids)

    def _activate(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            self.vectorActivated.emit(self.rows[row]["id"])

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        for name in ("rename", "delete", "export", "import"):
            b = self.buttons[name]
            menu.addAction(b.text(), b.click).setEnabled(b.isEnabled())
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def show_message(self, text: str, error: bool = False) -> None:
        """In the panel (it stays) and in the status bar."""
        self.message.setText(("⚠ " if error else "") + text)
        self.message.setStyleSheet("color: #b00020;" if error else "")
        self.message.setVisible(bool(text))
        self.ctx.notify(text, error=error)

    # -- actions -----------------------------------------------------------------------------
    def _ask_label(self, current: str) -> str | None:
        text, ok = QInputDialog.getText(self, "Rename vector", "Label:", QLineEdit.EchoMode.Normal, current)
        return text if ok else None

    def rename_selected(self) -> bool:
        ids = self.selected_ids()
        if len(ids) != 1:
            return False
        v = self.vector(ids[0])
        if v is None:
            return False
        new = self.ask_label(v["label"])
        if new is None or new.strip() == v["label"]:
            return False
        if not new.strip():
            self.show_message(f"vector {v['id']}: a label cannot be empty; type a name", error=True)
            return False
        try:  # the command's first redo renames; a failure leaves nothing on the undo stack
            vrepo.rename_vector(self.store, v["id"], new)
        except StoreError as e:
            self.show_message(str(e), error=True)
            return False
        self.ctx.undo.push(RenameVector(self.ctx, v["id"], v["label"], new.strip(), done=True))
        self.ctx.vectorsChanged.emit()
        self.show_message(f"vector {v['id']} renamed to '{new.strip()}' (Undo gives the old name back)")
        return True

    def delete_selected(self) -> bool:
        ids = self.selected_ids()
        if not ids:
            return False
        blocked = vrepo.deletion_blocked(self.store, ids)
        if blocked:
            self.show_message(blocked + ".", error=True)
            return False
        chosen = [v for v in map(self.vector, ids) if v is not None]
        names = ", ".join(f"{v['id']} '{v['label']}'" for v in chosen)
        if not self.ctx.confirm(
            f"Delete vector{'s' if len(ids) > 1 else ''} {names}? "
            "This cannot be undone (export it first to keep a copy)."
        ):
            return False
        try:
            vrepo.delete_vectors(self.store, ids)
        except StoreError as e:
            self.show_message(str(e), error=True)
            return False
        self.ctx.vectorsChanged.emit()
        self.show_message(f"deleted vector{'s' if len(ids) > 1 else ''} {names}")
        return True

    def export_selected(self, folder: str | Path | None = None) -> list[Path]:
        from mfv_desktop.store.exchange import export_vector

        ids = self.selected_ids()
        if not ids:
            return []
        folder = folder or self.ask_folder()
        if not folder:
            return []
        try:
            paths = [export_vector(self.store, i, folder) for i in ids]
        except (StoreError, OSError) as e:
            self.show_message(f"export to {folder} failed: {e}", error=True)
            return []
        self.show_message(
            f"exported {len(paths)} vector{'s' if len(paths) > 1 else ''} to {folder}"
            + (f" ({paths[0].name})" if len(paths) == 1 else "")
        )
        return paths

    def ask_import(self) -> Job | None:
        path = self.ask_file()
        return self.import_file(path) if path else None

    def import_file(self, path: str | Path) -> Job | None:
        """Check the file against the current model and add it, in a worker job."""
        w = self.ctx
        if self.store.read_only:
            self.show_message("the store is open read-only: close the other app to import vectors", error=True)
            return None
        path = Path(path)
        store, ref = self.store, w.model_ref()
        known = {v["id"] for v in self.rows}

        def work():
            from mfv_desktop.jobs.stored import import_vector

            return import_vector(store, path, model=ref.model, device=ref.device, dtype=ref.dtype)

        def done(vector_id: int) -> None:
            w.vectorsChanged.emit()
            self.select(vector_id)
            self.show_message(
                f"{path.name} is already in the store as vector {vector_id}"
                if vector_id in known
                else f"imported {path.name} as vector {vector_id} (fits {ref.model})"
            )

        def failed(msg: str) -> None:
            self.show_message(msg if path.name in msg else f"{path.name}: {msg}", error=True)

        self.show_message(f"importing {path.name}: checking it against {ref.model}…")
        return w.jobs.submit(work, f"import vector {path.name}", done, on_failed=failed)
