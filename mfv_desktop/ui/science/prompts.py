"""The prompt viewer: the prompts behind a run's numbers. For one run, a group (relation and condition,
as the run recorded them) lists its prompts: the images of the demonstrations and the query, the
text the model read, the expected answer, the model's answer, right or wrong and P(answer), with
filters; the prompt picked is shown large (images with the anchor and the answer outlined).

Built on first use: nothing imports this module when the window opens (`open_prompts` is the entry
every tab calls). Thumbnails are made when a row is first drawn, and kept.
"""

from __future__ import annotations

import re
import time
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.store import runs as run_repo
from mfv_desktop.store.prompts import Group, Prompt, group_prompts, prompt_groups
from mfv_desktop.tasks import Shot
from mfv_desktop.ui.science.prompt_images import ANCHOR_BOX, Images
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.text_colours import MUTED, RIGHT, WRONG, is_dark, pick

OLD_RUN = "This run was recorded before prompts were kept; run it again to see them."
_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


def verdict_colours() -> dict[str, QColor]:
    """Right, wrong and unknown, for the theme on screen."""
    return {v: QColor(pick(pair)) for v, pair in (("right", RIGHT), ("wrong", WRONG), ("unknown", MUTED))}


def verdict(prompt: Prompt, known: bool) -> str:
    return "unknown" if not known else ("right" if prompt.correct else "wrong")


def anchor_colour() -> str:
    """The anchor's colour in text: the boxes' blue, lighter on a dark theme."""
    return "#7fb0ff" if is_dark() else ANCHOR_BOX


VERDICT_TEXT = {"right": "✓ right", "wrong": "✗ wrong", "unknown": "? no expected answer"}


