"""Right or wrong, in Apply and Analogy: what the scene's confirmed labels say the answer is, and a
line per condition that marks the model's answer right or wrong against it, warns when the answer
names no object of the image, or says why no expected answer is known (an opened image has no
labels; a scene may have none, or none for this relation from this anchor).

An answer is the model's first token; it is right when it is one of the expected object names
(case and surrounding spaces aside), as first-token accuracy counts it elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QWidget

from mfv_desktop.scenes import COMPOSITE_PARTS
from mfv_desktop.store import Store, StoreError
from mfv_desktop.store.labels import expected_answers, relations_between
from mfv_desktop.ui.text_colours import MUTED, RIGHT, WARN, WRONG, is_dark


@dataclass(frozen=True)
class Expected:
    """What an answer should be for one question (an image, an anchor, a relation)."""

    #: the expected object names; () when none is known
    answers: tuple[str, ...] = ()
    #: why none is known ("" when answers are known)
    unknown: str = ""
    #: the image's object names, to warn about an answer that names none of them (() when the
    #: image has no boxes: nothing to warn about)
    objects: tuple[str, ...] = ()
    relation: str | None = None
    #: what it was found for (the panel's scene ids, image and anchors): shown only beside that
    about: tuple[object, ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.answers)

    @property
    def answer(self) -> str | None:
        """The one expected answer (for a job spec's expected answer), None when none or several
        are (the task builder asks no question whose answer is not unique)."""
        return self.answers[0] if len(self.answers) == 1 else None

    def expected_text(self) -> str:
        return " or ".join(self.answers)


def norm(word: str) -> str:
    return word.strip().casefold()


def relation_of(relations: Iterable[str]) -> str | None:
    """The one relation a set of vectors stands for: theirs when they share it, the composite their
    two base relations make (above + left: above_left), else None."""
    rels = set(relations)
    if len(rels) == 1:
        return next(iter(rels))
    return next((c for c, parts in COMPOSITE_PARTS.items() if set(parts) == rels), None)


def expected_for(
    store: Store, scene_id: int | None, anchor: str, relation: str | None, objects: Sequence[str], no_relation: str = ""
) -> Expected:
    """The expected answer for `anchor` and `relation` on a store scene (None: an opened image), by
    its confirmed labels; `no_relation` says why the relation is not known when it is None."""
    objs = tuple(objects)
    if scene_id is None:
        return Expected(unknown="an opened image has no labels (show a scene of the store to check answers)")
    if relation is None:
        return Expected(unknown=no_relation or "the relation asked about is not known", objects=objs)
    try:
        found = expected_answers(store, scene_id, anchor, relation)
    except StoreError as e:
        return Expected(unknown=str(e), objects=objs, relation=relation)
    if found is None:
        return Expected(unknown="this scene has no confirmed labels at all", objects=objs, relation=relation)
    if not found:
        return Expected(
            unknown=f"this scene has no confirmed labels for {relation} from {anchor}", objects=objs, relation=relation
        )
    return Expected(tuple(found), objects=objs, relation=relation)


def pair_relation(store: Store, scene_id: int | None, a: str, b: str) -> tuple[str | None, str]:
    """The relation an A -> B pair shows by its scene's confirmed labels (B is <relation> of A), and
    why none is known ("" when one is)."""
    if scene_id is None:
        return None, "the source is an opened image: no labels say which relation A → B shows"
    try:
        rels = relations_between(store, scene_id, b, a)
    except StoreError as e:
        return None, f"source: {e}"
    if rels is None:
        return None, "the source scene has no confirmed labels at all: which relation A → B shows is not known"
    if not rels:
        return None, f"the source scene has no confirmed label of {b} to {a}: which relation it shows is not known"
    if len(set(rels)) > 1:
        return None, f"the source scene labels {b} both {' and '.join(rels)} of {a}: which one is meant is not known"
    return rels[0], ""


@dataclass(frozen=True)
class Verdict:
    """One condition's answer against the expected one: right is None when nothing is expected."""

    condition: str
    answer: str
    right: bool | None
    expected: str
    #: the answer names no object of the image
    stray: bool


def judge(condition: str, answer: str, expected: Expected) -> Verdict:
    a = answer.strip()
    right = (norm(a) in {norm(x) for x in expected.answers}) if expected.known else None
    stray = bool(expected.objects) and norm(a) not in {norm(o) for o in expected.objects}
    return Verdict(condition, a, right, expected.expected_text(), stray)


class VerdictLines(QLabel):
    """A line per condition: "with vectors: 'ball' ✓ right (expected: ball)", "✗ wrong", a warning
    when the answer names no object of the image; or why no expected answer is known. Coloured for
    the light or dark theme, again when the theme changes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setMargin(2)  # not a style sheet: it would keep the palette from following the theme
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.setFont(font)
        self.verdicts: list[Verdict] = []
        self.expected: Expected | None = None
        self.hide()

    def show_verdicts(self, verdicts: list[Verdict], expected: Expected) -> None:
        self.verdicts, self.expected = verdicts, expected
        self._render()
        self.show()

    def clear_verdicts(self) -> None:
        self.verdicts, self.expected = [], None
        self.setText("")
        self.hide()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.expected is not None:
            self._render()

    def lines(self) -> list[str]:
        """What the lines say, as plain text (for checks and scripts)."""
        return [_plain(v) for v in self.verdicts] + (
            [f"no expected answer is known: {self.expected.unknown}"]
            if self.expected is not None and not self.expected.known
            else []
        )

    def _render(self) -> None:
        k = int(is_dark(self.palette()))
        right, wrong, warn, muted = RIGHT[k], WRONG[k], WARN[k], MUTED[k]
        rows = []
        for v in self.verdicts:
            row = f"{escape(v.condition)}: <b>'{escape(v.answer)}'</b>"
            if v.right is True:
                row += f" <b style='color:{right}'>✓ right</b> (expected: {escape(v.expected)})"
            elif v.right is False:
                row += f" <b style='color:{wrong}'>✗ wrong</b> (expected: {escape(v.expected)})"
            if v.stray:
                row += f" <span style='color:{warn}'>⚠ '{escape(v.answer)}' names no object in this image</span>"
            rows.append(row)
        if self.expected is not None and not self.expected.known:
            rows.append(f"<i style='color:{muted}'>no expected answer is known: {escape(self.expected.unknown)}</i>")
        self.setText("<br>".join(rows))


def _plain(v: Verdict) -> str:
    text = f"{v.condition}: '{v.answer}'"
    if v.right is not None:
        text += f" {'✓ right' if v.right else '✗ wrong'} (expected: {v.expected})"
    if v.stray:
        text += f" ⚠ '{v.answer}' names no object in this image"
    return text
