"""Jobs off the GUI thread. A job is a generator of Progress that returns its result (see
`mfv_desktop.progress`); superqt's `GeneratorWorker` runs it in Qt's thread pool and sends what it
yields back by signal, and slots on the GUI thread draw it. Cancelling closes the generator at its
next yield, in the worker thread, before the worker ends: the job records itself cancelled there and
then. Workers never touch widgets."""

from __future__ import annotations

import gc
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer
from superqt.utils import GeneratorWorker

from mfv_desktop.progress import Progress

log = logging.getLogger("mfv_desktop.jobs")


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
            self.timer = QTimer(QCoreApplication.instance())  # goes with the app, not after it
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

#: a job: a generator function (or any function returning a generator of Progress) called without
#: arguments; a plain function also does (it runs to its end: it cannot stop half-way)
Work = Callable[[], Any]


def _job(work: Work) -> Generator[Progress, None, Any]:
    """The work's generator, made in the worker thread (nothing of it runs on the GUI thread)."""
    out = work()
    if inspect.isgenerator(out):
        return (yield from out)
    return out


class JobWorker(GeneratorWorker):
    """superqt's generator worker for one job: `JobWorker(work)`, then connect its signals (yielded:
    a Progress, returned: the result, errored: the exception, aborted: cancelled; finished after any
    of them, from the worker's thread: connect slots, they run on the GUI thread) and `start()`.
    What differs from superqt's own loop:

    - `quit()` (cancel) closes the job's generator in the worker thread at its next yield, and only
      then emits `aborted`: the job's `except GeneratorExit` records the run cancelled before the
      worker ends, instead of whenever the garbage collector gets to the generator;
    - an exception of the job is `errored` whatever its type (superqt turns a RuntimeError, what
      torch raises, into a warning);
    - a job that returned before it saw the cancel keeps its result (`returned`, not dropped);
    - `wait(ms)` blocks until the worker has ended, at most `ms` (closing the window);
    - the job runs under the GC guard (`_CollectOnGuiThread`) from `start()` to `finished`;
    - warnings are logged (superqt sends them to `warned` only). No pause, no send."""

    def __init__(self, work: Work) -> None:
        super().__init__(_job, work)
        self.setAutoDelete(False)  # Python owns it (the Job keeps it): never deleted under a reader
        self._returned = False
        self._began = threading.Event()
        self._ended = threading.Event()
        seen: set[str] = set()

        def logged(w: tuple) -> None:
            text = warnings.formatwarning(*w[:4]).strip()
            if text not in seen:  # superqt shows every warning "always": once each is enough
                seen.add(text)
                log.warning("%s", text)

        self.warned.connect(logged)
        self.finished.connect(_collector.worker_ended)  # type: ignore[arg-type]  # superqt: no-argument signal

    @property
    def abort_requested(self) -> bool:
        # once the job has returned, a cancel comes too late: superqt then still emits `returned`
        return self._abort_requested and not self._returned

    def start(self) -> None:
        _collector.worker_started()
        super().start()

    def run(self) -> None:
        self._began.set()
        try:
            super().run()
        finally:
            self._ended.set()

    def work(self) -> Any:
        gen = self._gen
        while not self.abort_requested:
            try:
                p = next(gen)
            except StopIteration as stop:
                self._returned = True
                return stop.value
            self.yielded.emit(p)
        gen.close()  # GeneratorExit at the job's yield: it records itself cancelled, here and now
        self.aborted.emit()
        return None

    def wait(self, ms: int = 30000) -> bool:
        """Wait for the worker to end (True), at most `ms`. A cancelled worker that has not begun yet
        does nothing when it does (its job is closed before its first step): nothing to wait for."""
        if not self._began.is_set() and self._abort_requested:
            return True
        return self._ended.wait(ms / 1000)
