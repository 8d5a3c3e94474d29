"""The scene library: data sets and filters over a list (or grid) of scenes that reads the store a
page at a time as the view paints rows, with thumbnails made off the GUI thread into a disk cache.

Fluid with 10,000 scenes: the row count is known at once (the scroll bar is true from the start),
rows come from a page cache filled when painted, and images are decoded only on worker threads."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    QStringListModel,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.files import atomic_path
from mfv_desktop.store import Store
from mfv_desktop.store import scenes as repo

PAGE = 200  #: rows fetched from the store at a time
THUMB = 96  #: a thumbnail's long side, px
ICONS_KEPT = 1000  #: thumbnails held in memory (the rest stay in the disk cache)
QUEUED = 64  #: thumbnail requests kept waiting; older ones (rows scrolled past) are dropped

Index = QModelIndex | QPersistentModelIndex
#: the invalid index: the root of a flat list
_ROOT = QModelIndex()
FILTERS = ("dataset", "relation", "object_name", "status", "split")


def thumb_path(store: Store, image: Path) -> Path:
    return store.data_dir / "cache" / "thumbs" / f"{image.stem}-{THUMB}.png"


def make_thumb(image: Path, dest: Path) -> QImage:
    """The thumbnail from the disk cache, made first if missing (worker threads only: it decodes)."""
    if dest.is_file():
        return QImage(str(dest))
    reader = QImageReader(str(image))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > THUMB:
        reader.setScaledSize(size.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))
    img = reader.read()
    if max(img.width(), img.height()) > THUMB:
        img = img.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    if not img.isNull():
        with contextlib.suppress(OSError), atomic_path(dest) as tmp:
            # PySide6's stub types the format as bytes; the binding takes only a str
            if not img.save(str(tmp), "PNG"):  # type: ignore[call-overload]
                raise OSError(f"cannot write {tmp}")
    return img


class _Thumbs(QObject):
    ready = Signal(str, QImage, bool)  # image path, thumbnail (null: unreadable), dropped from the queue


class _Queue:
    """What the workers read: requests numbered at or below `cutoff` are no longer wanted."""

    def __init__(self) -> None:
        self.seq = 0
        self.cutoff = 0


class _MakeThumb(QRunnable):
    def __init__(self, image: Path, dest: Path, seq: int, queue: _Queue, signals: _Thumbs):
        super().__init__()
        self.image, self.dest, self.seq, self.queue, self.signals = image, dest, seq, queue, signals

    def run(self) -> None:
        dropped = self.seq <= self.queue.cutoff
        img = QImage() if dropped else make_thumb(self.image, self.dest)
        try:
            self.signals.ready.emit(str(self.image), img, dropped)
        except RuntimeError:  # the library is gone; the thumbnail stays in the disk cache
            pass


class SceneListModel(QAbstractListModel):
    """Rows = the scenes under the filters; pages of PAGE rows fetched from the store when asked for."""

    def __init__(self, store: Store, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.filters: dict[str, Any] | None = None
        self.total = 0
        self.pages: dict[int, list[repo.SceneSummary]] = {}
        self.pages_fetched = 0
        self.pool = QThreadPool(self)  # before the signals: on teardown it waits for its workers first
        self.pool.setMaxThreadCount(2)
        self.signals = _Thumbs(self)
        self.signals.ready.connect(self._thumb_ready)
        self.queue = _Queue()
        self.icons: OrderedDict[str, QIcon] = OrderedDict()
        self.pending: set[str] = set()
        self.rows_of: dict[str, set[int]] = {}
        placeholder = QPixmap(THUMB, THUMB)
        placeholder.fill(QColor("#d8d8d8"))
        self.placeholder = QIcon(placeholder)

    def reload(self, filters: dict[str, Any]) -> None:
        self.beginResetModel()
        self.filters = filters
        self.total = repo.count_scenes(self.store, **filters)
        self.pages.clear()
        self.rows_of.clear()
        self.queue.cutoff = self.queue.seq  # thumbnails asked for by the old rows are not wanted now
        self.endResetModel()

    def rowCount(self, parent: Index = _ROOT) -> int:
        return 0 if parent.isValid() else self.total

    def row(self, r: int) -> repo.SceneSummary | None:
        """The scene in row r, fetching its page if it is not in the cache."""
        if not 0 <= r < self.total:
            return None
        page = r // PAGE
        if page not in self.pages:
            self.pages[page] = repo.page_scenes(self.store, page * PAGE, PAGE, **(self.filters or {}))
            self.pages_fetched += 1
        rows = self.pages[page]
        return rows[r % PAGE] if r % PAGE < len(rows) else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        s = self.row(index.row())
        if s is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{s.name}   {s.n_objects} obj · {s.n_confirmed}✓ {s.n_suggested}?"
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"{s.dataset} / {s.name} ({s.split}): {s.width}×{s.height} px, {s.n_objects} objects, "
                f"{s.n_confirmed} confirmed and {s.n_suggested} suggested relations"
            )
        if role == Qt.ItemDataRole.UserRole:
            return s.id
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(s.image, index.row())
        return None

    # -- thumbnails ----------------------------------------------------------------------------------
    def _icon(self, image: Path, row: int) -> QIcon:
        key = str(image)
        if key in self.icons:
            self.icons.move_to_end(key)
            return self.icons[key]
        self.rows_of.setdefault(key, set()).add(row)
        if key not in self.pending:
            self.pending.add(key)
            self.queue.seq += 1
            self.queue.cutoff = max(self.queue.cutoff, self.queue.seq - QUEUED)
            job = _MakeThumb(image, thumb_path(self.store, image), self.queue.seq, self.queue, self.signals)
            self.pool.start(job, self.queue.seq)  # the newest request (a row in view now) first
        return self.placeholder

    def _thumb_ready(self, key: str, img: QImage, dropped: bool) -> None:
        self.pending.discard(key)
        if not dropped:
            self.icons[key] = self.placeholder if img.isNull() else QIcon(QPixmap.fromImage(img))
            while len(self.icons) > ICONS_KEPT:
                self.icons.popitem(last=False)
        for r in self.rows_of.pop(key, ()):  # repainted; a dropped one asks again if it is still in view
            idx = self.index(r)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class _FirstRowSize(QStyledItemDelegate):
    """Uniform item sizes: Qt measures the last row (which would read the last page); measure the first."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return super().sizeHint(option, index.sibling(0, index.column()))


