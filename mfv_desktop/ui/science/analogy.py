"""The Analogy tab: A is to B as C is to ?, by pointing. In the source image the first click picks
A (the anchor), the second B (the object in the relation to show; a third click starts over); in
the target image a click picks C. The base vectors (by default the newest of each base relation)
are weighted by how well each explains the source pair, w_r = P(B | source, v_r) / sum, and their
composite answers for C (the engine's AnalogySpec job, `mfv analogy`). The weights, the answer D
(outlined on the target when it names one of its objects) and, for comparison, what 0-shot and
1-shot ICL answer are shown. Each answer is marked right or wrong where the labels say what D is:
the relation A → B shows by the source scene's confirmed labels, and the object in that relation to
C by the target scene's (verdicts.py)."""

from __future__ import annotations

from dataclasses import replace
from html import escape
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.scenes import BASE_RELATIONS
from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.curation.scene_view import NameEdit, ScenePane, fill_with_split
from mfv_desktop.ui.plot_theme import colours
from mfv_desktop.ui.science.apply import new_plot
from mfv_desktop.ui.science.prompt_hooks import prompts_button, show_prompts
from mfv_desktop.ui.science.vector_picker import COLUMNS, VectorPicker, newest_per_relation
from mfv_desktop.ui.science.verdicts import Expected, VerdictLines, expected_for, judge, pair_relation
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.jobs import submit_reporting

A_COLOUR, B_COLOUR, C_COLOUR, D_COLOUR = "#0050d0", "#e65c00", "#0050d0", "#009e3d"
WEIGHT_BRUSH = "#4c72b0"
CONDITIONS = ("composite FV", "0-shot", "1-shot ICL")


def _tok(t: Any) -> str:
    return str(t).strip()


