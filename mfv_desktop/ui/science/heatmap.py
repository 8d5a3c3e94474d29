"""An AIE heatmap: layers x heads, a colour bar, the value under the mouse, heads picked by clicking.

Rows are layers (0 at the top), columns heads. The top-k heads are outlined; clicked heads are
the selection (click again to drop one; drag a rectangle to add a block of heads), which the
vector builder reads. `set_aie` may be called again and again while a job fills the matrix in.
Until there is a matrix the map says what it waits for (`set_message`); below it, what was measured
(`set_measured`: the prompts kept and why, the clean accuracy, the corrupted baseline) and a legend
of the outlines. Plot colours follow the app's theme (ui/plot_theme.py).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from mfv_desktop.ui.plot_theme import follow_theme, style_plot_widget


class _BlockSelect(pg.ViewBox):
    """A view box that does not pan or zoom: a left drag draws a rectangle and reports its corners."""

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)
        self.on_block = lambda a, b: None
        self.band = pg.QtWidgets.QGraphicsRectItem()
        self.band.setPen(pg.mkPen("r", width=1.5, style=Qt.PenStyle.DashLine))
        self.band.hide()
        self.addItem(self.band, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        a, b = self.mapSceneToView(ev.buttonDownScenePos()), self.mapSceneToView(ev.scenePos())
        self.band.setRect(QRectF(a, b).normalized())
        self.band.setVisible(not ev.isFinish())
        if ev.isFinish():
            self.on_block(a, b)


class AIEHeatmap(QWidget):
    #: the selected heads changed: list of (layer, head)
    selection_changed = Signal(list)
    #: a head was double-clicked (layer, head): the AIE tab drills down into it; the selection
    #: follows the clicks as before
    head_activated = Signal(int, int)

    def __init__(self, title: str = "", top_k: int = 10, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.top_k = top_k
        self.aie: np.ndarray | None = None
        self.selected: list[tuple[int, int]] = []
        self.view = pg.GraphicsLayoutWidget()
        self.box = _BlockSelect()
        self.box.on_block = self._block
        self.plot = self.view.addPlot(title=title, viewBox=self.box)
        self.plot.setLabel("left", "layer")
        self.plot.setLabel("bottom", "head")
        self.plot.invertY(True)
        for axis in ("left", "bottom"):  # shown with the first matrix: an empty map is just its title
            self.plot.hideAxis(axis)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), label="AIE")
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.top_marks = pg.ScatterPlotItem(symbol="s", size=14, pen=pg.mkPen("w", width=1.5), brush=None, pxMode=True)
        self.sel_marks = pg.ScatterPlotItem(symbol="s", size=10, pen=pg.mkPen("r", width=2.5), brush=None, pxMode=True)
        self.plot.addItem(self.top_marks)
        self.plot.addItem(self.sel_marks)
        #: what the map waits for while it has no matrix ("computing mean activations…"), in its middle
        self.message = pg.TextItem("", anchor=(0.5, 0.5))
        self.message.setZValue(10)
        self.plot.addItem(self.message, ignoreBounds=True)
        self.message.hide()
        self.readout = QLabel("move over a head to read its AIE; click heads to select them")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        #: what was measured: the prompts kept and why, clean accuracy, corrupted baseline
        self.measured = QLabel()
        self.measured.setWordWrap(True)
        self.measured.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.measured.hide()
        #: what the outlines mean
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self._legend_text()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.legend)
        layout.addWidget(self.measured)
        follow_theme(self.view, self._restyle)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        self.plot.scene().sigMouseClicked.connect(self._click)

    # -- theme, messages, what was measured ---------------------------------------------------
    def _restyle(self) -> None:
        c = style_plot_widget(self.view)
        self.message.setColor(c.foreground)

    def _legend_text(self) -> None:
        self.legend.setText(
            f"outlines: <span style='color:#8a8a8a'>&#9633;</span> white = top {self.top_k} heads by AIE, "
            "<span style='color:#e00000'>&#9633;</span> red = selected"
        )

    def set_message(self, text: str) -> None:
        """Say what the map waits for (in its middle, while it has no matrix); "" hides the message."""
        self.message.setText(text)
        self.message.setVisible(bool(text) and self.aie is None)
        if text and self.aie is None:
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.message.setPos(0.5, 0.5)

    def message_text(self) -> str:
        """The message shown on the map ("" when none is shown)."""
        return self.message.toPlainText() if self.message.isVisible() else ""

    def set_measured(self, text: str) -> None:
        """What the matrix was measured on (shown below the map); "" hides it."""
        self.measured.setText(text)
        self.measured.setVisible(bool(text))

    def clear_aie(self, message: str = "") -> None:
        """Back to an empty map (no matrix, no outlines), with a message."""
        self.aie = None
        self.image.clear()
        self.top_marks.setData([], [])
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.set_message(message)

    # -- data ---------------------------------------------------------------------------------
    def set_aie(self, aie: np.ndarray, n_prompts: int | None = None, levels: tuple[float, float] | None = None) -> None:
        """Show a (layers, heads) matrix; `levels` fixes the colour range (to share it between maps)."""
        aie = np.asarray(aie, dtype=np.float64)
        first = self.aie is None or self.aie.shape != aie.shape
        self.aie = aie
        self.message.hide()
        self._legend_text()
        lo, hi = levels if levels is not None else (float(min(aie.min(), 0.0)), float(max(aie.max(), 1e-9)))
        self.image.setImage(aie.astype(np.float32), levels=(lo, hi))
        self.image.setRect(QRectF(-0.5, -0.5, aie.shape[1], aie.shape[0]))
        self.bar.setLevels((lo, hi))
        if first:
            for axis in ("left", "bottom"):
                self.plot.showAxis(axis)
            self.plot.setRange(xRange=(-0.5, aie.shape[1] - 0.5), yRange=(-0.5, aie.shape[0] - 0.5), padding=0)
        top = self.top_heads()
        self.top_marks.setData([h for _, h in top], [layer for layer, _ in top])
        if n_prompts is not None:
            self.plot.setTitle(f"{self.plot.titleLabel.text.split(' (')[0]} ({n_prompts} prompts)")
        self._draw_selection()

    def top_heads(self) -> list[tuple[int, int]]:
        if self.aie is None:
            return []
        order = np.argsort(-self.aie, axis=None, kind="stable")[: self.top_k]
        return [(int(i) // self.aie.shape[1], int(i) % self.aie.shape[1]) for i in order]

    def select(self, heads: list[tuple[int, int]]) -> None:
        self.selected = list(dict.fromkeys((int(a), int(b)) for a, b in heads))
        self._draw_selection()
        self.selection_changed.emit(list(self.selected))

    def select_top(self) -> None:
        self.select(self.top_heads())

    def export(self, path: str) -> None:
        """Save the map by the file's suffix: .png (as shown), .csv (layer, head0..) or .npy."""
        from pathlib import Path

        if self.aie is None:
            raise ValueError("there is no AIE to export yet")
        suffix = Path(path).suffix.lower()
        if suffix == ".png":
            if not self.view.grab().save(path):
                raise OSError(f"could not write {path}")
        elif suffix == ".csv":
            header = "layer," + ",".join(f"head{h}" for h in range(self.aie.shape[1]))
            rows = np.column_stack([np.arange(self.aie.shape[0]), self.aie])
            np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt=["%d"] + ["%.8g"] * self.aie.shape[1])
        elif suffix == ".npy":
            np.save(path, self.aie, allow_pickle=False)
        else:
            raise ValueError(f"cannot export to {suffix or 'a file without suffix'}: use .png, .csv or .npy")

    # -- mouse --------------------------------------------------------------------------------
    def head_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if self.aie is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.vb.mapSceneToView(scene_pos)
        layer, head = int(round(p.y())), int(round(p.x()))
        if 0 <= layer < self.aie.shape[0] and 0 <= head < self.aie.shape[1]:
            return layer, head
        return None

    def _hover(self, pos: QPointF) -> None:
        at = self.head_at(pos)
        if at is not None and self.aie is not None:
            layer, head = at
            rank = self.top_heads().index(at) + 1 if at in self.top_heads() else None
            self.readout.setText(
                f"layer {layer}, head {head}: AIE {self.aie[layer, head]:+.4f}" + (f" (top {rank})" if rank else "")
            )

    def _click(self, event) -> None:
        at = self.head_at(event.scenePos())
        if at is None:
            return
        if event.double():  # its first click selected (or dropped) the head already
            self.head_activated.emit(*at)
            return
        self.select([h for h in self.selected if h != at] if at in self.selected else [*self.selected, at])

    def _block(self, a: QPointF, b: QPointF) -> None:
        """Add every head inside a dragged rectangle to the selection."""
        if self.aie is None:
            return
        n_layers, n_heads = self.aie.shape
        l0, l1 = sorted((int(round(a.y())), int(round(b.y()))))
        h0, h1 = sorted((int(round(a.x())), int(round(b.x()))))
        block = [
            (layer, h)
            for layer in range(max(l0, 0), min(l1, n_layers - 1) + 1)
            for h in range(max(h0, 0), min(h1, n_heads - 1) + 1)
        ]
        if block:
            self.select([*self.selected, *block])

    def _draw_selection(self) -> None:
        self.sel_marks.setData([h for _, h in self.selected], [layer for layer, _ in self.selected])
