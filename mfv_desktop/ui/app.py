"""`mfv-desktop`: the app's entry point. The window opens before torch is ever imported; models
load in workers when a job needs them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mfv_desktop import __version__


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mfv-desktop")
    p.add_argument("--version", action="version", version=f"mfv-desktop {__version__}")
    p.add_argument("--data-dir", help="the store's data folder (default: the settings' or the per-user one)")
    p.add_argument("--settings", help="an INI file to keep settings in (default: the user's settings)")
    p.add_argument(
        "--reset",
        action="store_true",
        help="put the settings back to their defaults (model, device, theme, shortcuts, window layout); "
        "the store and its data are kept",
    )
    p.add_argument(
        "--no-samples",
        action="store_true",
        help="on the first start with an empty store, do not add the sample data set",
    )
    p.add_argument(
        "--quit-after-show",
        action="store_true",
        help="print the time the window was shown (seconds since the epoch) and quit: for start-up timing",
    )
    args, qt_args = p.parse_known_args(argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    running = QApplication.instance()
    app = running if isinstance(running, QApplication) else QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("mfv_desktop")
    app.setDesktopFileName("mfv-desktop")  # the .desktop entry (installer/), for the task bar's icon
    from PySide6.QtGui import QIcon

    from mfv_desktop.locations import shipped

    app.setWindowIcon(QIcon(str(shipped("resources") / "icons" / "mfv_desktop.png")))
    from mfv_desktop.logs import setup_logging
    from mfv_desktop.ui.shell.main_window import MainWindow, apply_user_theme
    from mfv_desktop.ui.shell.settings import app_settings

    log_path = setup_logging()
    settings = app_settings(args.settings)
    if args.reset:
        settings.clear()
        settings.sync()
    apply_user_theme(settings)
    from mfv_desktop.ui.shell.settings import get
    from mfv_desktop.ui.shell.startup import open_or_ask

    opened = open_or_ask(args.data_dir or get(settings, "data_dir") or None, settings)
    if opened is None:
        print(
            f"mfv-desktop: the store did not open and you chose to quit; the reason is in the log: {log_path}",
            file=sys.stderr,
        )
        return 1
    win = MainWindow(settings=settings, store=opened)
    win.show()
    import logging

    logging.getLogger("mfv_desktop").info(
        "mfv-desktop %s started on %s (log: %s)", __version__, win.store.data_dir, log_path
    )
    if not args.no_samples and not args.quit_after_show:
        win.add_samples_on_first_start()
    _quit_on_signals(win)
    if args.quit_after_show:
        import time

        def shown() -> None:
            print(f"shown {time.time():.6f}", flush=True)
            win.close()

        QTimer.singleShot(0, shown)
    code = app.exec()
    return _ended(code)


def _quit_on_signals(win) -> None:
    """SIGTERM (a logout, `kill`) and SIGINT (Ctrl+C in the terminal) trigger the quit action, as the
    menu does: the running job is cancelled and recorded so, the store closed. Python runs a signal
    handler only between its own instructions: a timer lets it in while Qt waits for events."""
    import signal

    from PySide6.QtCore import QTimer

    def quit_(_signum, _frame) -> None:
        QTimer.singleShot(0, win.acts["file.quit"].trigger)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, quit_)
    wake = QTimer(win)
    wake.timeout.connect(lambda: None)
    wake.start(200)


#: how long the app waits, once its window closed, for worker threads still running
THREADS_WAIT_MS = 10000


def _ended(code: int) -> int:
    """After the event loop: no worker thread may still run Python while the interpreter ends (that
    ends in a fatal error), and no signal of one may wait undelivered."""
    import logging
    import os

    from PySide6.QtCore import QCoreApplication, QThreadPool

    if not QThreadPool.globalInstance().waitForDone(THREADS_WAIT_MS):
        logging.getLogger("mfv_desktop").error("a worker thread did not end: leaving without cleaning up")
        logging.shutdown()
        os._exit(code)
    QCoreApplication.sendPostedEvents()
    return code


if __name__ == "__main__":
    sys.exit(main())
