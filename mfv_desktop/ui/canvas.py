"""The scene canvas: an image (or a blank canvas with stamps) at any zoom, object boxes that can be
drawn, moved, resized and deleted, and relation arrows. It shows what it is given and emits what
the user asks for; the window turns those intents into undoable store edits and shows the scene
again. Scene coordinates are image pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPixmap, QPolygonF, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem, QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem,
    QGraphicsView, QWidget,
)

from mfv_desktop.scenes import Box, stamp_from_id
from mfv_desktop.store.scenes import Label, ObjectView

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
CONFIRMED, SUGGESTED = QColor("#1b7a2f"), QColor("#e08a00")
HANDLE_PX = 8  # on screen, whatever the zoom
MIN_BOX = 4  # image pixels


def _pixmap(img) -> QPixmap:
    """A PIL RGBA image as a QPixmap."""
    rgba = img.convert("RGBA")
    q = QImage(rgba.tobytes("raw", "RGBA"), rgba.width, rgba.height, 4 * rgba.width, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(q.copy())


def _box(r: QRectF) -> Box:
    return Box(r.left(), r.top(), r.right(), r.bottom())


@dataclass
class ArrowInfo:
    subject: str
    relation: str
    object: str
    status: str
    start: QPointF
    end: QPointF


class BoxItem(QGraphicsRectItem):
    """One object's box with its name; the selected one shows 8 resize handles."""

    def __init__(self, obj: ObjectView, colour: QColor):
        super().__init__(obj.box.x0, obj.box.y0, obj.box.width, obj.box.height)
        self.obj = obj
        self.colour = colour
        pen = QPen(colour, 2)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QBrush(QColor(colour.red(), colour.green(), colour.blue(), 28)))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setZValue(2)
        self.label = QGraphicsSimpleTextItem(obj.name, self)
        self.label.setBrush(QBrush(colour))
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.label.setPos(obj.box.x0, obj.box.y0)

    def handles(self, scale: float) -> dict[str, QRectF]:
        """Handle name ("tl", "t", ..., "br") -> its rectangle in scene coordinates."""
        r, h = self.rect(), HANDLE_PX / scale
        xs = {"l": r.left(), "c": r.center().x(), "r": r.right()}
        ys = {"t": r.top(), "m": r.center().y(), "b": r.bottom()}
        out = {}
        for yk, y in ys.items():
            for xk, x in xs.items():
                if (xk, yk) != ("c", "m"):
                    out[(yk + xk).replace("m", "").replace("c", "")] = QRectF(x - h / 2, y - h / 2, h, h)
        return out

    def paint(self, painter: QPainter, option, widget=None) -> None:
        super().paint(painter, option, widget)
        if self.isSelected():
            scale = painter.worldTransform().m11() or 1.0
            painter.setPen(QPen(self.colour, 0))
            painter.setBrush(QBrush(QColor("white")))
            for rect in self.handles(scale).values():
                painter.drawRect(rect)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-HANDLE_PX, -HANDLE_PX, HANDLE_PX, HANDLE_PX)


