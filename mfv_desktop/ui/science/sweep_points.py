"""A layer sweep's points in words (n and the 95% Wilson interval) and the undoable command that makes
one of them a vector's default layer and strength (through the store)."""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from mfv_desktop.stats import count_of, wilson_interval
from mfv_desktop.store import StoreError
from mfv_desktop.store import vectors as vrepo
from mfv_desktop.ui.shell.context import AppContext


def strength_text(s: float) -> str:
    return f"{s:.1f}" if float(s).is_integer() else f"{s:g}"


def point_text(layer: int, strength: float, accuracy: float, n: int | None) -> str:
    """A sweep point in words: "layer 3, strength 1.0: 14/20 = 70% (48–85%)" (the 95% Wilson interval)."""
    head = f"layer {layer}, strength {strength_text(strength)}: "
    if not n:
        return head + f"{accuracy:.0%}"
    k = count_of(accuracy, n)
    lo, hi = wilson_interval(k, n)
    return head + f"{k}/{n} = {accuracy:.0%} ({lo:.0%}–{hi:.0%})".replace("%–", "–")


class SetVectorDefaults(QUndoCommand):
    """Make a layer and strength a vector's defaults; undo puts the old ones back (through the store)."""

    def __init__(self, ctx: AppContext, vector_id: int, new: tuple[int, float]) -> None:
        super().__init__(f"vector {vector_id}: layer {new[0]}, strength {new[1]:g}")
        self.ctx, self.vector_id, self.new = ctx, vector_id, new
        self.old: tuple[int, float] | None = None

    def redo(self) -> None:
        self.old = self._set(self.new) or self.old

    def undo(self) -> None:
        if self.old is not None:
            self._set(self.old)

    def _set(self, value: tuple[int, float]) -> tuple[int, float] | None:
        try:
            old = vrepo.set_defaults(self.ctx.store, self.vector_id, *value)
        except StoreError as e:  # deleted meanwhile, or a read-only store
            self.ctx.notify(str(e), error=True)
            return None
        self.ctx.vectorsChanged.emit()
        return old
