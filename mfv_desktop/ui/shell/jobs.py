"""Jobs in the desktop app: a queue that runs one job at a time in a worker thread, and the panel
that lists every run of the store with its progress, ETA, cancel, resume and errors.

Jobs run one at a time because they share one model (a model loads once per model, device and
precision, in `backends.load_backend`, and stays loaded for the next job). A job given as a spec is
recorded in the store as a run, exactly as `mfv --store` records it; plain work (a model check) is
listed for this session only. Every job is a generator of Progress run by a worker (workers.py);
workers never touch widgets: the queue hears their signals on the GUI thread and passes progress on
to whoever submitted the job.
"""

from __future__ import annotations

import itertools
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.compute import Compute, computed_on
from mfv_desktop.progress import Progress
from mfv_desktop.store import Store
from mfv_desktop.store import runs as run_repo
from mfv_desktop.store.runs import RunView
from mfv_desktop.ui.shell.run_details import RunDetails, error_text
from mfv_desktop.ui.shell.workers import JobWorker, Work

log = logging.getLogger("mfv_desktop.jobs")
_tickets = itertools.count(1)


@dataclass(eq=False)
class Job:
    """A job submitted in this session."""

    what: str
    work: Work
    on_done: Callable[[Any], None] | None = None
    on_progress: Callable[[Progress], None] | None = None
    on_failed: Callable[[str], None] | None = None
    ticket: int = field(default_factory=lambda: next(_tickets))
    run_id: int | None = None
    status: str = "queued"  # queued, running, done, failed, cancelled
    progress: Progress | None = None
    started: float | None = None
    finished: float | None = None
    error: str = ""
    traceback: str = ""
    result: Any = None
    worker: JobWorker | None = None
    #: recorded in the store as a run (a job spec), or plain work listed for this session only
    recorded: bool = False

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None until there is a rate)."""
        p = self.progress
        if self.status != "running" or p is None or self.started is None or p.done <= 0 or p.total <= 0:
            return None
        elapsed = time.time() - self.started
        return elapsed * (p.total - p.done) / p.done


class JobQueue(QObject):
    """Jobs run one after another, each in its own worker thread."""

    #: a job was queued, started or ended (the Job)
    changed = Signal(object)
    #: a running job reported progress (the Job, the Progress)
    progressed = Signal(object, object)
    #: the job running when `stop` was asked has ended (the window may close now)
    stopped = Signal()

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.jobs: list[Job] = []
        #: `stop` was asked (the window closes): no job starts any more
        self.stopping = False
        #: where the jobs submitted from now on compute (the window sets Settings > Compute)
        self.compute: Callable[[], Compute | None] = lambda: None

    # -- submitting --------------------------------------------------------------------------
    def submit(
        self,
        work: Work,
        what: str,
        on_done: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        recorded: bool = False,
    ) -> Job:
        """Queue plain work: `work()` makes a generator of Progress that returns the result (a
        generator function, called in the worker thread; a plain function also does, but cannot stop
        half-way). `recorded`: the work records itself as a run of the store and says which in the
        Progress it yields (`Progress.run_id`): the Jobs panel then lists the job as that run."""
        return self._queue(Job(what, work, on_done, on_progress, on_failed, recorded=recorded))

    def _queue(self, job: Job) -> Job:
        self.jobs.append(job)
        self.changed.emit(job)
        self._next()
        return job

    def submit_spec(
        self,
        spec,
        what: str | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        dataset: str | None = None,
    ) -> Job:
        """Queue a job spec, recorded in the store as a run; on_done gets (run id, summary)."""
        from mfv_desktop.jobs.stored import run_in_store

        compute = self.compute()
        return self.submit(
            lambda: computed_on(run_in_store(self.store, spec, dataset=dataset), compute),
            what or spec.kind,
            on_done,
            on_progress,
            on_failed,
            recorded=True,
        )

    def resume(
        self,
        run_id: int,
        on_done: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Job:
        """Queue an interrupted, cancelled or failed run to go on in its own folder."""
        from mfv_desktop.jobs.stored import resume

        kind, compute = run_repo.get_run(self.store, run_id).kind, self.compute()
        work = lambda: computed_on(resume(self.store, run_id), compute)  # noqa: E731
        job = self.submit(work, f"{kind} (resumed)", on_done, on_progress, recorded=True)
        job.run_id = run_id
        return job

    # -- running -----------------------------------------------------------------------------
    @property
    def running(self) -> Job | None:
        return next((j for j in self.jobs if j.status == "running"), None)

    def busy(self) -> bool:
        return any(j.status in ("queued", "running") for j in self.jobs)

    def for_run(self, run_id: int) -> Job | None:
        """This session's latest job for a run of the store."""
        return next((j for j in reversed(self.jobs) if j.run_id == run_id), None)

    def cancel(self, job: Job) -> None:
        """A queued job is dropped; a running one is closed at its next yield (it records itself
        cancelled)."""
        if job.status == "queued":
            job.status = "cancelled"
            self.changed.emit(job)
        elif job.status == "running" and job.worker is not None:
            job.worker.quit()

    def _next(self) -> None:
        if self.stopping:
            if self.running is None:
                self.stopped.emit()
            return
        if self.running is not None or any(j.worker is not None and j.worker.is_running for j in self.jobs):
            return
        job = next((j for j in self.jobs if j.status == "queued"), None)
        if job is None:
            return
        w = JobWorker(job.work)
        job.worker, job.status, job.started = w, "running", time.time()
        w.yielded.connect(lambda p: self._on_progress(job, p))
        w.returned.connect(lambda r: self._end(job, "done", result=r))
        w.errored.connect(
            lambda e: self._end(
                job, "failed", error=str(e) or type(e).__name__, tb="".join(traceback.format_exception(e))
            )
        )

        def cancelled() -> None:
            self._end(job, "cancelled")

        # superqt's stub types a signal without arguments as passing None: a slot without parameters
        # does not match it (Qt calls it with none)
        w.aborted.connect(cancelled)  # type: ignore[arg-type]
        w.finished.connect(self._next)  # type: ignore[arg-type]  # the next job starts when this worker has ended
        self.changed.emit(job)
        if not job.recorded:  # a recorded job is logged as its run, once it has one (`_on_progress`)
            log.info("started: %s (not recorded in the store)", job.what)
        w.start()

    def _on_progress(self, job: Job, p: Any) -> None:
        if not isinstance(p, Progress):
            return
        if p.run_id is not None and job.run_id != p.run_id:  # the run it records itself as: listed as that
            job.run_id = p.run_id
            self.changed.emit(job)
        if p.is_run_start:
            log.info("run %s started: %s", p.run_id, job.what)
            return
        job.progress = p
        if job.on_progress:
            job.on_progress(p)
        self.progressed.emit(job, p)

    def _end(self, job: Job, status: str, result: Any = None, error: str = "", tb: str = "") -> None:
        job.status, job.finished, job.result, job.error, job.traceback = status, time.time(), result, error, tb
        took = job.finished - (job.started or job.finished)
        # named by the run's id, as the Jobs panel lists it; a plain job, or one that failed before
        # its run row existed, has none
        if job.run_id is not None:
            head = f"run {job.run_id} {status} after {took:.1f} s: {job.what}"
        elif job.recorded:
            head = f"{job.what} {status} before its run was recorded, after {took:.1f} s"
        else:
            head = f"{job.what} {status} after {took:.1f} s (not recorded in the store)"
        if status == "failed":
            log.error("%s: %s\n%s", head, error, tb)
        else:
            log.info("%s", head)
        self.changed.emit(job)
        if status == "done" and job.on_done:
            job.on_done(result)
        elif status == "failed" and job.on_failed:
            job.on_failed(error)

    def stop(self, ms: int = 500) -> bool:
        """Stop for the window to close: nothing more starts, what is queued is dropped, what runs
        is cancelled (closed at its next yield, where its run records itself cancelled), waited for
        at most `ms`. True when no job runs any more, its last signals delivered (the panel and the
        job show it cancelled); else `stopped` is emitted once it has ended."""
        self.stopping = True
        for j in self.jobs:
            if j.status == "queued":
                self.cancel(j)
        job = self.running
        if job is not None and job.worker is not None:
            job.worker.quit()
            if not job.worker.wait(ms):
                return False
            QCoreApplication.sendPostedEvents()  # its `aborted` and `finished`, while the store is open
        return True


