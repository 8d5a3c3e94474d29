"""`mfv-desktop`: the app's entry point. For now a minimal window; torch is never imported here."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mfv_desktop import __version__


def build_window():
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QMainWindow

    win = QMainWindow()
    win.setWindowTitle(f"mfv_desktop {__version__}")
    label = QLabel(
        "<h2>mfv_desktop</h2><p>Multimodal function vectors for spatial relations.</p>"
        "<p>The engine runs headless for now: <code>mfv run</code> runs the whole chain "
        "(scenes, causal mediation, function vectors, layer sweep, evaluation).</p>"
    )
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    win.setCentralWidget(label)
    win.resize(720, 420)
    return win


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mfv-desktop")
    p.add_argument("--version", action="version", version=f"mfv-desktop {__version__}")
    args, qt_args = p.parse_known_args(argv)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    win = build_window()
    win.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