class SceneCanvas(QGraphicsView):
    boxDrawn = Signal(object)  # Box
    boxChanged = Signal(int, object)  # object id, Box
    objectSelected = Signal(int)  # -1: nothing
    deleteRequested = Signal(int)
    renameRequested = Signal(int)
    stampPlaced = Signal(str, object)  # stamp id, Box

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QBrush(QColor("#3a3a3a")))
        self.mode = "select"
        self.size = (0, 0)
        self.key: tuple | None = None  # what scene is shown (for keeping the zoom)
        self.image_item: QGraphicsPixmapItem | None = None
        self.boxes: dict[int, BoxItem] = {}
        self.arrows: list[tuple[ArrowInfo, QGraphicsPathItem]] = []
        self.stamp: tuple[str, int] | None = None
        self.preview: QGraphicsPixmapItem | None = None
        self._stamp_pixmaps: dict[tuple[str, int, int], QPixmap] = {}
        self._drag: dict | None = None
        self.rubber: QGraphicsRectItem | None = None
        #: fitted to the window (and kept fitted as it resizes) until the user zooms
        self.auto_fit = True

    # -- what is shown -------------------------------------------------------------------------------
    def clear(self) -> None:
        self.scene().clear()
        self.image_item, self.preview, self.rubber, self.key = None, None, None, None
        self.boxes, self.arrows = {}, []

    def show_scene(self, image_path: str | None, width: int, height: int, objects: list[ObjectView],
                   labels: list[Label]) -> None:
        selected = self.selected_object()
        key = (image_path is None, width, height, tuple(sorted(o.name for o in objects)) if image_path is None
               else image_path)
        same = self.key is not None and self.key[1:3] == key[1:3] and (image_path is None) == self.key[0]
        self.clear()
        self.size = (width, height)
        self.scene().setSceneRect(QRectF(0, 0, width, height))
        if image_path is not None:
            pm = QPixmap(image_path)
        else:
            pm = QPixmap(width, height)
            pm.fill(QColor("white"))
        self.image_item = self.scene().addPixmap(pm)
        self.image_item.setZValue(0)
        if image_path is None:
            for o in objects:
                if o.stamp:
                    self._draw_stamp(o)
        for i, o in enumerate(objects):
            item = BoxItem(o, QColor(PALETTE[i % len(PALETTE)]))
            self.scene().addItem(item)
            self.boxes[o.id] = item
        names = {o.name: o for o in objects}
        for lb in labels:
            if lb.status == "rejected" or lb.subject not in names or lb.object not in names:
                continue
            a, b = names[lb.subject].box.center, names[lb.object].box.center
            info = ArrowInfo(lb.subject, lb.relation, lb.object, lb.status, QPointF(*a), QPointF(*b))
            self.arrows.append((info, self._arrow(info)))
        self.key = key
        self._update_smoothing()
        if not same:
            self.fit()
        if selected is not None and selected in self.boxes:
            self.select_object(selected)

    def _draw_stamp(self, o: ObjectView) -> None:
        w, h = max(1, round(o.box.width)), max(1, round(o.box.height))
        k = (o.stamp or "", w, h)
        if k not in self._stamp_pixmaps:
            img = stamp_from_id(o.stamp).render(max(w, h))
            self._stamp_pixmaps[k] = _pixmap(img).scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                        Qt.TransformationMode.SmoothTransformation)
        item = self.scene().addPixmap(self._stamp_pixmaps[k])
        item.setPos(o.box.x0, o.box.y0)
        item.setZValue(1)

    def _arrow(self, info: ArrowInfo) -> QGraphicsPathItem:
        colour = CONFIRMED if info.status == "confirmed" else SUGGESTED
        line = QLineF(info.start, info.end)
        if line.length() > 1e-6:  # a pair labelled both ways gets two arrows side by side
            n = line.normalVector().unitVector()
            shift = 0.01 * max(self.size)
            line.translate(QPointF(n.dx() * shift, n.dy() * shift))
        start, end = line.p1(), line.p2()
        path = QPainterPath(start)
        path.lineTo(end)
        if line.length() > 1e-6:  # the head at the object (anchor) end
            angle = math.atan2(line.dy(), line.dx())
            size = max(6.0, 0.03 * max(self.size))
            for da in (2.6, -2.6):
                path.moveTo(end)
                path.lineTo(end + QPointF(size * math.cos(angle + da), size * math.sin(angle + da)))
        pen = QPen(colour, 2, Qt.PenStyle.SolidLine if info.status == "confirmed" else Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        item = self.scene().addPath(path, pen)
        item.setZValue(3)
        text = self.scene().addSimpleText(info.relation)
        text.setBrush(QBrush(colour))
        text.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        text.setPos(line.pointAt(0.3))  # near the subject, so that the two directions' names part
        text.setZValue(4)
        return item

    def arrow_items(self) -> list[ArrowInfo]:
        return [info for info, _ in self.arrows]

    def box_items(self) -> dict[int, BoxItem]:
        return dict(self.boxes)

    # -- zoom ------------------------------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        scale = self.transform().m11() * factor
        if 0.02 <= scale <= 64:
            self.auto_fit = False
            self.scale(factor, factor)
            self._update_smoothing()

    def zoom_in(self) -> None:
        self.zoom(1.25)

    def zoom_out(self) -> None:
        self.zoom(0.8)

    def fit(self) -> None:
        if self.size != (0, 0):
            self.setTransform(QTransform())
            self.fitInView(QRectF(0, 0, *self.size), Qt.AspectRatioMode.KeepAspectRatio)
            self.auto_fit = True
            self._update_smoothing()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.auto_fit:
            self.fit()

    def _update_smoothing(self) -> None:
        """Crisp pixels when zoomed in beyond 100%, smooth when zoomed out."""
        if self.image_item is not None:
            smooth = self.transform().m11() <= 1.0
            self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation if smooth
                                                  else Qt.TransformationMode.FastTransformation)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)
        else:
            super().wheelEvent(event)

    # -- modes and selection --------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in ("select", "box", "stamp"):
            raise ValueError(mode)
        self.mode = mode
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if mode != "select" else Qt.CursorShape.ArrowCursor)
        if mode != "stamp" and self.preview is not None:
            self.scene().removeItem(self.preview)
            self.preview = None

    def set_stamp(self, stamp_id: str, long_side: int) -> None:
        self.stamp = (stamp_id, long_side)
        if self.preview is not None:
            self.scene().removeItem(self.preview)
            self.preview = None

    def select_object(self, object_id: int) -> None:
        self.scene().clearSelection()
        if object_id in self.boxes:
            self.boxes[object_id].setSelected(True)

    def selected_object(self) -> int | None:
        return next((oid for oid, item in self.boxes.items() if item.isSelected()), None)

    # -- mouse ------------------------------------------------------------------------------------------
    def _clip(self, r: QRectF) -> QRectF:
        return r.normalized().intersected(QRectF(0, 0, *self.size))

    def _stamp_box(self, at: QPointF) -> Box | None:
        if self.stamp is None:
            return None
        stamp_id, side = self.stamp
        img = stamp_from_id(stamp_id).render(side)
        w, h = min(img.width, self.size[0]), min(img.height, self.size[1])
        x0 = min(max(at.x() - w / 2, 0), self.size[0] - w)
        y0 = min(max(at.y() - h / 2, 0), self.size[1] - h)
        return Box(x0, y0, x0 + w, y0 + h)

    def mousePressEvent(self, event) -> None:
        at = self.mapToScene(event.position().toPoint())
        if event.button() != Qt.MouseButton.LeftButton or self.size == (0, 0):
            return super().mousePressEvent(event)
        if self.mode == "box":
            self._drag = {"kind": "draw", "start": at}
            self.rubber = self.scene().addRect(QRectF(at, at), QPen(QColor("#00a0ff"), 0, Qt.PenStyle.DashLine))
            self.rubber.setZValue(5)
            return
        if self.mode == "stamp":
            box = self._stamp_box(at)
            if box is not None:
                self.stampPlaced.emit(self.stamp[0], box)
            return
        scale = self.transform().m11() or 1.0
        sel = self.selected_object()
        if sel is not None:  # a handle of the selected box?
            for name, rect in self.boxes[sel].handles(scale).items():
                if rect.contains(at):
                    self._drag = {"kind": "resize", "id": sel, "handle": name, "rect": self.boxes[sel].rect()}
                    return
        hit = next((oid for oid, item in sorted(self.boxes.items(), key=lambda kv: kv[1].rect().width()
                                                * kv[1].rect().height()) if item.rect().contains(at)), None)
        self.select_object(hit if hit is not None else -1)
        self.objectSelected.emit(hit if hit is not None else -1)
        if hit is not None:
            self._drag = {"kind": "move", "id": hit, "start": at, "rect": self.boxes[hit].rect()}
        else:
            self._drag = {"kind": "pan", "start": event.position()}

    def mouseMoveEvent(self, event) -> None:
        at = self.mapToScene(event.position().toPoint())
        if self.mode == "stamp" and self.stamp is not None and self.size != (0, 0):
            self._move_preview(at)
        d = self._drag
        if d is None:
            return super().mouseMoveEvent(event)
        if d["kind"] == "draw" and self.rubber is not None:
            self.rubber.setRect(QRectF(d["start"], at).normalized())
        elif d["kind"] == "move":
            r = QRectF(d["rect"]).translated(at - d["start"])
            r.moveLeft(min(max(r.left(), 0), self.size[0] - r.width()))
            r.moveTop(min(max(r.top(), 0), self.size[1] - r.height()))
            self.boxes[d["id"]].setRect(r)
            self.boxes[d["id"]].label.setPos(r.topLeft())
        elif d["kind"] == "resize":
            r = QRectF(d["rect"])
            h = d["handle"]
            if "l" in h:
                r.setLeft(at.x())
            if "r" in h:
                r.setRight(at.x())
            if "t" in h:
                r.setTop(at.y())
            if "b" in h:
                r.setBottom(at.y())
            r = self._clip(r)
            self.boxes[d["id"]].setRect(r)
            self.boxes[d["id"]].label.setPos(r.topLeft())
        elif d["kind"] == "pan":
            delta = event.position() - d["start"]
            d["start"] = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))

    def mouseReleaseEvent(self, event) -> None:
        d, self._drag = self._drag, None
        if d is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        if d["kind"] == "draw" and self.rubber is not None:
            r = self._clip(self.rubber.rect())
            self.scene().removeItem(self.rubber)
            self.rubber = None
            if r.width() >= MIN_BOX and r.height() >= MIN_BOX:
                self.boxDrawn.emit(_box(r))
        elif d["kind"] in ("move", "resize"):
            r = self._clip(self.boxes[d["id"]].rect())
            if r != d["rect"] and r.width() >= 1 and r.height() >= 1:
                self.boxChanged.emit(d["id"], _box(r))

    def mouseDoubleClickEvent(self, event) -> None:
        oid = self.selected_object()
        if oid is not None and self.mode == "select":
            self.renameRequested.emit(oid)
        else:
            super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event) -> None:
        oid = self.selected_object()
        if oid is not None and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deleteRequested.emit(oid)
            return
        super().keyPressEvent(event)

    def _move_preview(self, at: QPointF) -> None:
        box = self._stamp_box(at)
        if box is None:
            return
        if self.preview is None:
            stamp_id, side = self.stamp
            self.preview = self.scene().addPixmap(_pixmap(stamp_from_id(stamp_id).render(side)))
            self.preview.setOpacity(0.5)
            self.preview.setZValue(6)
        self.preview.setPos(box.x0, box.y0)