class AnalogyPanel(QWidget):
    """Source and target images side by side: point at A, B and C, solve with the composite of the
    checked base vectors, and compare its answer with 0-shot and 1-shot ICL."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: dict[str, Any] | None = None
        self.run_id: int | None = None
        #: what the shown result answers: source image, A, B, target image, C
        self.solved: tuple[str | None, str, str, str | None, str] = (None, "", "", None, "")
        self.weight_bars: pg.BarGraphItem | None = None
        self.weight_labels: list[str] = []
        #: what the shown result's answers were judged against
        self.expected: Expected | None = None

        # -- the two images and what was picked on them
        self.source = ScenePane(ctx)
        self.target = ScenePane(ctx)
        self.a_edit, self.b_edit = NameEdit("A (anchor)"), NameEdit("B (its answer)")
        self.c_edit = NameEdit("C (anchor)")
        for e in (self.a_edit, self.b_edit, self.c_edit):
            e.setToolTip("click the object's box in the image, or type its name (images without boxes)")
        src_row, tgt_row = QHBoxLayout(), QHBoxLayout()
        for w in (QLabel("<b>Source</b>  A"), self.a_edit, QLabel("→ B"), self.b_edit):
            src_row.addWidget(w)
        self.d_label = QLabel("→ D = ?")
        for w in (QLabel("<b>Target</b>  C"), self.c_edit, self.d_label):
            tgt_row.addWidget(w)
        self.images = images = QSplitter(Qt.Orientation.Horizontal)
        for pane, row in ((self.source, src_row), (self.target, tgt_row)):
            host = QWidget()
            v = QVBoxLayout(host)
            v.setContentsMargins(0, 0, 0, 0)
            v.addWidget(pane, 1)
            v.addLayout(row)
            images.addWidget(host)
        images.setChildrenCollapsible(False)

        # -- base vectors and the button
        self.vectors = VectorPicker(ctx, default=newest_per_relation(BASE_RELATIONS))
        self.vectors.tree.hideColumn(COLUMNS.index("kind"))  # a narrow column: the label needs the room
        self.solve_button = QPushButton("Solve")
        self.solve_button.setToolTip(
            "weigh the base vectors by P(B | source pair, v_r), add their composite to "
            "the target's prompt, and read D (the engine's `mfv analogy`)"
        )
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        base = QGroupBox("Base vectors")
        bv = QVBoxLayout(base)
        bv.addWidget(self.vectors)
        bv.addWidget(self.hint)
        row = QHBoxLayout()
        row.addWidget(self.solve_button)
        row.addWidget(self.message, 1)
        bv.addLayout(row)

        # -- the answer
        self.plot = new_plot(
            "composite weight w_r",
            redraw=lambda: self.show_result(self.result, self.solved) if self.result is not None else None,
        )
        self.plot.setTitle("w_r = P(B | source, v_r) / Σ P", size="9pt")
        self.answer = QLabel("A → B :: C → ?")
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        self.answer.setWordWrap(True)
        # a font, not a style sheet: a label with a style sheet keeps the colours of the theme it
        # was made under (dark text on a dark window after a switch to the dark theme)
        big = self.answer.font()
        big.setPointSizeF(13)
        self.answer.setFont(big)
        self.answer.setMargin(2)
        self.table = QTableWidget(len(CONDITIONS), 4)
        self.table.setHorizontalHeaderLabels(["condition", "answer", "p", "top 5"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        for i, name in enumerate(CONDITIONS):
            self.table.setItem(i, 0, QTableWidgetItem(name))
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setFixedHeight(self.table.verticalHeader().length() + header.sizeHint().height() + 4)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)

        # the images with the answer under them; the vectors, the button and the weights beside them
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(images, 1)
        lv.addWidget(self.answer)
        lv.addWidget(self.table)
        self.verdicts = VerdictLines()
        lv.addWidget(self.verdicts)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(base)
        rv.addWidget(self.plot, 1)
        right.setMinimumWidth(220)
        self.split = split = fill_with_split(self, left, right, (1, 0))
        #: the panes keep their proportions as the tab resizes, until the user moves a divider
        self._user_split = False
        for sp in (split, images):
            sp.splitterMoved.connect(lambda *_: setattr(self, "_user_split", True))

        self.source.view.objectClicked.connect(self._source_clicked)
        self.target.view.objectClicked.connect(self.c_edit.setText)
        for e in (self.a_edit, self.b_edit, self.c_edit):
            e.textChanged.connect(lambda _: self._update())
        self.source.imageChanged.connect(lambda: self._image_changed(self.source, (self.a_edit, self.b_edit)))
        self.target.imageChanged.connect(lambda: self._image_changed(self.target, (self.c_edit,)))
        self.vectors.checkedChanged.connect(self._update)
        self.solve_button.clicked.connect(self.solve)
        self._prompt_hooks()
        self.refresh()

    # -- inputs ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.source.refresh()
        self.target.refresh()
        self._update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._user_split:  # the two images get the same room; the vectors and weights a third at most
            total = self.split.width()
            side = self.split.widget(1)
            right = min(max(side.minimumWidth() if side is not None else 0, total // 3), 400)
            self.split.setSizes([total - right, right])
            self.images.setSizes([(total - right) // 2] * 2)

    def _source_clicked(self, name: str) -> None:
        """First click A, second B, a third starts over with A."""
        a, b = self.a_edit.name(), self.b_edit.name()
        self.message.setText("")
        if not a or b:
            self.b_edit.clear()
            self.a_edit.setText(name)
        elif name == a:
            self.message.setText("B is another object: click the object in the relation to A")
        else:
            self.b_edit.setText(name)

    def _image_changed(self, pane: ScenePane, edits: tuple[NameEdit, ...]) -> None:
        names = pane.view.object_names()
        for e in edits:
            e.set_names(names or repo.object_names(self.ctx.store))
            if pane.new_image or (names and e.name() not in names):
                e.clear()
        self._update()

    def _inputs(self) -> dict[str, str]:
        return {"A": self.a_edit.name(), "B": self.b_edit.name(), "C": self.c_edit.name()}

    def missing(self) -> str:
        """What to do next, "" when the analogy can be solved."""
        i = self._inputs()
        if self.source.image_path is None:
            return "Show a source scene (or open an image)."
        if not i["A"]:
            return "Source: click A, the anchor."
        if not i["B"]:
            return f"Source: click B, the object in the relation to {i['A']}."
        if self.target.image_path is None:
            return "Show a target scene (or open an image)."
        if not i["C"]:
            return "Target: click C, the anchor to answer for."
        if not self.vectors.checked_refs():
            return "Check at least one base vector."
        return ""

    def _update(self) -> None:
        i = self._inputs()
        self.source.view.clear_marks()
        self.target.view.clear_marks()
        if i["A"]:
            self.source.view.mark(i["A"], "A", A_COLOUR)
        if i["B"]:
            self.source.view.mark(i["B"], "B", B_COLOUR)
        if i["C"]:
            self.target.view.mark(i["C"], "C", C_COLOUR)
        self.d_label.setText("→ D = ?")
        if self.result is not None and self.solved[3] == self.target.image_path and self.solved[4] == i["C"]:
            d = _tok(self.result["composite"]["answer"])
            self.target.view.mark(d, f"D = {d}", D_COLOUR)
            self.d_label.setText(f"→ <b style='color:{D_COLOUR}'>D = {escape(d)}</b>")
        judged = self.expected is not None and self.expected.about == self._about()
        self.verdicts.setVisible(judged)
        composite = self.verdicts.verdicts[0] if judged and self.verdicts.verdicts else None
        if composite is not None and composite.right is not None:  # D right or wrong, beside it
            self.d_label.setText(
                self.d_label.text() + (" ✓" if composite.right else f" ✗ ({escape(composite.expected)})")
            )
        todo = self.missing()
        self.solve_button.setEnabled(not todo)
        self.hint.setText(
            f"<i>{escape(todo)}</i>"
            if todo
            else f"<i>{escape(i['A'])} → {escape(i['B'])} :: {escape(i['C'])} → ?  — Solve.</i>"
        )

    # -- running -----------------------------------------------------------------------------------
    def spec(self):
        from mfv_desktop.jobs import AnalogySpec

        todo = self.missing()
        if todo:
            self.message.setText(f"<span style='color:#b00020'>{escape(todo)}</span>")
            self.ctx.notify(todo, error=True)
            return None
        i = self._inputs()
        return AnalogySpec(
            source_image=self.source.image_path,
            source_anchor=i["A"],
            source_answer=i["B"],
            target_image=self.target.image_path,
            target_anchor=i["C"],
            vectors=tuple(self.vectors.checked_refs()),
            model=self.ctx.model_ref(),
        )

    def solve(self):
        """Queue the job (None when an input is missing or the store is read-only)."""
        spec = self.spec()
        if spec is None:
            return None
        expected = self.expected_now()
        return submit_reporting(self.ctx, self.message, spec, "analogy", lambda out: self._done(out, spec, expected))

    def _done(self, outcome: tuple[int, dict], spec, expected: Expected | None = None) -> None:
        self.run_id, result = outcome
        self.prompts_button.setEnabled(True)
        self.show_result(
            result,
            (spec.source_image, spec.source_anchor, spec.source_answer, spec.target_image, spec.target_anchor),
            expected,
        )

    def _asked(self) -> tuple[str | None, str, str, str | None, str]:
        """What is picked now: source image, A, B, target image, C."""
        i = self._inputs()
        return self.source.image_path, i["A"], i["B"], self.target.image_path, i["C"]

    def expected_now(self) -> Expected:
        """What D should be by the labels: the object in the relation A → B shows (the source scene's
        confirmed labels) to C (the target scene's); why none is known otherwise."""
        i = self._inputs()
        relation, why = pair_relation(self.ctx.store, self.source.scene_id, i["A"], i["B"])
        found = expected_for(
            self.ctx.store,
            self.target.scene_id,
            i["C"],
            relation,
            self.target.view.object_names(),
            no_relation=why,
        )
        return replace(found, about=self._about())

    def _about(self) -> tuple[object, ...]:
        """What the verdicts are for: the two scenes (scenes may share an image), images and A, B, C."""
        return self.source.scene_id, self.target.scene_id, *self._asked()

    # -- the answer --------------------------------------------------------------------------------
    def show_result(
        self,
        result: dict[str, Any],
        solved: tuple[str | None, str, str, str | None, str],
        expected: Expected | None = None,
    ) -> None:
        """A job's result for `solved` (source image, A, B, target image, C), its answers judged
        against `expected` (by default what the labels of the scenes shown now say, if they are
        what was solved)."""
        self.result, self.solved = result, solved
        if expected is None:
            expected = (
                self.expected_now() if solved == self._asked() else Expected(unknown="the images or A, B, C changed")
            )
        self.expected = expected
        weights, probs = result.get("weights", {}), result.get("probs", {})
        order = sorted(weights, key=lambda r: (BASE_RELATIONS.index(r) if r in BASE_RELATIONS else 99, r))
        self.weight_labels = order
        self.plot.clear()
        xs = list(range(len(order)))
        heights = [weights[r] for r in order]
        self.weight_bars = pg.BarGraphItem(
            x=xs, height=heights, width=0.6, brush=WEIGHT_BRUSH, pen=pg.mkPen(WEIGHT_BRUSH)
        )
        self.plot.addItem(self.weight_bars)
        font = QFont()
        font.setPointSizeF(7.5)
        for x, r in zip(xs, order):
            t = pg.TextItem(
                f"w {weights[r]:.2f}\nP(B) {probs.get(r, float('nan')):.3f}",
                color=colours().foreground,
                anchor=(0.5, 1.0),
            )
            t.setFont(font)
            t.setPos(x, weights[r])
            self.plot.addItem(t)
        self.plot.getAxis("bottom").setTicks([[(x, r) for x, r in zip(xs, order)]])
        self.plot.setXRange(-0.6, max(len(order), 1) - 0.4, padding=0)
        self.plot.setYRange(0, 1.25, padding=0)

        comp = result.get("composite", {})
        d = _tok(comp.get("answer", ""))
        rows = {"composite FV": comp, "0-shot": result.get("0-shot", {}), "1-shot ICL": result.get("1-shot ICL", {})}
        a, b, c = (escape(x) for x in solved[1:3] + solved[4:5])
        self.answer.setText(
            f"{a} → {b} :: {c} → <b style='color:{D_COLOUR}'>D = {escape(d)}</b> (p {comp.get('prob', 0):.2f})"
        )
        first = self.table.item(0, 0)
        if first is not None:
            first.setText(f"composite FV (layer {result.get('layer')})")
        for i, name in enumerate(CONDITIONS):
            r = rows[name]
            top = " · ".join(f"{_tok(t)} {p:.2f}" for t, p in r.get("top", []))
            for col, text in ((1, _tok(r.get("answer", ""))), (2, f"{r.get('prob', 0):.2f}"), (3, top)):
                item = QTableWidgetItem(text)
                item.setToolTip(top)
                self.table.setItem(i, col, item)
        self.verdicts.show_verdicts(
            [judge(name, _tok(rows[name].get("answer", "")), expected) for name in CONDITIONS], expected
        )
        self._update()

    def shown_weights(self) -> dict[str, float]:
        """What the chart shows: relation -> weight (for checks and scripts)."""
        if self.weight_bars is None:
            return {}
        return {r: float(h) for r, h in zip(self.weight_labels, self.weight_bars.opts["height"])}

    def shown_answers(self) -> dict[str, str]:
        """condition -> answer, as the table shows them."""
        items = [self.table.item(i, 1) for i in range(len(CONDITIONS))]
        return {name: (item.text() if item is not None else "") for name, item in zip(CONDITIONS, items)}

    # -- the prompts behind the answer (the viewer is built on first use) -----------------------------
    def _prompt_hooks(self) -> None:
        self.prompts_button = prompts_button(
            self.solve_button, "the prompts this run's answers came from, and their images"
        )
        self.prompts_button.setEnabled(False)  # until a result is shown
        self.prompts_button.clicked.connect(lambda: show_prompts(self.ctx, self.run_id, parent=self))
