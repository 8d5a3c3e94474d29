"""What the science tabs need to offer the prompt viewer without importing it: a "Prompts…" button
placed beside one of their widgets, and a call that builds the viewer on first use."""

from __future__ import annotations

from PySide6.QtWidgets import QBoxLayout, QLayout, QPushButton, QWidget

from mfv_desktop.ui.shell.context import AppContext


def show_prompts(
    ctx: AppContext,
    run_id: int | None,
    relation: str | None = None,
    condition: str | None = None,
    index: int | None = None,
    parent: QWidget | None = None,
):
    """Open the prompt viewer of a run (imported here, on first use); None when there is no run."""
    if run_id is None:
        ctx.notify("there is no finished run to show the prompts of yet", error=True)
        return None
    from mfv_desktop.ui.science.prompts import open_prompts

    return open_prompts(ctx, run_id, relation, condition, index, parent)


def insert_beside(root: QLayout | None, anchor: QWidget, widget: QWidget) -> bool:
    """Put `widget` right after `anchor` in whichever box layout under `root` holds it."""
    if root is None:
        return False
    at = root.indexOf(anchor)
    if at >= 0 and isinstance(root, QBoxLayout):
        root.insertWidget(at + 1, widget)
        return True
    for i in range(root.count()):
        item = root.itemAt(i)
        child = item.layout() if item is not None else None
        if child is not None and insert_beside(child, anchor, widget):
            return True
    return False


def prompts_button(anchor: QWidget, tooltip: str) -> QPushButton:
    """A "Prompts…" button beside `anchor` (in the layouts of the widget that holds it)."""
    button = QPushButton("Prompts…")
    button.setToolTip(tooltip)
    holder = anchor.parentWidget()
    if holder is None or not insert_beside(holder.layout(), anchor, button):
        raise RuntimeError(f"{type(anchor).__name__} is in no layout to put a Prompts… button beside")
    return button
