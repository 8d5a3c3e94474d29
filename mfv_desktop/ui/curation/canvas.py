"""The scene canvas: an image (or a blank canvas with stamps) at any zoom, object boxes that can be
drawn, moved, resized and deleted, and relation arrows. It shows what it is given and emits what
the user asks for; the window turns those intents into undoable store edits and shows the scene
again. Scene coordinates are image pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PIL import Image
from PySide6.QtCore import QLineF, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPixmap, QTransform
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from mfv_desktop.scenes import Box, SceneError, stamp_from_id
from mfv_desktop.store.scenes import Label, ObjectView

from .items import CONFIRMED, HANDLE_PX, PALETTE, SUGGESTED, ArrowInfo, BoxItem, _box, _cosmetic, _pixmap, tag_item

#: the graphics items live in items.py; the colours and sizes callers read are still here
__all__ = ["CONFIRMED", "HANDLE_PX", "MIN_BOX", "MODES", "PALETTE", "SUGGESTED", "ArrowInfo", "BoxItem", "SceneCanvas"]

MIN_BOX = 4  # a drawn box must be larger than this (image pixels) both ways
MODES = ("select", "box", "stamp")


@dataclass
class _Drag:
    kind: str  # "draw" | "move" | "resize" | "pan"
    start: QPointF  # scene position ("pan": viewport position)
    oid: int = -1
    rect: QRectF = field(default_factory=QRectF)  # the box before the drag ("move", "resize")
    handle: str = ""


class SceneCanvas(QGraphicsView):
    """Shows a scene (`show_scene`) and emits intents; modes "select", "box" and "stamp" (`set_mode`)."""

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
        self.image_size = (0, 0)
        self.image_item: QGraphicsPixmapItem | None = None
        self.boxes: dict[int, BoxItem] = {}
        self.arrows: list[tuple[ArrowInfo, QGraphicsPathItem]] = []
        self.stamp: tuple[str, QPixmap] | None = None  # the armed stamp and its picture
        self.preview: QGraphicsPixmapItem | None = None
        self.rubber: QGraphicsRectItem | None = None
        self._drag: _Drag | None = None
        self._shown: tuple | None = None  # (image path, width, height, object ids): to keep the zoom
        self._stamp_pixmaps: dict[tuple[str, int, int], QPixmap | None] = {}
        #: fitted to the window (and kept fitted as it resizes) until the user zooms
        self.auto_fit = True

    # -- what is shown -------------------------------------------------------------------------------
    def clear(self) -> None:
        """Show nothing."""
        self.scene().clear()
        self.scene().setSceneRect(QRectF())
        self.image_size = (0, 0)
        self.image_item = self.preview = self.rubber = self._drag = self._shown = None
        self.boxes, self.arrows = {}, []

    def show_scene(
        self, image_path: str | None, width: int, height: int, objects: list[ObjectView], labels: list[Label]
    ) -> None:
        """Show an image (None: a white width x height canvas with the objects' stamps) with boxes and
        arrows. The zoom and the selection stay when the same scene is shown again; a new one is fitted."""
        path = None if image_path is None else str(image_path)
        ids = frozenset(o.id for o in objects)
        prev, selected = self._shown, self.selected_object()
        # the same scene: same image and size, and (for drawn scenes, all of one size) objects in common
        same = (
            prev is not None and prev[:3] == (path, width, height) and not (prev[3] and ids and prev[3].isdisjoint(ids))
        )
        self.clear()
        self.image_size = (width, height)
        self.scene().setSceneRect(QRectF(0, 0, width, height))
        if path is not None:
            pm = QPixmap(path)
        else:
            pm = QPixmap(width, height)
            pm.fill(QColor("white"))
        self.image_item = self.scene().addPixmap(pm)
        for i, o in enumerate(objects):
            if path is None and o.stamp:
                self._draw_stamp(o)
            self.boxes[o.id] = BoxItem(o, QColor(PALETTE[i % len(PALETTE)]))
            self.scene().addItem(self.boxes[o.id])
        names = {o.name: o for o in objects}
        for lb in labels:
            if lb.status != "rejected" and lb.subject in names and lb.object in names:
                info = ArrowInfo(
                    lb.subject,
                    lb.relation,
                    lb.object,
                    lb.status,
                    QPointF(*names[lb.subject].box.center),
                    QPointF(*names[lb.object].box.center),
                )
                self.arrows.append((info, self._arrow(info)))
        self._shown = (path, width, height, ids)
        if same:
            self._update_smoothing()
        else:
            self.fit()
        if selected in self.boxes:
            self.select_object(selected)

    def _stamp_pixmap(self, stamp_id: str, w: int, h: int) -> QPixmap | None:
        """The stamp drawn to fill w x h (cached); None if it cannot be drawn (e.g. a missing cut-out)."""
        key = (stamp_id, w, h)
        if key not in self._stamp_pixmaps:
            if len(self._stamp_pixmaps) > 256:
                self._stamp_pixmaps.clear()
            try:
                img = stamp_from_id(stamp_id).render(max(w, h)).resize((w, h), Image.Resampling.LANCZOS)
                self._stamp_pixmaps[key] = _pixmap(img)
            except (SceneError, OSError):
                self._stamp_pixmaps[key] = None
        return self._stamp_pixmaps[key]

    def _draw_stamp(self, o: ObjectView) -> None:
        pm = self._stamp_pixmap(o.stamp or "", max(1, round(o.box.width)), max(1, round(o.box.height)))
        if pm is not None:
            item = self.scene().addPixmap(pm)
            item.setPos(o.box.x0, o.box.y0)
            item.setZValue(1)

    def _arrow(self, info: ArrowInfo) -> QGraphicsPathItem:
        colour = CONFIRMED if info.status == "confirmed" else SUGGESTED
        line, path = QLineF(info.start, info.end), QPainterPath()
        if line.length() > 1e-6:
            n = line.normalVector().unitVector()  # a pair labelled both ways gets two arrows side by side
            shift = 0.01 * max(self.image_size)
            line.translate(QPointF(n.dx() * shift, n.dy() * shift))
            path.moveTo(line.p1())
            path.lineTo(line.p2())
            angle, size = math.atan2(line.dy(), line.dx()), max(6.0, 0.03 * max(self.image_size))
            for da in (2.6, -2.6):  # the head at the object (anchor) end
                path.moveTo(line.p2())
                path.lineTo(line.p2() + QPointF(size * math.cos(angle + da), size * math.sin(angle + da)))
        style = Qt.PenStyle.SolidLine if info.status == "confirmed" else Qt.PenStyle.DashLine
        item = self.scene().addPath(path, _cosmetic(colour, 2, style))
        item.setZValue(3)
        tag, _ = tag_item(info.relation, colour, QColor(255, 255, 255, 200), None, origin="centre")
        self.scene().addItem(tag)
        tag.setPos(line.pointAt(0.4))  # off the middle, toward the subject, so that both directions' names part
        tag.setZValue(4)
        return item

    def arrow_items(self) -> list[ArrowInfo]:
        return [info for info, _ in self.arrows]

    def box_items(self) -> dict[int, BoxItem]:
        return dict(self.boxes)

    def global_rect(self, box: Box) -> QRect:
        """Where a box (image pixels) is on the screen: for a dialog to stand beside it."""
        shown = self.mapFromScene(QRectF(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0)).boundingRect()
        shown = shown.intersected(self.viewport().rect())  # the part that is in view
        return QRect(self.viewport().mapToGlobal(shown.topLeft()), shown.size())

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
        """Fit the whole image in the window (and keep it fitted as the window resizes)."""
        if self.image_size != (0, 0):
            self.setTransform(QTransform())
            self.fitInView(QRectF(0, 0, *self.image_size), Qt.AspectRatioMode.KeepAspectRatio)
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
            self.image_item.setTransformationMode(
                Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
            )

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)
        else:
            super().wheelEvent(event)

    # -- modes and selection --------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown canvas mode {mode!r}: use one of {MODES}")
        self.mode = mode
        self.viewport().setCursor(Qt.CursorShape.ArrowCursor if mode == "select" else Qt.CursorShape.CrossCursor)
        self._hide_preview()

    def set_stamp(self, stamp_id: str, long_side: int) -> None:
        """Arm a stamp for "stamp" mode (SceneError if it cannot be drawn)."""
        self.stamp = (stamp_id, _pixmap(stamp_from_id(stamp_id).render(long_side)))
        self._hide_preview()

    def select_object(self, object_id: int) -> None:
        """Select a box (an unknown id, e.g. -1: none)."""
        self.scene().clearSelection()
        if object_id in self.boxes:
            self.boxes[object_id].setSelected(True)

    def selected_object(self) -> int | None:
        return next((oid for oid, item in self.boxes.items() if item.isSelected()), None)

    # -- mouse and keys ------------------------------------------------------------------------------------
    def _scale(self) -> float:
        return self.transform().m11() or 1.0

    def _clip(self, r: QRectF) -> QRectF:
        return r.normalized().intersected(QRectF(0, 0, *self.image_size))

    def _hit(self, at: QPointF) -> int | None:
        """The smallest box under scene point `at`."""
        under = [
            (item.rect().width() * item.rect().height(), oid)
            for oid, item in self.boxes.items()
            if item.rect().contains(at)
        ]
        return min(under)[1] if under else None

    def _stamp_box(self, at: QPointF) -> Box | None:
        """Where the armed stamp goes when clicked at `at`: centred there, shrunk and moved into the image."""
        if self.stamp is None or self.image_size == (0, 0):
            return None
        pm, (iw, ih) = self.stamp[1], self.image_size
        s = min(1.0, iw / pm.width(), ih / pm.height())
        w, h = pm.width() * s, pm.height() * s
        x0, y0 = min(max(at.x() - w / 2, 0), iw - w), min(max(at.y() - h / 2, 0), ih - h)
        return Box(x0, y0, x0 + w, y0 + h)

    def _move_preview(self, at: QPointF) -> None:
        box = self._stamp_box(at)
        if box is None or self.stamp is None:
            return
        pixmap = self.stamp[1]
        if self.preview is None:
            self.preview = self.scene().addPixmap(pixmap)
            self.preview.setOpacity(0.5)
            self.preview.setZValue(6)
        self.preview.setScale(box.width / pixmap.width())
        self.preview.setPos(box.x0, box.y0)

    def _hide_preview(self) -> None:
        if self.preview is not None:
            self.scene().removeItem(self.preview)
            self.preview = None

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.image_size == (0, 0):
            return super().mousePressEvent(event)
        at = self.mapToScene(event.position().toPoint())
        if self.mode == "box":
            self._drag = _Drag("draw", at)
            self.rubber = self.scene().addRect(QRectF(at, at), _cosmetic(QColor("#00a0ff"), 1, Qt.PenStyle.DashLine))
            self.rubber.setZValue(5)
        elif self.mode == "stamp":
            box = self._stamp_box(at)
            if box is not None and self.stamp is not None:
                self.stampPlaced.emit(self.stamp[0], box)
        else:
            sel = self.selected_object()
            handle = self.boxes[sel].handle_at(at, self._scale()) if sel is not None else None
            if sel is not None and handle is not None:
                self._drag = _Drag("resize", at, sel, self.boxes[sel].rect(), handle)
                return
            hit = self._hit(at)
            self.select_object(-1 if hit is None else hit)
            self.objectSelected.emit(-1 if hit is None else hit)  # the window may show the scene again
            if hit is not None and hit in self.boxes:
                self._drag = _Drag("move", at, hit, self.boxes[hit].rect())
            else:
                self._drag = _Drag("pan", event.position())

    def _dragged(self, d: _Drag, at: QPointF) -> QRectF:
        """The box being moved or resized, with the mouse at scene point `at`, kept in the image."""
        r = QRectF(d.rect)
        if d.kind == "move":
            r.translate(at - d.start)
            r.moveLeft(min(max(r.left(), 0), self.image_size[0] - r.width()))
            r.moveTop(min(max(r.top(), 0), self.image_size[1] - r.height()))
            return r
        for side, setter, value in (
            ("l", r.setLeft, at.x()),
            ("r", r.setRight, at.x()),
            ("t", r.setTop, at.y()),
            ("b", r.setBottom, at.y()),
        ):
            if side in d.handle:
                setter(value)
        return self._clip(r)

    def mouseMoveEvent(self, event) -> None:
        at = self.mapToScene(event.position().toPoint())
        if self.mode == "stamp":
            self._move_preview(at)
        d = self._drag
        if d is None:
            return super().mouseMoveEvent(event)
        if d.kind == "draw" and self.rubber is not None:
            self.rubber.setRect(QRectF(d.start, at).normalized())
        elif d.kind == "pan":
            delta, d.start = event.position() - d.start, event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        elif d.oid in self.boxes:
            self.boxes[d.oid].set_rect(self._dragged(d, at))

    def mouseReleaseEvent(self, event) -> None:
        d, self._drag = self._drag, None
        if d is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        if d.kind == "draw" and self.rubber is not None:
            rubber = self.rubber
            r = self._clip(rubber.rect())
            rubber.setRect(r)  # the box as it is stored stays in view while its name is asked
            if r.width() > MIN_BOX and r.height() > MIN_BOX:
                self.boxDrawn.emit(_box(r))
            if self.rubber is rubber:  # not gone with a redraw of the scene meanwhile
                self.scene().removeItem(rubber)
                self.rubber = None
        elif d.kind in ("move", "resize") and d.oid in self.boxes:
            item = self.boxes[d.oid]
            r = self._clip(item.rect())
            if r != d.rect and r.width() >= 1 and r.height() >= 1:
                self.boxChanged.emit(d.oid, _box(r))  # once, on release; the window shows the scene again
            else:
                item.set_rect(d.rect)

    def mouseDoubleClickEvent(self, event) -> None:
        hit = self._hit(self.mapToScene(event.position().toPoint())) if self.mode == "select" else None
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select_object(hit)
            self.renameRequested.emit(hit)
        else:
            self.mousePressEvent(event)  # a second click, as QWidget does

    def keyPressEvent(self, event) -> None:
        oid = self.selected_object()
        if oid is not None and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deleteRequested.emit(oid)
        else:
            super().keyPressEvent(event)

    def leaveEvent(self, event) -> None:
        self._hide_preview()
        super().leaveEvent(event)