class PromptTable(QAbstractTableModel):
    """A group's prompts: images, text, expected, the model's answer, right or wrong, P(answer)."""

    COLUMNS = ("#", "images", "prompt", "expected", "model's answer", "right?", "P(answer)")
    IMAGES, VERDICT = 1, 5

    def __init__(self, images: Images, parent: Any = None) -> None:
        super().__init__(parent)
        self.images = images
        self.prompts: list[Prompt] = []
        self.known = True
        self.colours = verdict_colours()
        self._strips: dict[int, QPixmap] = {}  # row -> its thumbnails, made when first drawn

    def set_prompts(self, prompts: list[Prompt], known: bool) -> None:
        self.beginResetModel()
        self.prompts, self.known, self.colours = prompts, known, verdict_colours()
        self._strips = {}
        self.endResetModel()

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.prompts)

    def columnCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        p, col = self.prompts[index.row()], index.column()
        v = verdict(p, self.known)
        if role == Qt.ItemDataRole.DecorationRole and col == self.IMAGES:
            if index.row() not in self._strips:
                self._strips[index.row()] = self.images.thumbs([*p.task.demos, p.task.query])
            return self._strips[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return [
                str(p.index),
                "",
                p.text,
                p.expected if self.known else "unknown",
                p.predicted,
                VERDICT_TEXT[v],
                "–" if p.answer_prob is None else f"{p.answer_prob:.3f}",
            ][col]
        if role == Qt.ItemDataRole.UserRole:  # sorting
            return [
                p.index,
                p.index,
                p.text,
                p.expected,
                p.predicted,
                v,
                -1.0 if p.answer_prob is None else p.answer_prob,
            ][col]
        if role == Qt.ItemDataRole.ForegroundRole and col in (self.VERDICT, 4):
            return self.colours[v]
        if role == Qt.ItemDataRole.ToolTipRole and col == 2:
            return p.text
        return None


class PromptFilter(QSortFilterProxyModel):
    """All, right or wrong prompts, whose text, answers, anchor or scenes contain the search words."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.which, self.words = "all", ""
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def set_filter(self, which: str, words: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.9 and later
            self.beginFilterChange()
            self.which, self.words = which, words.strip().lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.which, self.words = which, words.strip().lower()
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        table = self.sourceModel()
        assert isinstance(table, PromptTable)
        p = table.prompts[row]
        if self.which != "all" and verdict(p, table.known) != self.which:
            return False
        if not self.words:
            return True
        shots = [*p.task.demos, p.task.query]
        hay = " ".join([p.text, p.expected, p.predicted, *(f"{s.scene_id} {s.anchor} {s.answer}" for s in shots)])
        return all(w in hay.lower() for w in self.words.split())


def same_condition(a: str, b: str) -> bool:
    """Conditions as recorded and as asked for: "L3 ×2" is "L3 × 2.0"."""
    sweep = re.compile(r"^L(\d+)\s*[×x*]\s*([-+0-9.eE]+)$")
    ma, mb = sweep.match(a.strip()), sweep.match(b.strip())
    if ma and mb:
        return int(ma[1]) == int(mb[1]) and float(ma[2]) == float(mb[2])
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


class PromptViewer(QDialog):
    """One run's prompt groups and their prompts (non-modal)."""

    #: the height of a prompt's images shown large
    IMAGE = 180

    def __init__(self, ctx: AppContext, run_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.run_id = ctx, run_id
        self.setWindowTitle(f"Prompts of run {run_id}")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(1100, 760)
        self.images = Images(ctx.store)
        self.groups: list[Group] = prompt_groups(ctx.store, run_id)
        self.group: Group | None = None

        self.header = QLabel(self._run_text())
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chooser = QComboBox()
        self.chooser.setMinimumContentsLength(30)
        for g in self.groups:
            self.chooser.addItem(f"{g.relation} · {g.condition} · {g.n_correct}/{g.n} = {g.accuracy:.2f}", g.id)
        self.which = QComboBox()
        for text, key in (("all prompts", "all"), ("right only", "right"), ("wrong only", "wrong")):
            self.which.addItem(text, key)
        self.search = QLineEdit()
        self.search.setPlaceholderText("search text, answers, anchors, scenes")
        self.search.setClearButtonEnabled(True)
        self.count = QLabel()
        self.empty = QLabel(OLD_RUN)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("font-size: 13pt; padding: 24px;")

        self.table_model = PromptTable(self.images, self)
        self.proxy = PromptFilter(self)
        self.proxy.setSourceModel(self.table_model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # the query's end is what matters
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(52)
        self.table.setIconSize(QSize(400, 48))
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for col, width in ((0, 44), (1, 250), (3, 90), (4, 110), (5, 90), (6, 80)):
            self.table.setColumnWidth(col, width)

        self.detail_head = QLabel("pick a prompt to see it large")
        self.detail_head.setTextFormat(Qt.TextFormat.RichText)
        self.detail_head.setWordWrap(True)
        self.cards = QWidget()
        self.cards_row = QHBoxLayout(self.cards)
        self.cards_row.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.cards)
        scroll.setMinimumHeight(self.IMAGE + 70)
        self.full_text = QPlainTextEdit()
        self.full_text.setReadOnly(True)
        self.full_text.setMaximumHeight(70)
        detail = QWidget()
        dv = QVBoxLayout(detail)
        dv.setContentsMargins(0, 0, 0, 0)
        dv.addWidget(self.detail_head)
        dv.addWidget(scroll, 1)
        dv.addWidget(self.full_text)
        self.body = QSplitter(Qt.Orientation.Vertical)
        self.body.addWidget(self.table)
        self.body.addWidget(detail)
        self.body.setSizes([330, 430])

        controls = QHBoxLayout()
        self.group_label = QLabel("Group")
        for w in (self.group_label, self.chooser, self.which, self.search, self.count):
            controls.addWidget(w)
        controls.setStretch(3, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(controls)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.empty, 1)

        self.chooser.currentIndexChanged.connect(lambda _: self.show_group(self.chooser.currentData()))
        self.which.currentIndexChanged.connect(lambda _: self._filter())
        self.search.textChanged.connect(lambda _: self._filter())
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _: self._picked(cur))
        has = bool(self.groups)
        for shown in (self.group_label, self.chooser, self.which, self.search, self.count, self.body):
            shown.setVisible(has)
        self.empty.setVisible(not has)
        if has:
            self.show_group(self.groups[0].id)
        else:
            self.resize(640, 200)

    def _run_text(self) -> str:
        try:
            run = run_repo.get_run(self.ctx.store, self.run_id)
        except Exception:  # noqa: BLE001 - a deleted run: say so rather than fail
            return f"run {self.run_id} (no longer in the store)"
        model = run.provenance.get("model_id") or (run.spec.get("model") or {}).get("model", "?")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created))
        return f"<b>run {run.id}</b> · {run.kind} · model {model} · {when} · {run.status}"

    # -- what is shown -------------------------------------------------------------------------------
    def show_group(self, group_id: int | None) -> None:
        if group_id is None:
            return
        if self.chooser.currentData() != group_id:
            self.chooser.setCurrentIndex(self.chooser.findData(group_id))  # comes back here
            return
        group, prompts = group_prompts(self.ctx.store, group_id)
        self.group = group
        self.table_model.set_prompts(prompts, bool(group.detail.get("expected_known", True)))
        if not prompts:
            self.detail_head.setText("this group's prompts were recorded without their tasks: run it again to see them")
        self._filter()

    def _filter(self) -> None:
        self.proxy.set_filter(self.which.currentData(), self.search.text())
        shown, total = self.proxy.rowCount(), self.table_model.rowCount()
        self.count.setText(f"{shown} of {total} prompt{'' if total == 1 else 's'} shown")

    def shown_prompts(self) -> list[Prompt]:
        """The prompts the table lists now, top to bottom (for checks and scripts)."""
        rows = (self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in range(self.proxy.rowCount()))
        return [self.table_model.prompts[r] for r in rows]

    def current_prompt(self) -> Prompt | None:
        cur = self.table.selectionModel().currentIndex()
        return self.table_model.prompts[self.proxy.mapToSource(cur).row()] if cur.isValid() else None

    def focus(self, relation: str | None = None, condition: str | None = None, index: int | None = None) -> bool:
        """Show the group of this relation and condition (the first that fits what is given) and
        select prompt `index` in it; False when the run has no such group or prompt."""
        fits = [
            g
            for g in self.groups
            if (relation is None or g.relation == relation)
            and (condition is None or same_condition(g.condition, condition))
        ]
        if not fits:
            return False
        self.show_group(fits[0].id)
        if index is None:
            return True
        if not any(p.index == index for p in self.shown_prompts()):
            self.which.setCurrentIndex(0)
            self.search.clear()
        for r, p in enumerate(self.shown_prompts()):
            if p.index == index:
                self.table.selectRow(r)
                self.table.scrollTo(self.proxy.index(r, 0))
                return True
        return False

    def _picked(self, current: QModelIndex) -> None:
        while self.cards_row.count() > 1:
            item = self.cards_row.takeAt(0)
            gone = item.widget() if item is not None else None
            if gone is not None:
                gone.hide()
                gone.deleteLater()
        p = self.current_prompt() if current.isValid() else None
        if p is None or self.group is None:
            return
        known = self.table_model.known
        v = verdict(p, known)
        colour = self.table_model.colours[v].name()
        prob = "" if p.answer_prob is None else f" · P(answer) {p.answer_prob:.3f}"
        self.detail_head.setText(
            f"prompt {p.index} · {self.group.relation} · {self.group.condition} · expected "
            f"<b>{p.expected if known else 'unknown'}</b> · model <b>{p.predicted}</b> · "
            f"<b style='color:{colour}'>{VERDICT_TEXT[v]}</b>{prob}"
        )
        self.full_text.setPlainText(p.text)
        shots = [*p.task.demos, p.task.query]
        for i, shot in enumerate(shots):
            query = i == len(shots) - 1
            self.cards_row.insertWidget(i, self._card(shot, query, p if query else None))

    def _card(self, shot: Shot, query: bool, prompt: Prompt | None) -> QWidget:
        card = QWidget()
        v = QVBoxLayout(card)
        v.setContentsMargins(2, 2, 2, 2)
        answer = shot.answer if (not query or self.table_model.known) else None
        pm = self.images.outlined(shot, self.IMAGE, answer)
        image = QLabel()
        if pm is None:
            image.setText("image missing")
            image.setFixedSize(self.IMAGE, self.IMAGE)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setStyleSheet("border: 1px dashed palette(mid);")
            image.setToolTip(f"not found: {shot.image} (nor scene {shot.scene_id!r} in the store)")
        else:
            image.setPixmap(pm)
            image.setToolTip(str(self.images.find(shot).path))
        if query and prompt is not None:
            said = f"A: <b>{prompt.predicted}</b> (expected {answer or 'unknown'})"
        else:
            said = f"A: <b>{shot.answer}</b>"
        caption = QLabel(
            f"{'query' if query else 'demo'} · scene {shot.scene_id}<br>"
            f"Q: <b style='color:{anchor_colour()}'>{shot.anchor}</b> · {said}"
        )
        caption.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(image)
        v.addWidget(caption)
        v.addStretch(1)
        return card


_open: dict[tuple[int, int], PromptViewer] = {}


def open_prompts(
    ctx: AppContext,
    run_id: int,
    relation: str | None = None,
    condition: str | None = None,
    index: int | None = None,
    parent: QWidget | None = None,
) -> PromptViewer:
    """Show the prompt viewer of a run (the open one, if there is one), at a group and a prompt."""
    from shiboken6 import isValid

    key = (id(ctx), run_id)
    viewer = _open.get(key)
    if viewer is None or not isValid(viewer):
        viewer = PromptViewer(ctx, run_id, parent)
        _open[key] = viewer
        viewer.destroyed.connect(lambda *_: _open.pop(key, None))
    if relation is not None or condition is not None or index is not None:
        if not viewer.focus(relation, condition, index):
            what = " · ".join(str(x) for x in (relation, condition) if x is not None)
            ctx.notify(
                f"run {run_id} has no recorded prompts for {what or 'this'}"
                + (f", prompt {index}" if index is not None else "")
            )
    viewer.show()
    viewer.raise_()
    viewer.activateWindow()
    return viewer
