"""A read-only view of one image with its objects' boxes, for pointing at objects (the Apply and
Analogy tabs), and the pane that chooses what it shows: the window's current scene, a scene of the
store by id, or an image file. Clicking inside a box names its object (the smallest box under the
pointer wins); `mark` outlines an object with a role tag ("A", "anchor", "D = cup")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QRect, QRectF, QStringListModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFileDialog,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.scenes import Box
from mfv_desktop.store import StoreError
from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.curation.items import _IGNORE_ZOOM, PALETTE, tag_item
from mfv_desktop.ui.shell.context import AppContext

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff)"


def _pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen `width` screen pixels wide at any zoom."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


def _area(r: QRectF) -> float:
    return max(r.width(), 0.0) * max(r.height(), 0.0) if r.isValid() else 0.0


class SceneView(QGraphicsView):
    """One image with its object boxes, always fitted to the view; read-only."""

    #: the user clicked inside an object's box (its name)
    objectClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QBrush(QColor("#3a3a3a")))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.path: str | None = None
        self.objects: list[tuple[str, Box]] = []
        #: object name -> its box and the box's name tag
        self._boxes: dict[str, tuple[QGraphicsRectItem, QGraphicsRectItem]] = {}
        #: name -> [(role text, colour)], in the order they were marked
        self._marks: dict[str, list[tuple[str, QColor]]] = {}
        self._mark_items: list[QGraphicsItem] = []
        self._placeholder = "no image"

    # -- what is shown -----------------------------------------------------------------------------
    def clear(self, message: str = "no image") -> None:
        self.scene().clear()
        self.path, self.objects, self._boxes, self._marks, self._mark_items = None, [], {}, {}, []
        self._placeholder = message
        self.scene().setSceneRect(QRectF())
        self.viewport().update()

    def show_image(self, path: str | Path, objects: list[tuple[str, Box]] | None = None) -> bool:
        """Show an image with its objects' boxes (none: just the image). False if it cannot be read."""
        reader = QImageReader(str(path))
        reader.setAutoTransform(True)  # upright, as the model sees it (EXIF orientation applied)
        pm = QPixmap.fromImage(reader.read())
        self.clear(f"cannot read {Path(path).name}" if pm.isNull() else "")
        if pm.isNull():
            return False
        self.path, self.objects = str(path), list(objects or [])
        self.scene().addPixmap(pm)
        self.scene().setSceneRect(QRectF(0, 0, pm.width(), pm.height()))
        for i, (name, box) in enumerate(self.objects):
            colour = QColor(PALETTE[i % len(PALETTE)])
            item = QGraphicsRectItem(QRectF(box.x0, box.y0, box.width, box.height))
            item.setPen(_pen(colour, 1.5))
            item.setBrush(QBrush(QColor(colour.red(), colour.green(), colour.blue(), 20)))
            item.setZValue(2)
            tag, _ = tag_item(name, QColor("white"), colour, item, origin="top-left")
            tag.setPos(box.x0, box.y0)
            if box.y0 > 0.06 * pm.height():  # above the box, unless the box touches the top
                tag.setRect(tag.rect().translated(0, -tag.rect().height()))
                tag.childItems()[0].moveBy(0, -tag.rect().height())
            item.setToolTip(name)
            self.scene().addItem(item)
            self._boxes[name] = item, tag
        self.fit()
        return True

    def object_names(self) -> list[str]:
        return [n for n, _ in self.objects]

    def box_of(self, name: str) -> Box | None:
        return next((b for n, b in self.objects if n == name), None)

    def fit(self) -> None:
        r = self.scene().sceneRect()
        if not r.isEmpty():
            self.fitInView(r, Qt.AspectRatioMode.KeepAspectRatio)
            if self._marks:  # the tags keep their size on screen: where they fit depends on the zoom
                self._draw_marks()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.fit()

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        super().drawForeground(painter, rect)
        if self.path is None and self._placeholder:
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor("#d0d0d0"))
            painter.drawText(
                self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder
            )
            painter.restore()

    # -- marks -------------------------------------------------------------------------------------
    def mark(self, name: str, role_text: str, colour: str | QColor) -> bool:
        """Outline an object and tag it with its role; False if the image has no box of that name."""
        if name not in self._boxes:
            return False
        self._marks.setdefault(name, []).append((role_text, QColor(colour)))
        self._draw_marks()
        return True

    def clear_marks(self) -> None:
        self._marks = {}
        self._draw_marks()

    def marks(self) -> dict[str, list[str]]:
        """name -> the role texts it is marked with (what the user sees)."""
        return {n: [t for t, _ in ms] for n, ms in self._marks.items()}

    def marked(self, role_text: str) -> str | None:
        """The object marked with a role, if any."""
        return next((n for n, ms in self._marks.items() if any(t == role_text for t, _ in ms)), None)

    def _draw_marks(self) -> None:
        for item in self._mark_items:
            self.scene().removeItem(item)
        self._mark_items = []
        scale = self.transform().m11() or 1.0
        taken = [self._name_rect(n, scale) for n in self._boxes]  # what a role tag should not cover
        for name, ms in self._marks.items():
            box = self.box_of(name)
            if box is None:
                continue
            # one outline per role: the first solid, the others dashed over it
            for k, (_, colour) in enumerate(ms):
                outline = QGraphicsRectItem(QRectF(box.x0, box.y0, box.width, box.height))
                outline.setPen(
                    _pen(colour, 4 if k == 0 else 2.5, Qt.PenStyle.SolidLine if k == 0 else Qt.PenStyle.DashLine)
                )
                outline.setZValue(4 + k)
                self.scene().addItem(outline)
                self._mark_items.append(outline)
            # the role tags in a row, where they cover the fewest other boxes and labels
            holder = QGraphicsRectItem(QRectF())
            holder.setPen(QPen(Qt.PenStyle.NoPen))
            holder.setFlag(_IGNORE_ZOOM, True)
            holder.setZValue(8)
            x = h = 0.0
            for text, colour in ms:
                tag, _ = tag_item(text, QColor("white"), colour, holder, origin="top-left", bold=True)
                tag.setFlag(_IGNORE_ZOOM, False)  # the holder keeps the size constant
                tag.setPos(x, 0)
                x += tag.rect().width() + 3
                h = max(h, tag.rect().height())
            spot = self._tag_spot(name, box, (x - 3) / scale, h / scale, 3 / scale, taken)
            holder.setPos(spot.topLeft())
            taken.append(spot)
            self.scene().addItem(holder)
            self._mark_items.append(holder)

    def _name_rect(self, name: str, scale: float) -> QRectF:
        """Where an object's name tag is, in image pixels at this zoom."""
        tag = self._boxes[name][1]
        r = tag.rect()
        return QRectF(
            tag.pos().x() + r.x() / scale, tag.pos().y() + r.y() / scale, r.width() / scale, r.height() / scale
        )

    def _tag_spot(self, name: str, box: Box, w: float, h: float, m: float, taken: list[QRectF]) -> QRectF:
        """A w x h place for an object's role tags: inside its box (top-right first) or just outside it,
        whichever covers the least of the other boxes, the labels and the image's edge."""
        cx, cy = box.center
        spots = [
            (box.x1 - w - m, box.y0 + m),
            (box.x1 - w - m, box.y1 - h - m),
            (cx - w / 2, cy - h / 2),
            (box.x1 + m, cy - h / 2),
            (box.x0 - w - m, cy - h / 2),
            (box.x0, box.y1 + m),
            (box.x1 - w, box.y0 - h - m),
        ]
        image = self.scene().sceneRect()
        others = [QRectF(b.x0, b.y0, b.width, b.height) for n, b in self.objects if n != name]
        own = QRectF(box.x0, box.y0, box.width, box.height)

        def covered(r: QRectF, rects: list[QRectF]) -> float:
            return sum(_area(r.intersected(o)) for o in rects) / max(_area(r), 1e-9)

        def cost(i: int, r: QRectF) -> float:
            return (
                covered(r, others)
                + 3 * covered(r, taken)
                + 4 * (1 - covered(r, [image]))
                + 0.3 * (1 - covered(r, [own]))
                + 0.01 * i
            )

        rects = [QRectF(x, y, w, h) for x, y in spots]
        return min(enumerate(rects), key=lambda ir: cost(*ir))[1]

    # -- pointing ----------------------------------------------------------------------------------
    def object_at(self, x: float, y: float) -> str | None:
        """The object whose box holds image point (x, y); the smallest box wins."""
        hits = [(b.area, n) for n, b in self.objects if b.x0 <= x <= b.x1 and b.y0 <= y <= b.y1]
        return min(hits)[1] if hits else None

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.path is not None:
            p = self.mapToScene(event.position().toPoint())
            name = self.object_at(p.x(), p.y())
            if name is not None:
                self.objectClicked.emit(name)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        p = self.mapToScene(event.position().toPoint())
        hit = self.path is not None and self.object_at(p.x(), p.y()) is not None
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if hit else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)


