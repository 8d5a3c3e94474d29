"""The scene library: data sets and filters over a list (or grid) of scenes that reads the store a
page at a time as the view scrolls, with thumbnails made off the GUI thread into a disk cache.
Fluid with 10,000 scenes: the row count is known at once, rows are fetched when painted."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QCompleter, QHBoxLayout, QLabel, QLineEdit, QListView, QToolButton, QVBoxLayout, QWidget,
)
from sqlalchemy import func, select

from mfv_desktop.store import Store
from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo

PAGE = 200
THUMB = 96


class _Thumbs(QObject):
    ready = Signal(str)  # the image path whose thumbnail is in the cache now


class _MakeThumb(QRunnable):
    def __init__(self, image: Path, dest: Path, signals: _Thumbs):
        super().__init__()
        self.image, self.dest, self.signals = image, dest, signals

    def run(self) -> None:
        from PIL import Image

        try:
            with Image.open(self.image) as img:
                img.thumbnail((THUMB, THUMB))
                self.dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.dest.with_suffix(".tmp.png")
                img.convert("RGB").save(tmp)
                tmp.replace(self.dest)
        except OSError:
            return
        try:
            self.signals.ready.emit(str(self.image))
        except RuntimeError:  # the library was closed meanwhile; the thumbnail stays in the cache
            pass


class SceneListModel(QAbstractListModel):
    """Rows = the scenes under the filters; pages of PAGE rows fetched from the store on demand."""

    def __init__(self, store: Store, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.filters: dict = {}
        self.total = 0
        self.pages: dict[int, list[repo.SceneSummary]] = {}
        self.pages_fetched = 0
        self.thumb_dir = store.data_dir / "cache" / "thumbs"
        self.icons: dict[str, QIcon] = {}
        self.pending: set[str] = set()
        self.rows_of: dict[str, set[int]] = {}
        self.signals = _Thumbs()
        self.signals.ready.connect(self._thumb_ready)
        self.pool = QThreadPool.globalInstance()
        placeholder = QPixmap(THUMB, THUMB)
        placeholder.fill(QColor("#d8d8d8"))
        self.placeholder = QIcon(placeholder)

    def reload(self, filters: dict) -> None:
        self.beginResetModel()
        self.filters = filters
        self.total = repo.count_scenes(self.store, **filters)
        self.pages.clear()
        self.rows_of.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else self.total

    def row(self, r: int) -> repo.SceneSummary | None:
        if not 0 <= r < self.total:
            return None
        page = r // PAGE
        if page not in self.pages:
            self.pages[page] = repo.page_scenes(self.store, page * PAGE, PAGE, **self.filters)
            self.pages_fetched += 1
        rows = self.pages[page]
        return rows[r - page * PAGE] if r - page * PAGE < len(rows) else None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        s = self.row(index.row())
        if s is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{s.name}   {s.n_objects} obj · {s.n_confirmed}✓ {s.n_suggested}?"
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{s.dataset} / {s.name} ({s.split}): {s.width}x{s.height}, {s.n_objects} objects, "
                    f"{s.n_confirmed} confirmed and {s.n_suggested} suggested relations")
        if role == Qt.ItemDataRole.UserRole:
            return s.id
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(s.image, index.row())
        return None

    def _thumb_path(self, image: Path) -> Path:
        return self.thumb_dir / f"{image.stem}-{THUMB}.png"

    def _icon(self, image: Path, row: int) -> QIcon:
        key = str(image)
        if key in self.icons:
            return self.icons[key]
        self.rows_of.setdefault(key, set()).add(row)
        thumb = self._thumb_path(image)
        if thumb.is_file():  # a small PNG: cheap enough to read here
            self.icons[key] = QIcon(QPixmap.fromImage(QImage(str(thumb))))
            return self.icons[key]
        if key not in self.pending:
            self.pending.add(key)
            self.pool.start(_MakeThumb(image, thumb, self.signals))
        return self.placeholder

    def _thumb_ready(self, key: str) -> None:
        self.pending.discard(key)
        for r in self.rows_of.get(key, ()):
            idx = self.index(r)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def is_placeholder(self, row: int) -> bool:
        s = self.row(row)
        return s is None or str(s.image) not in self.icons


class SceneLibrary(QWidget):
    sceneActivated = Signal(int)
    countChanged = Signal(int)

    def __init__(self, store: Store, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.model = SceneListModel(store, self)
        self.dataset = QComboBox(self)
        self.relation = QComboBox(self)
        self.status = QComboBox(self)
        self.status.addItem("any status", None)
        self.status.addItem("has confirmed", "confirmed")
        self.status.addItem("has suggested", "suggested")
        self.split = QComboBox(self)
        self.object_name = QLineEdit(self)
        self.object_name.setPlaceholderText("object name")
        self.object_name.setClearButtonEnabled(True)
        self.count = QLabel(self)
        self.grid = QToolButton(self)
        self.grid.setText("▦")
        self.grid.setToolTip("grid of thumbnails / list")
        self.grid.setCheckable(True)
        self.grid.toggled.connect(self._set_grid)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setIconSize(QSize(THUMB // 2, THUMB // 2))
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.view.activated.connect(lambda idx: self.sceneActivated.emit(idx.data(Qt.ItemDataRole.UserRole)))
        top = QHBoxLayout()
        top.addWidget(self.dataset, 2)
        top.addWidget(self.grid)
        filters = QHBoxLayout()
        for w in (self.relation, self.status, self.split):
            filters.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.object_name)
        layout.addWidget(self.view)
        layout.addWidget(self.count)
        self._fill_choices()
        for combo in (self.dataset, self.relation, self.status, self.split):
            combo.currentIndexChanged.connect(self._filters_changed)
        self.object_name.editingFinished.connect(self._filters_changed)
        self._filters_changed()

    # -- filters -------------------------------------------------------------------------------------
    def _fill_choices(self) -> None:
        """Data sets, relations, splits and object names from the store (keeps the current choices)."""
        keep = {c: c.currentData() for c in (self.dataset, self.relation, self.split)}
        for c in keep:
            c.blockSignals(True)
            c.clear()
        self.dataset.addItem("all data sets", None)
        for d in repo.datasets(self.store):
            self.dataset.addItem(f"{d['name']} ({d['n_scenes']})", d["name"])
        self.relation.addItem("any relation", None)
        for r in repo.relations(self.store):
            self.relation.addItem(r.name, r.name)
        with self.store.session() as s:
            splits = list(s.scalars(select(m.Scene.split).distinct().order_by(m.Scene.split)))
            names = list(s.scalars(select(m.SceneObject.name).group_by(m.SceneObject.name)
                                   .order_by(func.count().desc()).limit(2000)))
        self.split.addItem("any split", None)
        for sp in splits:
            self.split.addItem(sp, sp)
        completer = QCompleter(names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.object_name.setCompleter(completer)
        for c, value in keep.items():
            i = c.findData(value)
            c.setCurrentIndex(max(i, 0))
            c.blockSignals(False)

    def filters(self) -> dict:
        name = self.object_name.text().strip() or None
        return {"dataset": self.dataset.currentData(), "relation": self.relation.currentData(),
                "status": self.status.currentData(), "split": self.split.currentData(), "object_name": name}

    def set_filters(self, **kw) -> None:
        combos = {"dataset": self.dataset, "relation": self.relation, "status": self.status, "split": self.split}
        for key, value in kw.items():
            if key == "object_name":
                self.object_name.setText(value or "")
            else:
                combos[key].blockSignals(True)
                combos[key].setCurrentIndex(max(combos[key].findData(value), 0))
                combos[key].blockSignals(False)
        self._filters_changed()

    def _filters_changed(self) -> None:
        current = self.current_scene_id()
        self.model.reload(self.filters())
        self.count.setText(f"{self.model.total:,} scenes")
        self.countChanged.emit(self.model.total)
        if not (current is not None and self.select_scene(current)) and self.model.total:
            self.view.setCurrentIndex(self.model.index(0))

    def refresh(self) -> None:
        """After edits and jobs: new data sets, relations, counts; the current scene stays current."""
        self._fill_choices()
        self._filters_changed()

    def _set_grid(self, on: bool) -> None:
        self.view.setViewMode(QListView.ViewMode.IconMode if on else QListView.ViewMode.ListMode)
        self.view.setIconSize(QSize(THUMB, THUMB) if on else QSize(THUMB // 2, THUMB // 2))
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setWordWrap(on)
        if on:
            self.view.setGridSize(QSize(THUMB + 40, THUMB + 40))
        else:
            self.view.setGridSize(QSize())

    # -- current scene --------------------------------------------------------------------------------
    def current_scene_id(self) -> int | None:
        idx = self.view.currentIndex()
        return idx.data(Qt.ItemDataRole.UserRole) if idx.isValid() else None

    def _current_changed(self, idx: QModelIndex, _prev: QModelIndex) -> None:
        if idx.isValid():
            self.sceneActivated.emit(idx.data(Qt.ItemDataRole.UserRole))

    def select_scene(self, scene_id: int) -> bool:
        """Make a scene current (False if the filters hide it)."""
        row = self._row_of(scene_id)
        if row is None:
            return False
        idx = self.model.index(row)
        if self.view.currentIndex() != idx:
            self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx)
        return True

    def _row_of(self, scene_id: int) -> int | None:
        """The row of a scene under the filters: the number of scenes before it (ids are the order)."""
        f = self.model.filters
        if repo.count_scenes(self.store, **f) == 0:
            return None
        with self.store.session() as s:
            if s.get(m.Scene, scene_id) is None:
                return None
        before = repo.count_scenes_before(self.store, scene_id, **f)
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
