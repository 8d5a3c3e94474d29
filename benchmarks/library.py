"""The scene library on a 10,000-scene store: time to first paint, and to scroll it end to end.

    .venv/bin/python benchmarks/library.py [--dir /tmp/mfv-store-bench]   (reuses benchmarks/store.py's store)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/mfv-store-bench")
    ap.add_argument("--steps", type=int, default=100)
    a = ap.parse_args()
    data = Path(a.dir) / "data"
    if not (data / "store.sqlite").is_file():
        subprocess.run([sys.executable, str(Path(__file__).with_name("store.py")), "--dir", a.dir], check=True)
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from mfv_desktop.store import open_store
    from mfv_desktop.ui.library import SceneLibrary

    app = QApplication([])
    store = open_store(data)
    painted: list[float] = []

    class OnPaint(QObject):
        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint:
                painted.append(time.perf_counter())
            return False

    t0 = time.perf_counter()
    lib = SceneLibrary(store)
    spy = OnPaint()
    lib.view.viewport().installEventFilter(spy)
    lib.resize(360, 800)
    lib.show()
    while not painted:
        app.processEvents()
    first_paint = painted[0] - t0
    print(f"scenes in the library: {lib.model.rowCount():,}")
    print(f"construct -> first paint of the list: {1e3 * first_paint:8.1f} ms")

    bar = lib.view.verticalScrollBar()
    t1 = time.perf_counter()
    for i in range(1, a.steps + 1):
        n = len(painted)
        bar.setValue(round(bar.maximum() * i / a.steps))
        while len(painted) == n:
            app.processEvents()
    scroll = time.perf_counter() - t1
    print(f"scroll end to end in {a.steps} steps:   {1e3 * scroll:8.1f} ms ({1e3 * scroll / a.steps:.1f} ms a step)")
    bar.setValue(0)
    app.processEvents()
    t2 = time.perf_counter()
    n = len(painted)
    bar.setValue(bar.maximum())
    while len(painted) == n:
        app.processEvents()
    print(f"jump from top to end:                {1e3 * (time.perf_counter() - t2):8.1f} ms")
    print(f"library first_paint_ms={1e3 * first_paint:.0f} scroll_end_to_end_ms={1e3 * scroll:.0f} "
          f"pages_fetched={lib.model.pages_fetched}")
    store.close()


if __name__ == "__main__":
    main()
