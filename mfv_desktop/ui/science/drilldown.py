"""Drill-down on a head: the indirect effect of one head on each corrupted prompt its AIE averages
over (a histogram, and the prompts it fixes most and those it breaks, each sorted), with the mean
beside the value on the map. A prompt clicked opens in the prompt viewer (the relation's "corrupted"
group, at that prompt).

Built on first use: the AIE tab imports this module when a head is double-clicked.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.store import runs as run_repo
from mfv_desktop.store.prompts import Prompt, group_prompts, prompt_groups, read_prompt_effects, read_task_set
from mfv_desktop.store.results import find_aie_result
from mfv_desktop.tasks import Task
from mfv_desktop.ui.shell.context import AppContext

NO_EFFECTS = (
    "This AIE result was recorded without each prompt's effect, so its heads cannot be drilled into; "
    "run the AIE again to see them."
)


def palette_colours() -> dict[str, str]:
    """The theme's colours for a plot: background, text, bars, a quiet line."""
    pal = QApplication.palette()
    c = {
        "background": pal.color(QPalette.ColorRole.Base),
        "text": pal.color(QPalette.ColorRole.Text),
        "bars": pal.color(QPalette.ColorRole.Highlight),
        "quiet": pal.color(QPalette.ColorRole.Mid),
    }
    return {k: v.name() for k, v in c.items()}


