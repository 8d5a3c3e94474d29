"""The canvas's graphics items: an object's box with its name tag and resize handles, the tag itself
(also used for the scene view's badges), the relation arrows' record, and the colours and pens they
share. Scene coordinates are image pixels."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QStyle,
    QStyleOptionGraphicsItem,
    QWidget,
)

from mfv_desktop.scenes import Box
from mfv_desktop.store.scenes import ObjectView

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
CONFIRMED, SUGGESTED = QColor("#1b7a2f"), QColor("#e08a00")
HANDLE_PX = 8  # on screen, whatever the zoom
_IGNORE_ZOOM = QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations


def _pixmap(img: Image.Image) -> QPixmap:
    """A PIL image as a QPixmap (RGBA)."""
    rgba = img.convert("RGBA")
    q = QImage(rgba.tobytes("raw", "RGBA"), rgba.width, rgba.height, 4 * rgba.width, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(q.copy())


def _box(r: QRectF) -> Box:
    return Box(r.left(), r.top(), r.right(), r.bottom())


def _cosmetic(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen of `width` screen pixels whatever the zoom."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


def tag_item(
    text: str, ink: QColor, fill: QColor, parent: QGraphicsItem | None, origin: str = "bottom-left", bold: bool = False
) -> tuple[QGraphicsRectItem, QGraphicsSimpleTextItem]:
    """A text on a filled rectangle, of constant on-screen size; its position is its bottom-left
    corner, its top-left corner or its centre (`origin`)."""
    tag = QGraphicsRectItem(parent)
    tag.setFlag(_IGNORE_ZOOM, True)
    tag.setBrush(QBrush(fill))
    tag.setPen(QPen(Qt.PenStyle.NoPen))
    label = QGraphicsSimpleTextItem(text, tag)
    label.setBrush(QBrush(ink))
    if bold:
        font = QFont(label.font())
        font.setBold(True)
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 1.15)
        label.setFont(font)
    w, h = label.boundingRect().width() + 6, label.boundingRect().height() + 2
    tag.setRect(
        {"bottom-left": QRectF(0, -h, w, h), "top-left": QRectF(0, 0, w, h), "centre": QRectF(-w / 2, -h / 2, w, h)}[
            origin
        ]
    )
    label.setPos(tag.rect().left() + 3, tag.rect().top() + 1)
    return tag, label


@dataclass
class ArrowInfo:
    """A drawn relation: an arrow from the subject's box centre to the object's (the anchor's)."""

    subject: str
    relation: str
    object: str
    status: str
    start: QPointF
    end: QPointF


class BoxItem(QGraphicsRectItem):
    """One object's box with its name in a tag above it; the selected one is drawn thicker and shows
    8 resize handles ("tl", "t", "tr", "l", "r", "bl", "b", "br") of constant on-screen size."""

    def __init__(self, obj: ObjectView, colour: QColor):
        super().__init__()
        self.obj, self.colour = obj, colour
        self.setBrush(QBrush(QColor(colour.red(), colour.green(), colour.blue(), 28)))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setZValue(2)
        self.tag, self.label = tag_item(obj.name, QColor("white"), colour, self)
        self.handle_items: dict[str, QGraphicsRectItem] = {}
        for name in self._points():
            h = QGraphicsRectItem(-HANDLE_PX / 2, -HANDLE_PX / 2, HANDLE_PX, HANDLE_PX, self)
            h.setFlag(_IGNORE_ZOOM, True)
            h.setPen(_cosmetic(colour, 1))
            h.setBrush(QBrush(QColor("white")))
            self.handle_items[name] = h
        self.set_rect(QRectF(obj.box.x0, obj.box.y0, obj.box.width, obj.box.height))
        self._show_selected(False)

    def _points(self) -> dict[str, QPointF]:
        r = self.rect()
        xs = {"l": r.left(), "": r.center().x(), "r": r.right()}
        ys = {"t": r.top(), "": r.center().y(), "b": r.bottom()}
        return {yk + xk: QPointF(x, y) for yk, y in ys.items() for xk, x in xs.items() if yk + xk}

    def set_rect(self, r: QRectF) -> None:
        """Move the box (with its tag and handles) to `r`, in image pixels."""
        self.setRect(r)
        self.tag.setPos(r.topLeft())
        for name, p in self._points().items():
            self.handle_items[name].setPos(p)

    def handle_at(self, at: QPointF, scale: float) -> str | None:
        """The handle under scene point `at` at view scale `scale` (corners first), or None."""
        reach = (HANDLE_PX / 2 + 2) / scale
        hits = [n for n, p in self._points().items() if abs(at.x() - p.x()) <= reach and abs(at.y() - p.y()) <= reach]
        return max(hits, key=len, default=None)

    def _show_selected(self, selected: bool) -> None:
        self.setPen(_cosmetic(self.colour, 3 if selected else 2))
        for h in self.handle_items.values():
            h.setVisible(selected)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        option.state &= ~QStyle.StateFlag.State_Selected  # no dashed outline: a thick pen and handles instead
        super().paint(painter, option, widget)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self._show_selected(bool(value))
        return super().itemChange(change, value)
