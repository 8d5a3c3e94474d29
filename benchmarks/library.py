"""The scene library on a 10,000-scene store (50,000 labels): time from constructing the widget to its
first paint, to jump to the end, and to scroll end to end in steps (repainted at each), with the
pages it read from the store. Thumbnails start cold (the cache is emptied) and are made meanwhile.

    .venv/bin/python benchmarks/library.py [--scenes 10000] [--steps 100] [--dir /tmp/mfv-library-bench]

Without --dir the store is built in a new temporary folder; with it, a store already there is reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import open_store
from mfv_desktop.store import scenes as repo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def build(root: Path, n: int) -> Path:
    """The benchmark's data folder: reused if it has a store, else n scenes added as benchmarks/store.py does."""
    data = root / "data"
    if not (data / "store.sqlite").is_file():
        sys.path.insert(0, str(Path(__file__).parent))
        from store import make_scenes  # benchmarks/store.py

        t0 = time.perf_counter()
        scenes = make_scenes(root / "src", n)
        with open_store(data) as store:
            run_to_end(repo.add_scenes(store, "bench", scenes, batch=500))
        print(f"built a store of {n:,} scenes in {time.perf_counter() - t0:.1f} s")
    shutil.rmtree(data / "cache" / "thumbs", ignore_errors=True)
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--dir", default="")
    a = ap.parse_args()
    data = build(Path(a.dir or tempfile.mkdtemp(prefix="mfv-library-bench-")), a.scenes)

    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from mfv_desktop.ui.curation.library import PAGE, SceneLibrary

    app = QApplication([])
    store = open_store(data)
    painted: list[float] = []

    class OnPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                painted.append(time.perf_counter())  # the paint starts; it ends within processEvents()
            return False

    def until_painted(action: Callable[[], object]) -> float:
        """Seconds from the action to the end of the list's next paint (rows are read while painting)."""
        n, t = len(painted), time.perf_counter()
        action()
        while len(painted) == n and time.perf_counter() < t + 10:
            app.processEvents()
        return time.perf_counter() - t if len(painted) > n else float("nan")

    spy = OnPaint()
    lib: SceneLibrary | None = None

    def construct() -> None:
        nonlocal lib
        lib = SceneLibrary(store)
        lib.view.viewport().installEventFilter(spy)
        lib.resize(360, 800)
        lib.show()

    first_paint = until_painted(construct)
    assert lib is not None
    model, bar = lib.model, lib.view.verticalScrollBar()
    print(f"scenes in the library: {model.rowCount():,} (scroll bar 0..{bar.maximum():,} at once)")
    print(f"construct -> first paint:          {1e3 * first_paint:8.1f} ms   pages read: {model.pages_fetched}")
    jump = until_painted(lambda: bar.setValue(bar.maximum()))
    print(f"jump from the top to the end:      {1e3 * jump:8.1f} ms   pages read: {model.pages_fetched}")
    until_painted(lambda: bar.setValue(0))
    steps = [until_painted(lambda i=i: bar.setValue(round(bar.maximum() * i / a.steps))) for i in range(1, a.steps + 1)]
    scroll = sum(steps)
    print(
        f"scroll end to end in {a.steps} steps:  {1e3 * scroll:8.1f} ms   ({1e3 * scroll / a.steps:.1f} ms a step, "
        f"slowest {1e3 * max(steps):.1f} ms)   pages read: {model.pages_fetched} of "
        f"{-(-model.rowCount() // PAGE)}"
    )
    print(f"thumbnails in memory: {len(model.icons)}, still queued or running: {len(model.pending)}")
    print(
        f"library first_paint_ms={1e3 * first_paint:.0f} scroll_end_to_end_ms={1e3 * scroll:.0f} "
        f"pages_fetched={model.pages_fetched}"
    )
    lib.close()
    store.close()


if __name__ == "__main__":
    main()
