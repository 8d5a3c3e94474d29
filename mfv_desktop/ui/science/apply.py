"""The Apply tab: point at an object of an image (the anchor), pick function vectors, and see the
model's first-token answer without and with them (the engine's `mfv apply`, an ApplySpec job run
through the window's queue and recorded in the store). The answer's likeliest tokens are drawn as
pairs of bars (without: grey, with: colour); a predicted token that names an object of the image is
outlined on it. Each answer is marked right or wrong where the scene's confirmed labels say what is
in the vectors' relation to the anchor (verdicts.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from html import escape
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.curation.scene_view import NameEdit, ScenePane, fill_with_split
from mfv_desktop.ui.plot_theme import colours, follow_theme, style_plot_widget
from mfv_desktop.ui.science.prompt_hooks import prompts_button, show_prompts
from mfv_desktop.ui.science.vector_picker import VectorPicker
from mfv_desktop.ui.science.verdicts import Expected, VerdictLines, expected_for, judge, relation_of
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.jobs import submit_reporting

ANCHOR, PREDICTED, ZERO_SHOT = "#0050d0", "#009e3d", "#6b6b6b"
WITHOUT_BRUSH, WITH_BRUSH = "#b0b0b0", "#009e3d"


def token_bars(
    plot: pg.PlotItem,
    tokens: list[str],
    series: list[tuple[str, list[float], str]],
    width: float = 0.8,
    label_min: float = 0.02,
) -> list[pg.BarGraphItem]:
    """Grouped bars: one group per token (x tick labels), one bar per series (name, heights, colour),
    each with its value written above it when it is at least `label_min`."""
    n = max(len(series), 1)
    w = width / n
    items = []
    font = QFont()
    font.setPointSizeF(7.5)
    for k, (name, heights, colour) in enumerate(series):
        xs = [i - width / 2 + w * (k + 0.5) for i in range(len(tokens))]
        item = pg.BarGraphItem(x=xs, height=heights, width=w * 0.92, brush=colour, pen=pg.mkPen(colour), name=name)
        plot.addItem(item)
        items.append(item)
        for x, h in zip(xs, heights):
            if h >= label_min:
                t = pg.TextItem(f"{h:.2f}", color=colours().foreground, anchor=(0.5, 1.0))
                t.setFont(font)
                t.setPos(x, h)
                plot.addItem(t)
    plot.getAxis("bottom").setTicks([[(i, tok) for i, tok in enumerate(tokens)]])
    plot.setXRange(-0.6, max(len(tokens), 1) - 0.4, padding=0)
    return items


def new_plot(y_label: str, redraw: Callable[[], None] | None = None) -> pg.PlotWidget:
    """A bar chart's plot in the theme's colours; `redraw` draws its contents again when the theme
    changes (labels written in the old text colour)."""
    plot = pg.PlotWidget()
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setLabel("left", y_label)
    plot.setYRange(0, 1.08, padding=0)
    plot.showGrid(y=True, alpha=0.25)
    plot.setMinimumHeight(110)

    def restyle() -> None:
        style_plot_widget(plot)
        if redraw is not None:
            redraw()

    follow_theme(plot, restyle)
    return plot


class ApplyPanel(QWidget):
    """Image and anchor, vectors, layer and strength; the answer without and with the vectors. The
    answer and its chart are shown only beside the image and anchor they are about."""

    NO_ANSWER = "Pick an anchor and a vector, then Apply."

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: dict[str, Any] | None = None
        self.run_id: int | None = None
        self.bars: list[pg.BarGraphItem] = []
        self.bar_tokens: list[str] = []
        #: what the shown result's answers were judged against
        self.expected: Expected | None = None

        self.pane = ScenePane(ctx, "Image")
        self.anchor = NameEdit("anchor: click its box, or type its name")
        self.anchor.setToolTip("the object the prompt asks about (Q:anchor. A:), e.g. cup")
        anchor_row = QHBoxLayout()
        anchor_row.addWidget(QLabel("Anchor"))
        anchor_row.addWidget(self.anchor, 1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.pane, 1)
        lv.addLayout(anchor_row)

        self.vectors = VectorPicker(ctx)
        self.layer = QComboBox()
        self.layer.setToolTip("the decoder layer whose output the vectors are added to (at the last token)")
        self.own_strength = QCheckBox("own")
        self.own_strength.setChecked(True)
        self.own_strength.setToolTip("each vector at its own strength (its default, saved with it)")
        self.strength = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0.0, 10.0)
        # superqt's labeled-slider proxy annotates the step as int; the double slider it forwards to takes a float
        self.strength.setSingleStep(0.1)  # type: ignore[arg-type]
        self.strength.setValue(1.0)
        self.strength.setToolTip("one strength for every vector: each is multiplied by it before it is added")
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.own_strength)
        strength_row.addWidget(self.strength, 1)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip(
            "the model's answer for this image and anchor, without and with the vectors (the engine's `mfv apply`)"
        )
        self.message = QLabel()
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Layer", self.layer)
        form.addRow("Strength", strength_row)
        controls = QGroupBox("Function vectors")
        cv = QVBoxLayout(controls)
        cv.addWidget(self.vectors)
        cv.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.message, 1)
        cv.addLayout(buttons)

        self.summary = QLabel(self.NO_ANSWER)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        # a font, not a style sheet: a label with a style sheet keeps the colours of the theme it
        # was made under (dark text on a dark window after a switch to the dark theme)
        big = self.summary.font()
        big.setPointSizeF(13)
        self.summary.setFont(big)
        self.summary.setMargin(2)
        self.plot = new_plot("P(first answer token)", redraw=self._redraw)
        self.plot.addLegend(offset=(-8, 6), labelTextSize="8pt")
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(controls)
        rv.addWidget(self.summary)
        self.verdicts = VerdictLines()
        rv.addWidget(self.verdicts)
        rv.addWidget(self.plot, 1)

        fill_with_split(self, left, right, (3, 2))

        self.pane.view.objectClicked.connect(self.anchor.setText)
        self.anchor.textChanged.connect(lambda _: self._mark_anchor())
        self.pane.imageChanged.connect(self._image_changed)
        # the pane follows the Scene tab's scene while this tab is on screen too (the Scenes list is a dock)
        ctx.sceneChanged.connect(lambda _: self.pane.refresh() if self.isVisible() else None)
        self.vectors.checkedChanged.connect(self._vectors_changed)
        self.own_strength.toggled.connect(self._vectors_changed)
        self.apply_button.clicked.connect(self.apply)
        self._prompt_hooks()
        self.pane.imageChanged.connect(self._verdicts_follow)
        self.anchor.textChanged.connect(lambda _: self._verdicts_follow())
        self._vectors_changed()
        self.refresh()

    # -- inputs ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Follow the window's current scene; names for typing come from the store."""
        self.pane.refresh()
        self.anchor.set_names(self.pane.view.object_names() or repo.object_names(self.ctx.store))

    def _image_changed(self) -> None:
        names = self.pane.view.object_names()
        self.anchor.set_names(names or repo.object_names(self.ctx.store))
        if self.pane.new_image or (names and self.anchor.name() not in names):
            self.anchor.clear()
        self._mark_anchor()

    def _answer_is_shown_here(self) -> bool:
        """Is the last answer about the image and anchor on screen?"""
        return (
            self.result is not None
            and self.result.get("image") == self.pane.view.path
            and self.result.get("anchor") == self.anchor.name()
        )

    def _mark_anchor(self) -> None:
        view = self.pane.view
        view.clear_marks()
        if self.anchor.name():
            view.mark(self.anchor.name(), "anchor", ANCHOR)
        if self.result is not None and self._answer_is_shown_here():
            self._mark_predictions(self.result)
            if not self.bars:  # back to the image and anchor the answer is about
                self._draw_answer(self.result)
        elif self.bars or self.summary.text() != self.NO_ANSWER:  # another image or anchor: not its answer
            self.plot.clear()
            self.bars, self.bar_tokens = [], []
            self.summary.setText(self.NO_ANSWER)

    def _vectors_changed(self) -> None:
        rows = self.vectors.checked_rows()
        n_layers = max((v["n_layers"] for v in rows), default=0) or max(
            (v["n_layers"] for v in self.vectors.rows), default=0
        )
        keep = self.layer.currentData()
        own = round(sum(v["layer"] for v in rows) / len(rows)) if rows else None
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItem("vector's own" + (f" ({own})" if own is not None else ""), None)
        for i in range(n_layers):
            self.layer.addItem(str(i), i)
        if keep is not None and self.layer.findData(keep) >= 0:
            self.layer.setCurrentIndex(self.layer.findData(keep))
        self.layer.blockSignals(False)
        own_strength = self.own_strength.isChecked()
        self.strength.setEnabled(not own_strength)
        if own_strength and rows:
            self.strength.setValue(float(rows[0]["strength"]))
        strengths = sorted({f"{v['strength']:g}" for v in rows})
        self.own_strength.setText("own" + (f" ({', '.join(strengths)})" if strengths else ""))

    def spec(self):
        """The job for what is chosen, or None (with the reason shown) when something is missing."""
        from mfv_desktop.jobs import ApplySpec

        if self.pane.image_path is None:
            return self._refuse("No image: show a scene (or open an image) first.")
        anchor = self.anchor.name()
        if not anchor:
            return self._refuse("No anchor: click the anchor object's box in the image (or type its name).")
        refs = self.vectors.checked_refs()
        if not refs:
            return self._refuse("No function vector: check at least one vector in the list.")
        return ApplySpec(
            image=self.pane.image_path,
            anchor=anchor,
            vectors=tuple(refs),
            layer=self.layer.currentData(),
            strength=None if self.own_strength.isChecked() else round(self.strength.value(), 3),
            model=self.ctx.model_ref(),
            expected=self._expected_token(),
        )

    def _expected_token(self) -> str | None:
        """The labels' answer for the run to record (right or wrong, in the prompt viewer), where the
        model can answer it in one token as its accuracy counts it."""
        from mfv_desktop.ui.curation.naming import check_name

        answer = self.expected_now().answer
        return answer if answer and check_name(answer, self.ctx.model)[0] else None

    def _refuse(self, message: str) -> None:
        self.message.setText(f"<span style='color:#b00020'>{escape(message)}</span>")
        self.ctx.notify(message, error=True)
        return None

    # -- running -----------------------------------------------------------------------------------
    def apply(self):
        """Queue the job (None when an input is missing or the store is read-only)."""
        spec = self.spec()
        if spec is None:
            return None
        expected = self.expected_now()
        return submit_reporting(self.ctx, self.message, spec, "apply", lambda out: self._done(out, expected))

    def _done(self, outcome: tuple[int, dict], expected: Expected | None = None) -> None:
        self.run_id, result = outcome
        self.prompts_button.setEnabled(True)
        self.show_result(result, expected)

    def expected_now(self) -> Expected:
        """What the scene's confirmed labels say the answer is for the image, anchor and checked
        vectors' relation shown now (an opened image has no labels)."""
        rels = sorted({v["relation"] for v in self.vectors.checked_rows()})
        found = expected_for(
            self.ctx.store,
            self.pane.scene_id,
            self.anchor.name(),
            relation_of(rels),
            self.pane.view.object_names(),
            no_relation=f"the checked vectors' relations ({', '.join(rels)}) make no one relation",
        )
        return replace(found, about=self._about())

    def _about(self) -> tuple[object, ...]:
        """What the verdicts are for: the scene (two scenes may share an image), image and anchor."""
        return self.pane.scene_id, self.pane.view.path, self.anchor.name()

    # -- the answer --------------------------------------------------------------------------------
    def show_result(self, result: dict[str, Any], expected: Expected | None = None) -> None:
        """A job's result; its answers are judged against `expected` (by default what the labels of
        the scene shown now say, if the result is for its image and anchor)."""
        self.result = result
        self._draw_answer(result)
        self._mark_anchor()
        self._judge(result, expected)

    def _redraw(self) -> None:
        if self.result is not None and self._answer_is_shown_here():
            self._draw_answer(self.result)

    def _draw_answer(self, result: dict[str, Any]) -> None:
        bars = result.get("bars", [])
        by_token = {b["token"]: b for b in bars}
        before, after = result.get("without", ""), result.get("with", "")
        p_before = by_token.get(before, {}).get("without")
        p_after = by_token.get(after, {}).get("with")
        changed = before != after
        arrow = "→" if changed else "→ (unchanged)"
        self.summary.setText(
            f"<b>{escape(result.get('anchor', ''))}</b> at layer {result.get('layer')}: "
            f"without: <b>{escape(before)}</b> ({_p(p_before)}) {arrow} "
            f"with: <b style='color:{PREDICTED}'>{escape(after)}</b> ({_p(p_after)})"
        )
        self.plot.clear()
        self.bar_tokens = [b["token"] for b in bars]
        self.bars = token_bars(
            self.plot.getPlotItem(),
            self.bar_tokens,
            [
                ("without the vector", [b["without"] for b in bars], WITHOUT_BRUSH),
                ("with the vector", [b["with"] for b in bars], WITH_BRUSH),
            ],
        )
        style_plot_widget(self.plot)  # the legend's entries in the theme's text colour

    def _mark_predictions(self, result: dict[str, Any]) -> None:
        view = self.pane.view
        after, before = result.get("with", ""), result.get("without", "")
        if before != after:
            view.mark(before, "0-shot", ZERO_SHOT)
        view.mark(after, "predicted", PREDICTED)

    def _judge(self, result: dict[str, Any], expected: Expected | None) -> None:
        if expected is None:  # judged by what is shown now, if the result is for it
            shown = result.get("image") == self.pane.view.path and result.get("anchor") == self.anchor.name()
            expected = self.expected_now() if shown else Expected(unknown="the image or anchor changed")
        self.expected = expected
        self.verdicts.show_verdicts(
            [
                judge("0-shot", result.get("without", ""), expected),
                judge("with vectors", result.get("with", ""), expected),
            ],
            expected,
        )
        self._verdicts_follow()

    def _verdicts_follow(self) -> None:
        """The verdicts are shown only beside the image and anchor they were made for."""
        self.verdicts.setVisible(self.expected is not None and self.expected.about == self._about())

    def shown_bars(self) -> list[dict[str, Any]]:
        """What the chart shows: token, without, with (for checks and scripts)."""
        if len(self.bars) != 2:
            return []
        h0, h1 = self.bars[0].opts["height"], self.bars[1].opts["height"]
        return [{"token": t, "without": float(a), "with": float(b)} for t, a, b in zip(self.bar_tokens, h0, h1)]

    # -- the prompts behind the answer (the viewer is built on first use) -----------------------------
    def _prompt_hooks(self) -> None:
        self.prompts_button = prompts_button(
            self.apply_button, "the prompts this run's answers came from, and their images"
        )
        self.prompts_button.setEnabled(False)  # until a result is shown
        self.prompts_button.clicked.connect(lambda: show_prompts(self.ctx, self.run_id, parent=self))


def _p(p: float | None) -> str:
    return "p ?" if p is None else f"p {p:.2f}"