class ScenePane(QWidget):
    """A SceneView with what it shows: the window's current scene, a scene of the store by id, or an
    image file (with no boxes: its objects are then typed by name)."""

    SOURCES = ("current scene", "scene by id", "image file")
    #: what the view shows changed (a new image, or none)
    imageChanged = Signal()

    def __init__(self, ctx: AppContext, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.scene_id: int | None = None
        self.file: str | None = None
        #: the last imageChanged brought another picture (not the same one shown again)
        self.new_image = False
        self._emitted: str | None = None
        self._shown_mode = self.SOURCES[0]
        self.source = QComboBox()
        self.source.addItems(self.SOURCES)
        self.source.setToolTip(
            "what to show: the scene open on the Scene tab, a scene of the store by its id, "
            "or an image file (its objects are then typed by name)"
        )
        self.scene_spin = QSpinBox(minimum=1, maximum=10**9)
        self.scene_spin.setPrefix("scene ")
        self.scene_spin.setKeyboardTracking(False)
        self.scene_spin.setMaximumWidth(110)
        self.open_button = QPushButton("Open image…")
        self.info = QLabel()
        self.info.setStyleSheet("color: #666;")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # clipped, not wider
        self.view = SceneView(self)
        #: replaceable by tests and scripts: ask for an image file ("" for none)
        self.ask_image_path: Callable[[], str] = lambda: QFileDialog.getOpenFileName(
            self, "Open an image", "", IMAGE_FILTER
        )[0]
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        if title:
            head = QLabel(f"<b>{title}</b>")
            row.addWidget(head)
        for w in (self.source, self.scene_spin, self.open_button):
            row.addWidget(w)
        row.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        self.source.activated.connect(self._source_chosen)
        self.scene_spin.valueChanged.connect(lambda v: self.show_scene(v))
        self.open_button.clicked.connect(self.ask_open)
        self._update_controls()

    # -- what the pane shows -------------------------------------------------------------------
    def _changed(self) -> None:
        self.new_image = self.view.path != self._emitted
        self._emitted = self.view.path
        self.imageChanged.emit()

    @property
    def image_path(self) -> str | None:
        return self.view.path

    @property
    def objects(self) -> list[tuple[str, Box]]:
        return self.view.objects

    def mode(self) -> str:
        return self.source.currentText()

    def _update_controls(self) -> None:
        self.scene_spin.setVisible(self.mode() == "scene by id")

    def _source_chosen(self, _index: int = 0) -> None:
        self._update_controls()
        if self.mode() == "current scene":
            self.show_current()
        elif self.mode() == "scene by id":
            self.show_scene(self.scene_spin.value())
        elif self.file is None:
            self.ask_open()
        else:
            self.show_file(self.file)

    def refresh(self) -> None:
        """Show the window's current scene again (when following it)."""
        if self.mode() == "current scene" and self.ctx.scene_id != self.scene_id:
            self.show_current()

    def show_current(self) -> None:
        self._set_source("current scene")
        if self.ctx.scene_id is None:
            self.scene_id = None
            self.view.clear("no scene is open: pick one in the Scenes list, or open an image")
            self.info.setText("")
            self._changed()
            return
        self._show_scene(self.ctx.scene_id)

    def show_scene(self, scene_id: int) -> bool:
        """A scene of the store: its image (a drawn scene's rendered picture) and its objects' boxes."""
        self._set_source("scene by id")
        if self.scene_spin.value() != scene_id:
            self.scene_spin.blockSignals(True)
            self.scene_spin.setValue(scene_id)
            self.scene_spin.blockSignals(False)
        return self._show_scene(scene_id)

    def _show_scene(self, scene_id: int) -> bool:
        try:
            data, _ = repo.get_scene(self.ctx.store, scene_id)
        except StoreError:
            self.scene_id = None
            self.view.clear(f"there is no scene {scene_id} in the store")
            self.info.setText("")
            self._changed()
            return False
        objects = [(o.name, o.box) for o in repo.objects(self.ctx.store, scene_id)]
        self.scene_id = scene_id
        ok = self.view.show_image(data.image, objects)
        drawn = " · drawn" if data.meta.get("drawn") else ""
        self.info.setText(f"{data.id} (id {scene_id}{drawn}) · {len(objects)} objects")
        self.info.setToolTip(str(data.image))
        self._changed()
        return ok

    def ask_open(self) -> None:
        path = self.ask_image_path()
        if path:
            self.show_file(path)
        else:  # nothing chosen: the choice shows what the view still shows
            self._set_source(self._shown_mode)

    def show_file(self, path: str | Path) -> bool:
        """An image file: just the picture (no boxes); its objects are typed by name."""
        self._set_source("image file")
        self.scene_id = None
        ok = self.view.show_image(str(path), [])
        self.file = str(path) if ok else None
        self.info.setText(f"{Path(path).name} · no boxes: type the objects' names" if ok else "")
        self.info.setToolTip(str(path))
        if not ok:
            self.ctx.notify(f"{path}: not an image this app can read; choose a PNG or JPEG file", error=True)
        self._changed()
        return ok

    def _set_source(self, mode: str) -> None:
        self._shown_mode = mode
        self.source.setCurrentText(mode)
        self._update_controls()


class NameEdit(QLineEdit):
    """An object's name typed by hand (for images without boxes), completed from the store's names."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setClearButtonEnabled(True)
        self._names = QStringListModel(self)
        completer = QCompleter(self._names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchStartsWith)
        self.setCompleter(completer)

    def set_names(self, names: list[str]) -> None:
        self._names.setStringList(sorted(dict.fromkeys(names)))

    def name(self) -> str:
        return self.text().strip()


def fill_with_split(owner: QWidget, left: QWidget, right: QWidget, stretch: tuple[int, int]) -> QSplitter:
    """Lay `owner` out as two panes side by side (neither collapses), sharing width by `stretch`."""
    split = QSplitter(Qt.Orientation.Horizontal, owner)
    split.addWidget(left)
    split.addWidget(right)
    for i, factor in enumerate(stretch):
        split.setStretchFactor(i, factor)
    split.setChildrenCollapsible(False)
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(split)
    return split
