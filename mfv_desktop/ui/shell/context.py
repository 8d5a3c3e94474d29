"""What a panel of the app may use, instead of the window: the store, the job queue, the undo stack,
the settings and the model every job runs on, the scene open on the Scene tab, a way to tell the user
something and to ask a yes/no question, and the signals that say what changed. The window makes one
and hands it to every panel; nothing here knows which widgets exist, and no panel imports the window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QUndoStack

from mfv_desktop.progress import Progress
from mfv_desktop.specs import ModelRef
from mfv_desktop.store import Store
from mfv_desktop.ui.shell.jobs import Job, JobQueue
from mfv_desktop.ui.shell.settings import compute_of, get


class AppContext(QObject):
    #: the store's vectors changed (made, imported, renamed, deleted): panels that list them reload
    vectorsChanged = Signal()
    #: the scene open on the Scene tab (an id, or None)
    sceneChanged = Signal(object)
    #: scenes came or went (an import, a generated data set, a drawing, a deletion)
    scenesChanged = Signal()
    #: the model, device or precision jobs run on changed (the settings)
    modelChanged = Signal()
    #: a message for the user: (text, is it an error); the window shows it in the status bar
    notified = Signal(str, bool)

    def __init__(
        self, store: Store, settings: QSettings, parent: QObject | None = None, read_only_reason: str = ""
    ) -> None:
        super().__init__(parent)
        self.store, self.settings, self.read_only_reason = store, settings, read_only_reason
        self.jobs = JobQueue(store, self)
        self.jobs.compute = lambda: compute_of(self.settings)
        self.undo = QUndoStack(self)
        self._scene_id: int | None = None
        #: replaceable by tests and scripts (the window sets a dialog): answer a yes/no question
        self.confirm: Callable[[str], bool] = lambda question: False

    # -- the scene open on the Scene tab -------------------------------------------------------
    @property
    def scene_id(self) -> int | None:
        return self._scene_id

    def set_scene(self, scene_id: int | None) -> None:
        self._scene_id = scene_id
        self.sceneChanged.emit(scene_id)

    # -- the model jobs run on -----------------------------------------------------------------
    @property
    def model(self) -> str:
        return get(self.settings, "model")

    def model_ref(self) -> ModelRef:
        """The model, device and precision every job of the app runs on (from the settings)."""
        return ModelRef(self.model, get(self.settings, "device"), get(self.settings, "dtype"))

    def use_model(self, model: str, device: str, dtype: str) -> None:
        """Save the model every job from now on runs on."""
        for key, value in (("model", model), ("device", device), ("dtype", dtype)):
            self.settings.setValue(key, value)
        self.settings.sync()
        self.modelChanged.emit()

    # -- telling the user ----------------------------------------------------------------------
    def notify(self, message: str, error: bool = False) -> None:
        self.notified.emit(message, error)

    # -- jobs ----------------------------------------------------------------------------------
    def _writable(self) -> bool:
        if self.store.read_only:
            self.notify("the store is open read-only: jobs cannot record their results", error=True)
        return not self.store.read_only

    def run(
        self,
        work: Callable,
        what: str,
        on_done: Callable[[Any], None],
        recorded: bool = False,
        on_failed: Callable[[str], None] | None = None,
    ) -> Job | None:
        """Queue plain work (an import) in the background; the jobs panel and status bar show it
        (`recorded`: as the run it records, see `JobQueue.submit`); a failure is told in the status
        bar, and to `on_failed`."""
        if not self._writable():
            return None

        def failed(msg: str) -> None:
            self.notify(f"{what} failed: {msg}", True)
            if on_failed:
                on_failed(msg)

        return self.jobs.submit(work, what, on_done, on_failed=failed, recorded=recorded)

    def submit_spec(
        self,
        spec,
        what: str,
        on_done: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        dataset: str | None = None,
    ) -> Job | None:
        """Queue a job spec, recorded in the store as a run (what `mfv --store` runs). Failures are
        shown in the status bar and, with their traceback, in the jobs panel."""
        if not self._writable():
            return None

        def failed(msg: str) -> None:
            self.notify(f"{what} failed: {msg} (details in the Jobs panel)", error=True)
            if on_failed:
                on_failed(msg)

        return self.jobs.submit_spec(spec, what, on_done, on_progress, failed, dataset=dataset)