class HeadDrillDown(QDialog):
    """One head of one relation of one run: its effect on each prompt (non-modal, reused)."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setModal(False)
        self.resize(980, 720)
        self.run_id: int | None = None
        self.relation = ""
        self.head: tuple[int, int] | None = None
        self.mean: float | None = None
        self.map_aie: float | None = None
        self.fixes: list[tuple[int, float]] = []
        self.breaks: list[tuple[int, float]] = []

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMinimumHeight(220)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.fix_table, self.break_table = self._table(), self._table()
        self.fix_label = QLabel("<b>Fixes most</b> (effect &gt; 0, largest first)")
        self.break_label = QLabel("<b>Breaks</b> (effect &lt; 0, most negative first)")
        lists = QGridLayout()
        lists.addWidget(self.fix_label, 0, 0)
        lists.addWidget(self.break_label, 0, 1)
        lists.addWidget(self.fix_table, 1, 0)
        lists.addWidget(self.break_table, 1, 1)
        hint = QLabel("click a prompt to open it in the prompt viewer")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 2)
        layout.addLayout(lists, 3)
        layout.addWidget(hint)
        self.fix_table.cellClicked.connect(lambda row, _: self._open(self.fixes, row))
        self.break_table.cellClicked.connect(lambda row, _: self._open(self.breaks, row))

    @staticmethod
    def _table() -> QTableWidget:
        t = QTableWidget(0, 4)
        t.setHorizontalHeaderLabels(["effect", "prompt", "query: anchor → expected", "answer (corrupted)"])
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.verticalHeader().hide()
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        t.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        return t

    # -- what is shown -------------------------------------------------------------------------------
    def show_head(self, run_id: int, relation: str, layer: int, head: int) -> None:
        self.run_id, self.relation, self.head = run_id, relation, (layer, head)
        self.setWindowTitle(f"Head {layer}:{head} · {relation} · run {run_id}")
        self.title.setText(f"<b>run {run_id} · {relation} · layer {layer}, head {head}</b>")
        self.plot.clear()
        self.fixes, self.breaks, self.mean, self.map_aie = [], [], None, None
        for t in (self.fix_table, self.break_table):
            t.setRowCount(0)
        aie_id = find_aie_result(self.ctx.store, run_id, relation)
        if aie_id is None:
            self.summary.setText(f"run {run_id} has no AIE result for '{relation}'")
            return
        (row,) = [r for r in run_repo.list_aie_results(self.ctx.store, run_id) if r.id == aie_id]
        self.map_aie = float(self.ctx.store.artifacts.get(row.aie_artifact)["aie"][layer, head])
        effects = read_prompt_effects(self.ctx.store, aie_id)
        if effects is None:
            self.summary.setText(f"AIE on the map {self.map_aie:+.4f}. {NO_EFFECTS}")
            return
        values = np.asarray(effects.effects[:, layer, head], dtype=np.float64)
        indices = [int(i) for i in effects.indices]
        self.mean = float(values.mean()) if len(values) else 0.0
        ts = read_task_set(self.ctx.store, effects.task_set_hash)
        tasks: dict[int, Task] = dict(enumerate(ts.tasks)) if ts is not None else {}
        answers = self._corrupted_answers(run_id, relation)
        pairs = list(zip(indices, values.tolist()))
        self.fixes = sorted((p for p in pairs if p[1] > 0), key=lambda p: -p[1])
        self.breaks = sorted((p for p in pairs if p[1] < 0), key=lambda p: p[1])
        n_zero = len(pairs) - len(self.fixes) - len(self.breaks)
        agree = "the AIE on the map" if abs(self.mean - self.map_aie) <= 1e-5 + 1e-4 * abs(self.map_aie) else "NOT"
        self.summary.setText(
            f"mean over {len(values)} corrupted prompts {self.mean:+.4f} = {agree} ({self.map_aie:+.4f}) · "
            f"it fixes {len(self.fixes)}, breaks {len(self.breaks)}"
            + (f", leaves {n_zero} unchanged" if n_zero else "")
            + " (effect: how much patching this head's mean activation into a corrupted prompt raises "
            "P(expected answer))"
        )
        self._draw(values)
        self._fill(self.fix_table, self.fixes, tasks, answers)
        self._fill(self.break_table, self.breaks, tasks, answers)

    def _corrupted_answers(self, run_id: int, relation: str) -> dict[int, Prompt]:
        for g in prompt_groups(self.ctx.store, run_id):
            if g.relation == relation and g.condition == "corrupted":
                return {p.index: p for p in group_prompts(self.ctx.store, g.id)[1]}
        return {}

    def _draw(self, values: np.ndarray) -> None:
        c = palette_colours()
        self.plot.setBackground(c["background"])
        for axis in ("left", "bottom"):
            ax = self.plot.getAxis(axis)
            ax.setPen(pg.mkPen(c["text"]))
            ax.setTextPen(pg.mkPen(c["text"]))
        self.plot.setLabel("bottom", "indirect effect on a prompt")
        self.plot.setLabel("left", "prompts")
        if not len(values):
            return
        counts, edges = np.histogram(values, bins=int(np.clip(len(values) // 3, 5, 40)))
        self.plot.addItem(
            pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=c["bars"], pen=pg.mkPen(c["background"]))
        )
        zero = pg.InfiniteLine(0.0, angle=90, pen=pg.mkPen(c["quiet"], width=1, style=Qt.PenStyle.DashLine))
        assert self.mean is not None
        mean = pg.InfiniteLine(
            self.mean,
            angle=90,
            pen=pg.mkPen(c["text"], width=2),
            label=f"mean {self.mean:+.4f}",
            labelOpts={"position": 0.9, "color": c["text"], "anchors": [(0, 0), (0, 0)]},
        )
        self.plot.addItem(zero)
        self.plot.addItem(mean)

    @staticmethod
    def _fill(table: QTableWidget, rows: list[tuple[int, float]], tasks: dict[int, Task], answers: dict) -> None:
        from mfv_desktop.ui.science.prompts import verdict_colours

        colours = verdict_colours()
        table.setRowCount(len(rows))
        for r, (index, effect) in enumerate(rows):
            task = tasks.get(index)
            query = f"{task.query.anchor} → {task.answer} (scene {task.query.scene_id})" if task else "?"
            got = answers.get(index)
            said = "" if got is None else f"{got.predicted} ({'✓' if got.correct else '✗'})"
            for col, text in enumerate((f"{effect:+.4f}", str(index), query, said)):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setForeground(colours["right" if effect > 0 else "wrong"])
                if col in (0, 1):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, col, item)

    def _open(self, rows: list[tuple[int, float]], row: int) -> None:
        from mfv_desktop.ui.science.prompts import open_prompts

        if self.run_id is not None and 0 <= row < len(rows):
            open_prompts(self.ctx, self.run_id, self.relation, "corrupted", rows[row][0], parent=self.parentWidget())


def open_drilldown(
    ctx: AppContext, run_id: int, relation: str, layer: int, head: int, parent: QWidget | None = None
) -> HeadDrillDown:
    """Show (the parent's one) drill-down at this head."""
    found = parent.findChild(HeadDrillDown) if parent is not None else None
    dialog = found if found is not None else HeadDrillDown(ctx, parent)
    dialog.show_head(run_id, relation, layer, head)
    dialog.show()
    dialog.raise_()
    return dialog
