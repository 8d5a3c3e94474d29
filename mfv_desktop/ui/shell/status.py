"""The window's status bar: the store's folder, the model jobs run on, messages (`notify`), and the
running job with its progress and a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from mfv_desktop.progress import Progress
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.jobs import Job
from mfv_desktop.ui.shell.settings import get


class StatusBar(QStatusBar):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        ro = " (read-only)" if ctx.store.read_only else ""
        self.store_label = QLabel(f"store: {ctx.store.data_dir}{ro}")
        self.model_label = QLabel()
        self.job_label = QLabel()
        self.job_bar = QProgressBar()
        self.job_bar.setMaximumWidth(220)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.clicked.connect(self.cancel_job)
        for w in (self.job_label, self.job_bar, self.job_cancel):
            w.hide()
            self.addPermanentWidget(w)
        self.addPermanentWidget(self.store_label)
        self.addPermanentWidget(self.model_label)
        self.update_model()
        ctx.notified.connect(self.notify)
        ctx.modelChanged.connect(self.update_model)
        ctx.jobs.changed.connect(self._job_changed)
        ctx.jobs.progressed.connect(self._job_progress)

    def notify(self, message: str, error: bool = False) -> None:
        self.showMessage(("⚠ " if error else "") + message, 10000 if error else 5000)

    def update_model(self) -> None:
        s = self.ctx.settings
        self.model_label.setText(f"model: {self.ctx.model} · {get(s, 'device')} · {get(s, 'dtype')}")

    def show_stopping(self, job: Job | None) -> None:
        """The window is closing and waits for the running job to stop at its next step."""
        what = job.what if job is not None else "the job"
        self.job_label.setText(f"stopping {what}… the app closes when it has stopped")
        self.job_label.setStyleSheet("font-weight: bold;")
        self.job_label.show()
        self.job_bar.setRange(0, 0)  # busy: the step under way has no end we know of
        self.job_bar.show()
        self.job_cancel.hide()

    def _job_changed(self, job: Job) -> None:
        if self.ctx.jobs.stopping:
            return
        running = self.ctx.jobs.running
        for widget in (self.job_label, self.job_bar, self.job_cancel):
            widget.setVisible(running is not None)
        if running is not None:
            self.job_label.setText(running.what)
        if job.status == "cancelled":
            self.notify(f"{job.what} cancelled")

    def _job_progress(self, job: Job, p: Progress) -> None:
        if self.ctx.jobs.stopping:
            return
        self.job_bar.setMaximum(max(p.total, 1))
        self.job_bar.setValue(p.done)
        self.job_label.setText(f"{job.what}: {p.message[:60]}")

    def cancel_job(self) -> None:
        if self.ctx.jobs.running is not None:
            self.ctx.jobs.cancel(self.ctx.jobs.running)
