"""Jobs off the GUI thread. A worker thread runs a job generator (recorded in the store) and sends
plain Progress values back by signal; slots on the GUI thread draw them. Cancel stops the job at its
next yield. Workers never touch widgets."""

from __future__ import annotations

import gc
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal

from mfv_desktop.progress import Cancelled, Progress


class _Runner(QObject):
    progress = Signal(object)  # Progress
    finished = Signal(object)  # the job's result
    failed = Signal(str, str)  # the message, the traceback
    cancelled = Signal()

    def __init__(self, work: Callable[[Callable[[Progress], None], Callable[[], bool]], Any]):
        super().__init__()
        self.work = work
        self.cancel_flag = threading.Event()

    def run(self) -> None:
        try:
            result = self.work(self.progress.emit, self.cancel_flag.is_set)
        except Cancelled:
            self.cancelled.emit()
        except Exception as e:  # noqa: BLE001 - reported to the user, never raised into Qt
            self.failed.emit(str(e) or type(e).__name__, traceback.format_exc())
        else:
            self.finished.emit(result)


class _CollectOnGuiThread:
    """Python's cyclic garbage collector runs in whichever thread happens to allocate past its
    threshold. In a worker that may destroy Qt objects of the GUI (a closed panel's widgets in a
    reference cycle) off the GUI thread, and deadlock with it: the worker waits for the GIL inside
    Qt's lock, the GUI thread for that lock holding the GIL. While workers run, automatic collection
    is off and a timer on the GUI thread collects instead."""

    INTERVAL_MS = 300

    def __init__(self) -> None:
        self.running = 0
        self.timer: QTimer | None = None

    def worker_started(self) -> None:
        if self.timer is None:
            self.timer = QTimer()
            self.timer.timeout.connect(self.collect)
        if self.running == 0:
            gc.disable()
            self.timer.start(self.INTERVAL_MS)
        self.running += 1

    def worker_ended(self) -> None:
        self.running = max(self.running - 1, 0)
        if self.running == 0 and self.timer is not None:
            self.timer.stop()
            gc.enable()

    @staticmethod
    def collect() -> None:
        """The young generations, when past their thresholds. The oldest, a full and slow pass over
        the heap, waits until no job runs and the automatic collector is back."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        due = [g for g in range(2) if counts[g] > thresholds[g]]
        if due:
            gc.collect(due[-1])


_collector = _CollectOnGuiThread()


class Worker(QObject):
    """One background job: `Worker(work)` where work(on_progress, should_cancel) does the job."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)  # the message, the traceback
    cancelled = Signal()
    done = Signal()  # after any of finished / failed / cancelled

    def __init__(self, work: Callable[[Callable[[Progress], None], Callable[[], bool]], Any],
                 parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.runner = _Runner(work)
        self.runner.moveToThread(self.thread)
        self.thread.started.connect(self.runner.run)
        for sig, mine in ((self.runner.progress, self.progress), (self.runner.finished, self.finished),
                          (self.runner.failed, self.failed), (self.runner.cancelled, self.cancelled)):
            sig.connect(mine)
        # quit from the worker's own thread: a GUI thread waiting for the worker (closing the window)
        # would never run a queued quit
        for sig in (self.runner.finished, self.runner.failed, self.runner.cancelled):
            sig.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(_collector.worker_ended)
        self.thread.finished.connect(self.done)

    def start(self) -> None:
        _collector.worker_started()
        self.thread.start()

    def cancel(self) -> None:
        self.runner.cancel_flag.set()

    def wait(self, ms: int = 30000) -> bool:
        return self.thread.wait(ms)

    def is_running(self) -> bool:
        return self.thread.isRunning()
