"""The colours of words that judge something (right, wrong, a warning, muted), one pair per meaning:
(light theme, dark theme), each readable at 4.5:1 on its theme's window and base colours. Every view
that colours such words takes them from here, for the theme on screen (no pyqtgraph: the curation
widgets use it at start-up)."""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

RIGHT = ("#0a7d32", "#5fd38a")
WRONG = ("#b00020", "#ff7b7b")
WARN = ("#9a5b00", "#f2b84b")
MUTED = ("#555555", "#b8b8b8")


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether a palette (default: the application's) is a dark theme's."""
    p = palette if palette is not None else QApplication.palette()
    return p.color(QPalette.ColorRole.Window).lightness() < 128


def pick(pair: tuple[str, str], palette: QPalette | None = None) -> str:
    """The colour of a (light, dark) pair for the theme of `palette` (default: the application's)."""
    return pair[int(is_dark(palette))]