def submit_reporting(ctx, label: QLabel, spec, what: str, on_done: Callable[[Any], None]) -> Job | None:
    """Queue a job spec through the app context, with a label that says "queued…", the job's progress,
    its error in red, or "done (run N)" before on_done((run id, summary)) is called."""
    from html import escape

    def done(outcome: tuple[int, dict]) -> None:
        label.setText(f"done (run {outcome[0]})")
        on_done(outcome)

    job = ctx.submit_spec(
        spec,
        what,
        on_done=done,
        on_progress=lambda p: label.setText(escape(p.message)),
        on_failed=lambda msg: label.setText(f"<span style='color:#b00020'>{escape(msg)}</span>"),
    )
    label.setText("queued…" if job is not None else "")
    return job


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class JobsPanel(QWidget):
    """Every run of the store, newest first, with this session's queued and plain jobs on top; the
    selected one's details beside the list. A new run comes into view as it is queued."""

    COLUMNS = ("run", "job", "status", "progress", "ETA", "message")
    MAX_RUNS = 300
    #: the kinds of run that keep the prompts they measured (the prompt viewer shows them)
    PROMPT_KINDS = frozenset({"aie", "sweep", "evaluate", "chain", "apply", "analogy"})
    #: the prompt viewer of a run is asked for (the window opens it: the panel knows no science view)
    promptsRequested = Signal(int)

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)  # compact rows
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.details = RunDetails(self)
        #: the details' form (what tests and scripts read)
        self.log = self.details.form
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.folder_button = QPushButton("Open folder")
        self.prompts_button = QPushButton("Prompts…")
        self.prompts_button.setToolTip("the prompts this run measured: images, text, expected and given answers")
        self.summary = QLabel()
        corner = QWidget(self)  # the buttons beside the details' tabs: no row of their own
        buttons = QHBoxLayout(corner)
        buttons.setContentsMargins(6, 0, 0, 2)
        for b in (self.cancel_button, self.resume_button, self.folder_button, self.prompts_button):
            buttons.addWidget(b)
        self.details.tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)
        split = QSplitter(Qt.Orientation.Horizontal, self)  # the list its full height, the details beside it
        runs = QWidget(self)  # the list, under how many jobs are queued or running
        column = QVBoxLayout(runs)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.summary)
        column.addWidget(self.table)
        split.addWidget(runs)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.resume_button.clicked.connect(self.resume_selected)
        self.folder_button.clicked.connect(self.open_selected_folder)
        self.prompts_button.clicked.connect(self._prompts_of_selected)
        self.table.itemSelectionChanged.connect(self._selected_changed)
        queue.changed.connect(lambda _: self.refresh())
        queue.progressed.connect(self._progressed)
        self._rows: list[tuple[Job | None, RunView | None]] = []
        self.refresh()

    # -- the list ----------------------------------------------------------------------------
    @staticmethod
    def _keys(row: tuple[Job | None, RunView | None]) -> set[tuple[str, int]]:
        job, run = row
        return ({("run", run.id)} if run is not None else set()) | ({("job", id(job))} if job is not None else set())

    def refresh(self) -> None:
        keep = self.selected()
        runs = run_repo.list_runs(self.queue.store, limit=self.MAX_RUNS)
        listed = {r.id for r in runs}
        # jobs without a run row yet (queued ones), and plain ones, which never get one
        rows: list[tuple[Job | None, RunView | None]] = [
            (j, None)
            for j in reversed(self.queue.jobs)
            if j.run_id not in listed and (j.status in ("queued", "running") or not j.recorded)
        ]
        rows += [(self.queue.for_run(r.id), r) for r in runs]
        seen = {k for r in self._rows for k in self._keys(r)}
        new = bool(rows) and not seen & self._keys(rows[0])  # a job listed before it had its run is not new
        self._rows = rows
        self.table.setRowCount(len(rows))
        for i, (job, run) in enumerate(rows):
            self._fill(i, job, run)
        n_active = sum(j.status in ("queued", "running") for j in self.queue.jobs)
        self.summary.setText(f"{n_active} queued or running" if n_active else "idle")
        if keep is not None:
            for i, row in enumerate(rows):
                if (row[1] is not None and keep[1] is not None and row[1].id == keep[1].id) or (
                    row[0] is not None and row[0] is keep[0]
                ):
                    self.table.selectRow(i)
                    break
        if new:  # the newest run on top, in view (the selection stays where the user put it)
            self.table.scrollToTop()
        self._selected_changed()

    def _fill(self, i: int, job: Job | None, run: RunView | None) -> None:
        live = job is not None and job.status in ("queued", "running")
        if job is not None and (live or run is None):
            status = job.status
        else:
            status = run.status if run is not None else ""
        p = job.progress if live and job is not None else None
        if p is not None:
            done, total, message = p.done, p.total, p.message
        elif run is not None:
            done, total, message = run.done, run.total, run.message
        else:
            done, total, message = 0, 0, (job.error if job else "")
        cells = (
            str(run.id) if run else "",
            job.what if job and run is None else (run.kind if run else ""),
            status,
            (f"{100 * done / total:.0f}%" if total else "") + (f" · {p.workers} workers" if p and p.workers else ""),
            _eta(job.eta_s) if job else "",
            message,
        )
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c == 2 and status in ("failed", "interrupted"):
                item.setForeground(Qt.GlobalColor.red)
            self.table.setItem(i, c, item)

    def _progressed(self, job: Job, _p: Progress) -> None:
        for i, (j, run) in enumerate(self._rows):
            if j is job:
                self._fill(i, j, run)
                return
        self.refresh()  # a job this list has not seen yet

    # -- the selection -----------------------------------------------------------------------
    def selected(self) -> tuple[Job | None, RunView | None] | None:
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()] if rows and rows[0].row() < len(self._rows) else None

    def select_run(self, run_id: int) -> None:
        for i, (_, run) in enumerate(self._rows):
            if run is not None and run.id == run_id:
                self.table.selectRow(i)
                return

    def _folder(self, run: RunView | None) -> Path | None:
        """The run's folder, when it has one (extract, compose and apply runs write only to the store)."""
        folder = self.queue.store.data_dir / run.out if run is not None and run.out else None
        return folder if folder is not None and folder.is_dir() else None

    def _selected_changed(self) -> None:
        sel = self.selected()
        job, run = sel if sel else (None, None)
        active = job is not None and job.status in ("queued", "running")
        self.cancel_button.setEnabled(active)
        self.resume_button.setEnabled(
            not active and run is not None and run.status in ("interrupted", "cancelled", "failed")
        )
        self.folder_button.setEnabled(self._folder(run) is not None)
        self.prompts_button.setEnabled(run is not None and run.kind in self.PROMPT_KINDS)
        if sel is None:
            self.details.clear()
            return
        self.details.show_run(
            run,
            job.what if job is not None else "",
            job.status if active and job is not None else "",
            error_text(run, self._folder(run), *((job.error, job.traceback) if job is not None else ())),
            self._notes(run),
        )

    def _notes(self, run: RunView | None) -> tuple[str, ...]:
        if run is None:
            return ()
        notes = []
        if run.status == "interrupted":
            notes.append("The process running this job ended before it did. Resume goes on where it stopped.")
        if run.seconds:
            folder = self._folder(run)
            notes.append(f"folder: {folder}" if folder else "results in the store only")
        return tuple(notes)

    def cancel_selected(self) -> None:
        sel = self.selected()
        if sel and sel[0] is not None:
            self.queue.cancel(sel[0])

    def resume_selected(self) -> Job | None:
        sel = self.selected()
        if not sel or sel[1] is None:
            return None
        return self.queue.resume(sel[1].id)

    def _prompts_of_selected(self) -> None:
        sel = self.selected()
        if sel and sel[1] is not None:
            self.promptsRequested.emit(sel[1].id)

    def open_selected_folder(self) -> None:
        sel = self.selected()
        folder = self._folder(sel[1]) if sel else None
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
