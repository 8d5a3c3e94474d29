"""The stamp palette: the procedural objects and the user's own cut-outs (PNG with alpha, copied
into the data folder's stamps/), to place on a drawn scene."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QFileDialog, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout, QWidget

from mfv_desktop.scenes import CutoutStamp, SceneError, Stamp, procedural_stamps

ICON = 48


def _icon(stamp: Stamp, cache: Path) -> QIcon:
    """The stamp's icon; a procedural stamp's is drawn once into the disk cache (start-up stays fast)."""
    cached = cache / f"{stamp.id.replace(':', '-')}-{ICON}.png"
    if stamp.id.startswith("procedural:") and cached.is_file():
        return QIcon(str(cached))
    img = stamp.render(ICON).convert("RGBA")
    if stamp.id.startswith("procedural:"):
        cache.mkdir(parents=True, exist_ok=True)
        img.save(cached)
    q = QImage(img.tobytes("raw", "RGBA"), img.width, img.height, 4 * img.width, QImage.Format.Format_RGBA8888)
    return QIcon(QPixmap.fromImage(q.copy()))


class StampPalette(QWidget):
    """Emits `stampChosen(stamp_id, name)` when the user picks a stamp."""

    stampChosen = Signal(str, str)

    def __init__(self, stamps_dir: Path, cache: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.stamps_dir, self.cache = stamps_dir, cache
        self.list = QListWidget(self)
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setGridSize(QSize(ICON + 28, ICON + 28))
        self.list.currentItemChanged.connect(self._chosen)
        add = QPushButton("Add cut-out…", self)
        add.setToolTip("a PNG with a transparent background; its file name is the object's name")
        add.clicked.connect(self.ask_cutout)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(add)
        self.stamps: dict[str, Stamp] = {}
        for stamp in procedural_stamps():
            self._add(stamp)
        for png in sorted(stamps_dir.glob("*.png")) if stamps_dir.is_dir() else []:
            try:
                self._add(CutoutStamp(png))
            except SceneError:
                continue

    def _add(self, stamp: Stamp) -> QListWidgetItem:
        item = QListWidgetItem(_icon(stamp, self.cache), stamp.name)
        item.setData(Qt.ItemDataRole.UserRole, stamp.id)
        item.setToolTip(stamp.id)
        self.list.addItem(item)
        self.stamps[stamp.id] = stamp
        return item

    def _chosen(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.stampChosen.emit(item.data(Qt.ItemDataRole.UserRole), item.text())

    def choose(self, stamp_id: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == stamp_id:
                self.list.setCurrentRow(i)
                return

    def add_cutout(self, path: str | Path) -> str:
        """Copy a cut-out into the data folder and add it; returns its stamp id."""
        self.stamps_dir.mkdir(parents=True, exist_ok=True)
        dest = self.stamps_dir / Path(path).name
        CutoutStamp(path)  # refuse a bad picture before copying it
        shutil.copyfile(path, dest)
        item = self._add(CutoutStamp(dest))
        self.list.setCurrentItem(item)
        return item.data(Qt.ItemDataRole.UserRole)

    def ask_cutout(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a cut-out", "", "Images (*.png *.webp *.tif *.tiff)")
        if path:
            try:
                self.add_cutout(path)
            except SceneError as e:
                QMessageBox.warning(self, "Not a cut-out", str(e))
