"""Scenes coming in: image files and folders (menu, drag and drop), a generated data set, the sample
data set on the first start. Each runs as a background job of the queue; while it runs, `incoming`
says how far it is (the library and the banner show it); when its scenes are in,
`AppContext.scenesChanged` fires (the library recounts, the banner updates) and the first scene an
import brought is shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QFileDialog, QWidget

from mfv_desktop.progress import Progress
from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.dialogs import GenerateDialog, plural
from mfv_desktop.ui.shell.jobs import Job

if TYPE_CHECKING:
    from mfv_desktop.import_specs import GQAImportSpec

SAMPLE_SCENES = 200
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff)"


class Imports(QObject):
    #: what is coming in now, for the library and the banner ("adding sample scenes… 40/200"; "": nothing)
    incoming = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget, show_scene: Callable[[int], None] | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.owner = ctx, parent
        self.gqa_dialog: QDialog | None = None
        #: shows a scene on the Scene tab (the first one an import brought), whatever the filters hide
        self.show_scene = show_scene
        #: the jobs bringing scenes in, with what they are doing ("importing images")
        self.active: dict[Job, str] = {}
        #: the job adding the sample data set, while it is queued or runs
        self.sample_job: Job | None = None
        ctx.jobs.progressed.connect(self._progressed)
        ctx.jobs.changed.connect(self._job_changed)

    # -- what is coming in -------------------------------------------------------------------------
    def _track(self, job: Job | None, doing: str) -> Job | None:
        if job is not None and job.status in ("queued", "running"):
            self.active[job] = doing
            self.incoming.emit(self.incoming_text())
        return job

    def incoming_text(self) -> str:
        return "; ".join(self.describe(job) for job in self.active)

    def describe(self, job: Job) -> str:
        """How far a job bringing scenes in is: "adding sample scenes… 40/200"."""
        doing, p = self.active.get(job, job.what), job.progress
        if p is None or p.total <= 0:
            return f"{doing}…" if job.status == "running" else f"{doing} (queued)"
        if job.what == "import":  # an import checks, then adds: its steps are not scenes
            return f"{doing}… {round(100 * p.fraction)}%"
        if p.done >= p.total:
            return f"{doing}: storing {p.total:,}…"
        return f"{doing}… {p.done:,}/{p.total:,}"

    def _progressed(self, job: Job, _p: Progress) -> None:
        if job in self.active:
            self.incoming.emit(self.incoming_text())

    def _job_changed(self, job: Job) -> None:
        if job in self.active and job.status not in ("queued", "running"):
            del self.active[job]
            if job is self.sample_job:
                self.sample_job = None
            self.incoming.emit(self.incoming_text())

    def ask_import_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.owner, "Import images", "", IMAGE_FILTER)
        if paths:
            self.import_paths(paths)

    def ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.owner, "Import a folder of images")
        if folder:
            self.import_paths([folder])

    def import_paths(self, paths: list[str], dataset: str = "imported") -> Job | None:
        """Image files and folders (menu, drag and drop) into a data set, in the background."""
        from mfv_desktop.store.exchange import import_images

        store = self.ctx.store
        files: list[str | Path] = list(paths)
        job = self.ctx.run(lambda: import_images(store, files, dataset), "import", self._imported, recorded=True)
        return self._track(job, "importing images")

    def _imported(self, result: dict) -> None:
        skipped = result.get("not_images", [])
        self.ctx.notify(
            f"{plural(result['added'], 'image')} added to {result['dataset']!r}"
            + (f"; {len(skipped)} skipped: {skipped[0]}" if skipped else ""),
            error=bool(skipped),
        )
        self.show_first_added(result["dataset"], result["added"])

    def show_first_added(self, dataset: str, added: int) -> None:
        """Tell the views that scenes came in, and show the first of the `added` scenes an import
        just put in `dataset`: they are its newest (ids grow, and jobs run one at a time)."""
        self.ctx.scenesChanged.emit()
        if added <= 0 or self.show_scene is None:
            return
        n = repo.count_scenes(self.ctx.store, dataset=dataset)
        rows = repo.page_scenes(self.ctx.store, max(n - added, 0), 1, dataset=dataset)
        if rows:
            self.show_scene(rows[0].id)

    def ask_import_gqa(self) -> None:
        """File > Import > GQA scene graphs…: the dialog (built on first use) with the importer's filters."""
        from mfv_desktop.ui.shell.gqa_import import GQAImportDialog

        if self.gqa_dialog is None:
            self.gqa_dialog = GQAImportDialog(self.import_gqa, self.owner)
        self.gqa_dialog.show()
        self.gqa_dialog.raise_()

    def import_gqa(
        self, spec: GQAImportSpec, on_done: Callable[[dict], None], on_failed: Callable[[str], None] | None = None
    ) -> Job | None:
        """GQA scene graphs into a data set, in the background, as `mfv import gqa` does; `on_done`
        gets the result with the importer's report (GQAReport.to_dict)."""
        from mfv_desktop.store.exchange import import_gqa

        store, options = self.ctx.store, spec.options()

        def done(result: dict) -> None:
            from mfv_desktop.scenes.importers import GQAReport

            self.ctx.notify(
                f"GQA: {GQAReport.from_dict(result['report']).headline()}; "
                f"{result['added']} added to {result['dataset']!r}"
            )
            self.show_first_added(result["dataset"], result["added"])
            on_done(result)

        job = self.ctx.run(
            lambda: import_gqa(store, spec.scene_graphs, spec.images, spec.dataset, options),
            "import GQA",
            done,
            recorded=True,
            on_failed=on_failed,
        )
        return self._track(job, "importing GQA scene graphs")

    def ask_generate(self) -> None:
        d = GenerateDialog(self.owner)
        if d.exec():
            self.generate(d.spec(), d.dataset.text().strip() or "generated")

    def generate(self, spec, dataset: str, then: Callable[[], None] | None = None) -> Job | None:
        def done(_result: Any) -> None:
            self.ctx.scenesChanged.emit()
            if then:
                then()

        job = self.ctx.submit_spec(spec, "generate", done, dataset=dataset)
        return self._track(job, f"adding {dataset} scenes" if dataset == "sample" else f"generating {dataset!r}")

    def add_samples_on_first_start(self) -> Job | None:
        """The first start on an empty store brings the sample data set in (once: a user who deletes
        it is not given it again)."""
        settings = self.ctx.settings
        if (
            self.ctx.store.read_only
            or settings.value("first_start/samples_added", False, type=bool)
            or repo.count_scenes(self.ctx.store) > 0
        ):
            return None
        # marked when the scenes are in: a start that ends before (a crash, a failed job) tries again
        return self.add_sample_scenes(lambda: settings.setValue("first_start/samples_added", True))

    def add_sample_scenes(self, then: Callable[[], None] | None = None) -> Job | None:
        """The sample data set, in the background; asked again while it comes in: the same job."""
        from mfv_desktop.jobs import GenerateSpec

        if self.sample_job is not None:
            return self.sample_job
        self.sample_job = self.generate(GenerateSpec(n_scenes=SAMPLE_SCENES, seed=0, split="sample"), "sample", then)
        self.incoming.emit(self.incoming_text())
        return self.sample_job
