"""Scenes coming in: image files and folders (menu, drag and drop), a generated data set, the sample
data set on the first start. Each runs as a background job of the queue; when its scenes are in,
`AppContext.scenesChanged` fires (the library recounts, the banner updates)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QDialog, QFileDialog, QWidget

from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.dialogs import GenerateDialog
from mfv_desktop.ui.shell.jobs import Job

if TYPE_CHECKING:
    from mfv_desktop.import_specs import GQAImportSpec

SAMPLE_SCENES = 200
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff)"


class Imports:
    def __init__(self, ctx: AppContext, parent: QWidget) -> None:
        self.ctx, self.parent = ctx, parent
        self.gqa_dialog: QDialog | None = None

    def ask_import_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.parent, "Import images", "", IMAGE_FILTER)
        if paths:
            self.import_paths(paths)

    def ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent, "Import a folder of images")
        if folder:
            self.import_paths([folder])

    def import_paths(self, paths: list[str], dataset: str = "imported") -> Job | None:
        """Image files and folders (menu, drag and drop) into a data set, in the background."""
        from mfv_desktop.store.exchange import import_images

        store = self.ctx.store
        files: list[str | Path] = list(paths)
        return self.ctx.run(lambda: import_images(store, files, dataset), "import", self._imported, recorded=True)

    def _imported(self, result: dict) -> None:
        skipped = result.get("not_images", [])
        self.ctx.notify(
            f"{result['added']} images added to {result['dataset']!r}"
            + (f"; {len(skipped)} skipped: {skipped[0]}" if skipped else ""),
            error=bool(skipped),
        )
        self.ctx.scenesChanged.emit()

    def ask_import_gqa(self) -> None:
        """File > Import > GQA scene graphs…: the dialog (built on first use) with the importer's filters."""
        from mfv_desktop.ui.shell.gqa_import import GQAImportDialog

        if self.gqa_dialog is None:
            self.gqa_dialog = GQAImportDialog(self.import_gqa, self.parent)
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
            self.ctx.scenesChanged.emit()
            on_done(result)

        return self.ctx.run(
            lambda: import_gqa(store, spec.scene_graphs, spec.images, spec.dataset, options),
            "import GQA",
            done,
            recorded=True,
            on_failed=on_failed,
        )

    def ask_generate(self) -> None:
        d = GenerateDialog(self.parent)
        if d.exec():
            self.generate(d.spec(), d.dataset.text().strip() or "generated")

    def generate(self, spec, dataset: str, then: Callable[[], None] | None = None) -> Job | None:
        def done(_result: Any) -> None:
            self.ctx.scenesChanged.emit()
            if then:
                then()

        return self.ctx.submit_spec(spec, "generate", done, dataset=dataset)

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
        from mfv_desktop.jobs import GenerateSpec

        return self.generate(GenerateSpec(n_scenes=SAMPLE_SCENES, seed=0, split="sample"), "sample", then)