class _SceneView(QListView):
    """QListView lays out every row again on any dataChanged (25 ms at 10,000 rows); a thumbnail that
    arrives changes no size (the items are uniform), so for that, only repaint the row."""

    def dataChanged(self, top_left: Index, bottom_right: Index, roles: Sequence[int] = ()) -> None:
        if list(roles) == [Qt.ItemDataRole.DecorationRole]:
            QAbstractItemView.dataChanged(self, top_left, bottom_right, roles)
        else:
            super().dataChanged(top_left, bottom_right, roles)


class SceneLibrary(QWidget):
    """The scene library dock: data set and filters, the scenes (list or grid), their count."""

    sceneActivated = Signal(int)  # a scene id: the current row changed to it, or it was activated
    countChanged = Signal(int)  # the number of scenes under the filters

    def __init__(self, store: Store, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.model = SceneListModel(store, self)
        self._shown: int | None = None  # the scene sceneActivated last named
        self._incoming = ""  # scenes on their way in (an import, the sample data set), said beside the count
        self.dataset = QComboBox(self)
        self.relation = QComboBox(self)
        self.status = QComboBox(self)
        for text, value in (("any status", None), ("has confirmed", "confirmed"), ("has suggested", "suggested")):
            self.status.addItem(text, value)
        self.split = QComboBox(self)
        self.names = QStringListModel(self)
        completer = QCompleter(self.names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.object_name = QLineEdit(self)
        self.object_name.setPlaceholderText("object name")
        self.object_name.setClearButtonEnabled(True)
        self.object_name.setCompleter(completer)
        self.grid = QToolButton(self)
        self.grid.setText("▦")
        self.grid.setToolTip("Thumbnail grid / list")
        self.grid.setCheckable(True)
        self.count = QLabel(self)
        self.count.setWordWrap(True)
        self.view = _SceneView(self)
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setItemDelegate(_FirstRowSize(self.view))
        self._set_grid(False)

        top = QHBoxLayout()
        top.addWidget(self.dataset, 2)
        top.addWidget(self.grid)
        filters = QHBoxLayout()
        for w in (self.relation, self.status, self.split):
            filters.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        for part in (top, filters):
            layout.addLayout(part)
        for widget in (self.object_name, self.view, self.count):
            layout.addWidget(widget)

        self._fill_choices()
        self._combos = {"dataset": self.dataset, "relation": self.relation, "status": self.status, "split": self.split}
        for combo in self._combos.values():
            combo.currentIndexChanged.connect(lambda _: self._filters_changed())
        self.object_name.editingFinished.connect(self._filters_changed)
        completer.activated.connect(lambda _: self._filters_changed())
        self.object_name.textChanged.connect(self._object_name_edited)
        self.grid.toggled.connect(self._set_grid)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.view.activated.connect(lambda idx: self._emit(idx.data(Qt.ItemDataRole.UserRole), always=True))
        self._filters_changed()

    # -- filters -------------------------------------------------------------------------------------
    def _fill_choices(self) -> None:
        """Data sets (with counts), relations, splits and object names from the store; keeps the choices."""
        combos = (self.dataset, self.relation, self.split)
        keep = [c.currentData() for c in combos]
        datasets, relations, splits, names = repo.library_choices(self.store)
        items = (
            [("All data sets", None)] + [(f"{d['name']} ({d['n_scenes']:,})", d["name"]) for d in datasets],
            [("any relation", None)] + [(r, r) for r in relations],
            [("any split", None)] + [(sp, sp) for sp in splits],
        )
        for combo, value, entries in zip(combos, keep, items):
            combo.blockSignals(True)
            combo.clear()
            for text, data in entries:
                combo.addItem(text, data)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            combo.blockSignals(False)
        self.names.setStringList(names)

    def filters(self) -> dict[str, Any]:
        """The filters as `count_scenes` and `page_scenes` take them (None: any)."""
        return {
            "dataset": self.dataset.currentData(),
            "relation": self.relation.currentData(),
            "object_name": self.object_name.text().strip() or None,
            "status": self.status.currentData(),
            "split": self.split.currentData(),
        }

    def set_filters(self, **kw: str | None) -> None:
        """Set some filters at once (None: any); a value the choices lack is an error."""
        for key, value in kw.items():
            if key == "object_name":
                self.object_name.blockSignals(True)
                self.object_name.setText(value or "")
                self.object_name.blockSignals(False)
                continue
            if key not in self._combos:
                raise ValueError(f"unknown filter {key!r}; the filters are {', '.join(FILTERS)}")
            combo = self._combos[key]
            i = combo.findData(value)
            if i < 0:
                raise ValueError(f"no {key} {value!r} in the library")
            combo.blockSignals(True)
            combo.setCurrentIndex(i)
            combo.blockSignals(False)
        self._filters_changed()

    def _object_name_edited(self, text: str) -> None:
        if not text:  # cleared: the filter goes at once (typed text waits for editingFinished)
            self._filters_changed()

    def _filters_changed(self, force: bool = False) -> None:
        filters = self.filters()
        if filters == self.model.filters and not force:
            return
        current = self.current_scene_id()
        self.model.reload(filters)
        n = self.model.total
        self._show_count()
        self.countChanged.emit(n)
        if not (current is not None and self.select_scene(current)) and n:
            self.view.setCurrentIndex(self.model.index(0))

    def _show_count(self) -> None:
        n = self.model.total
        self.count.setText(f"{n:,} scene{'' if n == 1 else 's'}" + (f" · {self._incoming}" if self._incoming else ""))

    def set_incoming(self, text: str) -> None:
        """Say what is on its way in beside the count ("adding sample scenes… 40/200"; "": nothing)."""
        self._incoming = text
        self._show_count()

    def refresh(self) -> None:
        """After edits and jobs: new data sets, relations, counts; the current scene stays current."""
        self._fill_choices()
        self._filters_changed(force=True)

    def _set_grid(self, on: bool) -> None:
        self.view.setViewMode(QListView.ViewMode.IconMode if on else QListView.ViewMode.ListMode)
        self.view.setIconSize(QSize(THUMB, THUMB) if on else QSize(THUMB // 2, THUMB // 2))
        self.view.setGridSize(QSize(THUMB + 40, THUMB + 40) if on else QSize())
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setWordWrap(on)

    # -- the current scene ---------------------------------------------------------------------------
    def current_scene_id(self) -> int | None:
        idx = self.view.currentIndex()
        return idx.data(Qt.ItemDataRole.UserRole) if idx.isValid() else None

    def _emit(self, scene_id: int | None, always: bool = False) -> None:
        if scene_id is not None and (always or scene_id != self._shown):
            self._shown = scene_id
            self.sceneActivated.emit(scene_id)

    def _current_changed(self, idx: QModelIndex, _prev: QModelIndex) -> None:
        if idx.isValid():  # a refresh that keeps the scene current says nothing
            self._emit(idx.data(Qt.ItemDataRole.UserRole))

    def select_scene(self, scene_id: int) -> bool:
        """Make a scene current and scroll to it (False if the filters hide it)."""
        row = self._row_of(scene_id)
        if row is None:
            return False
        idx = self.model.index(row)
        if self.view.currentIndex() != idx:
            self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx)
        return True

    def _row_of(self, scene_id: int) -> int | None:
        """A scene's row under the filters: the number of scenes before it (ids are the order)."""
        if not self.model.total:
            return None
        before = repo.count_scenes_before(self.store, scene_id, **(self.model.filters or {}))
        hit = self.model.row(before)
        return before if hit is not None and hit.id == scene_id else None

    def next_scene(self) -> None:
        self._step(1)

    def previous_scene(self) -> None:
        self._step(-1)

    def _step(self, step: int) -> None:
        if self.model.total:
            row = min(max(self.view.currentIndex().row() + step, 0), self.model.total - 1)
            self.view.setCurrentIndex(self.model.index(row))
