"""A prompt's images for the prompt viewer: found again (the recorded path, the store's copy, the
scene's image), scaled once and kept; a strip of thumbnails per prompt, and a shot drawn large with
its anchor and answer outlined."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImageReader, QPainter, QPen, QPixmap

from mfv_desktop.store import Store
from mfv_desktop.store.prompts import ShotImage, shot_image
from mfv_desktop.tasks import Shot

ANCHOR_BOX, ANSWER_BOX = "#1e64ff", "#00a651"


class Images:
    """Shots' images found again (the recorded path, the store's copy, the scene's image) and their
    scaled pixmaps, made on first request and kept."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._found: dict[tuple[str, str], ShotImage] = {}
        self._pixmaps: dict[tuple[Path, int], QPixmap] = {}

    def find(self, shot: Shot) -> ShotImage:
        key = (shot.scene_id, shot.image)
        if key not in self._found:
            self._found[key] = shot_image(self.store, shot.scene_id, shot.image)
        return self._found[key]

    def pixmap(self, path: Path, height: int) -> QPixmap:
        key = (path, height)
        if key not in self._pixmaps:
            reader = QImageReader(str(path))
            reader.setAutoTransform(True)
            size = reader.size()
            if size.isValid() and size.height() > height:
                reader.setScaledSize(size.scaled(10**6, height, Qt.AspectRatioMode.KeepAspectRatio))
            self._pixmaps[key] = QPixmap.fromImage(reader.read())
        return self._pixmaps[key]

    def thumbs(self, shots: list[Shot], height: int = 44) -> QPixmap:
        """The demonstrations' and the query's images side by side; the query framed, a missing
        image as a grey box with a question mark."""
        tiles = []
        for shot in shots:
            found = self.find(shot).path
            pm = self.pixmap(found, height) if found is not None else QPixmap()
            tiles.append(pm if not pm.isNull() else None)
        widths = [t.width() if t is not None else height for t in tiles]
        strip = QPixmap(sum(widths) + 4 * len(tiles), height + 4)
        strip.fill(Qt.GlobalColor.transparent)
        p = QPainter(strip)
        x = 0
        for i, (tile, w) in enumerate(zip(tiles, widths)):
            if tile is None:
                p.fillRect(x + 2, 2, w, height, QColor("#9a9a9a"))
                p.drawText(x + 2, 2, w, height, Qt.AlignmentFlag.AlignCenter, "?")
            else:
                p.drawPixmap(x + 2, 2, tile)
            if i == len(tiles) - 1:  # the query
                p.setPen(QPen(QColor(ANCHOR_BOX), 2))
                p.drawRect(x + 1, 1, w + 1, height + 1)
            x += w + 4
        p.end()
        return strip

    def outlined(self, shot: Shot, height: int, answer: str | None) -> QPixmap | None:
        """A shot's image at `height` with its anchor (blue) and answer (green) boxes, or None."""
        found = self.find(shot)
        if found.path is None:
            return None
        full = self.pixmap(found.path, 10**6)
        if full.isNull():
            return None
        pm = full.scaledToHeight(height, Qt.TransformationMode.SmoothTransformation)
        scale = pm.height() / max(full.height(), 1)
        p = QPainter(pm)
        for name, colour in ((shot.anchor, ANCHOR_BOX), (answer, ANSWER_BOX)):
            box = found.boxes.get(name or "")
            if box is not None:
                p.setPen(QPen(QColor(colour), 3))
                x0, y0, x1, y1 = (v * scale for v in box)
                p.drawRect(round(x0), round(y0), round(x1 - x0), round(y1 - y0))
        p.end()
        return pm
