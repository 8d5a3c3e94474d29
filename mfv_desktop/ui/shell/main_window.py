"""The main window: scene library, scene canvas, relation panel and stamp palette in docks; menus
and a toolbar of actions with ids and shortcuts; a status bar with the store, the model and the
device, and the running job's progress. Every edit goes through the undo stack into the store at
once (nothing waits for a save). No torch here: models load in workers, when a job needs them."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton, QTabWidget,
    QVBoxLayout, QWidget,
)

from mfv_desktop import __version__
from mfv_desktop.progress import Progress
from mfv_desktop.scenes import Box, stamp_from_id
from mfv_desktop.specs import ModelRef
from mfv_desktop.store import Store, StoreError
from mfv_desktop.store import scenes as repo

import mfv_desktop.ui.curation.commands as cmd
from mfv_desktop.ui.shell.actions import SPECS, Actions, CheatSheet
from mfv_desktop.ui.curation.canvas import SceneCanvas
from mfv_desktop.ui.shell.dialogs import GenerateDialog, LogDialog, NameDialog
from mfv_desktop.ui.shell.jobs import Job, JobQueue, JobsPanel
from mfv_desktop.ui.curation.library import SceneLibrary
from mfv_desktop.ui.shell.models import install_menu
from mfv_desktop.ui.curation.palette import StampPalette
from mfv_desktop.ui.curation.relations import RelationPanel
from mfv_desktop.ui.shell.settings import SettingsDialog, app_settings, apply_theme, get
from mfv_desktop.ui.shell.startup import open_window_store
from mfv_desktop.ui.science.vectors import VectorLibrary

SAMPLE_SCENES = 200
#: the science tabs, in the order of the work: (key, title, module, panel class), built when first shown
SCIENCE_TABS = (("aie", "AIE", "mfv_desktop.ui.science.panels", "AIEPanel"),
                ("sweep", "Layer sweep", "mfv_desktop.ui.science.panels", "SweepPanel"),
                ("apply", "Apply", "mfv_desktop.ui.science.apply", "ApplyPanel"),
                ("analogy", "Analogy", "mfv_desktop.ui.science.analogy", "AnalogyPanel"))
#: a stamp's long side on a drawn canvas, as a fraction of the canvas (the paper: 130-230 of 800 px)
STAMP_SIZE = 0.22


class LazyTab(QWidget):
    """A tab whose panel is built the first time it is asked for (shown, or used by code)."""

    def __init__(self, make: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.make = make
        self.built: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    def panel(self) -> QWidget:
        if self.built is None:
            self.built = self.make()
            self.layout().addWidget(self.built)
        return self.built


class MainWindow(QMainWindow):
    #: the store's vectors changed (made, imported, renamed, deleted): panels that list them reload
    vectorsChanged = Signal()

    def __init__(self, data_dir: str | Path | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None, store: tuple[Store, str] | None = None):
        """`store`: a store the caller opened (`startup.open_or_ask`) and the reason it is read-only, if it is."""
        super().__init__(parent)
        self.settings = settings if settings is not None else app_settings()
        folder = data_dir or get(self.settings, "data_dir") or None
        self.store, self.read_only_reason = store or open_window_store(folder)
        self.undo = QUndoStack(self)
        self.scene_id: int | None = None
        self.jobs = JobQueue(self.store, self)
        #: replaceable by tests and scripts: ask for a name, confirm a question
        self.ask_name: Callable[[list[str], str], str | None] = lambda known, current: NameDialog.ask(
            self, known, self.model, current)
        self.confirm: Callable[[str], bool] = lambda q: QMessageBox.question(self, "mfv_desktop", q) == \
            QMessageBox.StandardButton.Yes

        self.setWindowTitle(f"mfv_desktop {__version__}")
        self.acts = Actions(self, self.settings)
        self.canvas = SceneCanvas(self)
        self.banner = self._make_banner()
        scene_tab = QWidget(self)
        column = QVBoxLayout(scene_tab)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.banner)
        column.addWidget(self.canvas)
        #: the workbench: the scene canvas, then the science panels, one tab each
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(scene_tab, "Scene")
        self.setCentralWidget(self.tabs)
        self.library = SceneLibrary(self.store, self)
        self.relations = RelationPanel(self)
        self.palette = StampPalette(self.store.data_dir / "stamps", self.store.data_dir / "cache" / "stamps", self)
        self.jobs_panel = JobsPanel(self.jobs, self)
        self.docks = {name: self._dock(name, title, w, area) for name, title, w, area in (
            ("library", "Scenes", self.library, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("relations", "Relations", self.relations, Qt.DockWidgetArea.RightDockWidgetArea),
            ("stamps", "Stamps", self.palette, Qt.DockWidgetArea.RightDockWidgetArea),
            ("jobs", "Jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea))}
        self._make_panels()
        self._make_status_bar()
        self._make_menus()
        self._connect()
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        else:  # the first start: the workbench gets the height, the jobs list a strip below it
            self.resizeDocks([self.docks["jobs"]], [170], Qt.Orientation.Vertical)
        self.refresh_vocabulary()
        self._update_banner()
        first = self.library.current_scene_id()
        if first is not None:
            self.show_scene(first)

    # -- building ----------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return get(self.settings, "model")

    def model_ref(self) -> ModelRef:
        """The model, device and precision every job of the app runs on (from the settings)."""
        return ModelRef(self.model, get(self.settings, "device"), get(self.settings, "dtype"))

    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock.{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_panels(self) -> None:
        """The science, in the order of the work: AIE, layer sweep, apply, analogy as tabs beside the
        scene canvas (each built when first shown: plotting loads then, not before the window opens);
        the vector library as a dock; the model manager in its menu."""
        self.lazy_tabs: dict[str, LazyTab] = {}
        for key, title, module, cls in SCIENCE_TABS:
            make = lambda module=module, cls=cls: getattr(import_module(module), cls)(self)  # noqa: E731
            self.lazy_tabs[key] = LazyTab(make, self)
            self.tabs.addTab(self.lazy_tabs[key], title)
        self.tabs.currentChanged.connect(self._tab_shown)
        self.vector_library = VectorLibrary(self)
        self.docks["vectors"] = self._dock("vectors", "Vectors", self.vector_library,
                                           Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["stamps"], self.docks["vectors"])  # the two libraries share a place
        self.model_menu = install_menu(self)

    aie_panel = property(lambda self: self.lazy_tabs["aie"].panel())
    sweep_panel = property(lambda self: self.lazy_tabs["sweep"].panel())
    apply_panel = property(lambda self: self.lazy_tabs["apply"].panel())
    analogy_panel = property(lambda self: self.lazy_tabs["analogy"].panel())

    def show_tab(self, key: str) -> QWidget:
        """Bring a science tab to the front; returns its panel."""
        self.tabs.setCurrentWidget(self.lazy_tabs[key])
        return self.lazy_tabs[key].panel()

    def _tab_shown(self, index: int) -> None:
        """A tab shows what the store holds now (data sets, runs, vectors made since it was last seen)."""
        page = self.tabs.widget(index)
        if isinstance(page, LazyTab):
            if page.built is None:
                page.panel()  # a new panel reads the store as it is built
            else:
                page.built.refresh()

    def _make_banner(self) -> QWidget:
        banner = QWidget(self)
        row = QHBoxLayout(banner)
        self.banner_text = QLabel(banner)
        self.banner_text.setWordWrap(True)
        row.addWidget(self.banner_text, 1)
        self.sample_button = QPushButton(f"Add {SAMPLE_SCENES} sample scenes", banner)
        self.sample_button.clicked.connect(self.add_sample_scenes)
        row.addWidget(self.sample_button)
        banner.setStyleSheet("background: #fff6d6; color: #4a3b00;")
        return banner

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        ro = " (read-only)" if self.store.read_only else ""
        self.store_label = QLabel(f"store: {self.store.data_dir}{ro}")
        self.model_label = QLabel()
        self.job_label = QLabel()
        self.job_bar = QProgressBar()
        self.job_bar.setMaximumWidth(220)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.clicked.connect(self.cancel_job)
        for w in (self.job_label, self.job_bar, self.job_cancel):
            w.hide()
            sb.addPermanentWidget(w)
        sb.addPermanentWidget(self.store_label)
        sb.addPermanentWidget(self.model_label)
        self._update_model_label()

    def _update_model_label(self) -> None:
        self.model_label.setText(f"model: {self.model} · {get(self.settings, 'device')} · {get(self.settings, 'dtype')}")

    def _make_menus(self) -> None:
        menus: dict[str, Any] = {}
        for spec in SPECS:
            if spec.menu not in menus:
                menus[spec.menu] = self.menuBar().addMenu(spec.menu)
            menus[spec.menu].addAction(self.acts[spec.id])
        for spec in SPECS:  # window-wide shortcuts, also with the menus closed
            self.addAction(self.acts[spec.id])
        tb = self.addToolBar("Tools")
        tb.setObjectName("toolbar.tools")
        for action_id in ("file.import_images", "file.generate", "file.new_drawing", None, "edit.undo", "edit.redo",
                          None, "edit.select", "edit.new_box", "edit.stamp", None, "label.suggest", "label.confirm",
                          "label.reject", None, "view.fit"):
            tb.addSeparator() if action_id is None else tb.addAction(self.acts[action_id])

    def _connect(self) -> None:
        a = self.acts
        handlers: dict[str, Callable[[], Any]] = {
            "file.import_images": self.ask_import_images, "file.import_folder": self.ask_import_folder,
            "file.generate": self.ask_generate, "file.new_drawing": self.new_drawing,
            "file.settings": self.open_settings, "file.quit": self.close,
            "edit.undo": self.undo.undo, "edit.redo": self.undo.redo,
            "edit.select": lambda: self.canvas.set_mode("select"), "edit.new_box": lambda: self.canvas.set_mode("box"),
            "edit.stamp": lambda: self.canvas.set_mode("stamp"),
            "edit.rename": lambda: self._on_selected(self.rename_object),
            "edit.delete": lambda: self._on_selected(self.delete_object),
            "scene.next": self.library.next_scene, "scene.previous": self.library.previous_scene,
            "scene.delete": self.delete_scene,
            "label.suggest": self.suggest, "label.confirm": self.relations.confirm, "label.reject": self.relations.reject,
            "label.next": lambda: self.relations.move(1), "label.previous": lambda: self.relations.move(-1),
            "label.add": self.relations.ask_add,
            "view.zoom_in": self.canvas.zoom_in, "view.zoom_out": self.canvas.zoom_out, "view.fit": self.canvas.fit,
            "help.shortcuts": self.show_cheat_sheet, "help.log": self.show_log,
        }
        for i in range(1, 10):
            handlers[f"label.relation.{i}"] = lambda *_, i=i: self.relations.relation_key(i)
        for action_id, fn in handlers.items():
            a[action_id].triggered.connect(fn)
        self.undo.canUndoChanged.connect(a["edit.undo"].setEnabled)
        self.undo.canRedoChanged.connect(a["edit.redo"].setEnabled)
        a["edit.undo"].setEnabled(False)
        a["edit.redo"].setEnabled(False)
        self.library.sceneActivated.connect(self.show_scene)
        self.library.countChanged.connect(lambda _: self._update_banner())
        self.canvas.boxDrawn.connect(self.add_box)
        self.canvas.boxChanged.connect(self.move_box)
        self.canvas.deleteRequested.connect(self.delete_object)
        self.canvas.renameRequested.connect(self.rename_object)
        self.canvas.stampPlaced.connect(self.place_stamp)
        self.palette.stampChosen.connect(self.arm_stamp)
        self.relations.statusRequested.connect(lambda t, status: self.edit(cmd.SetLabel, *t, status))
        self.relations.relabelRequested.connect(lambda t, new: self.edit(cmd.Relabel, t[0], t[1], t[2], new))
        self.relations.addRequested.connect(lambda s, r, o: self.edit(cmd.SetLabel, s, r, o, "confirmed"))
        self.relations.suggestRequested.connect(self.suggest)
        self.jobs.changed.connect(self._job_changed)
        self.jobs.progressed.connect(self._job_progress)

    # -- showing -----------------------------------------------------------------------------------
    def show_scene(self, scene_id: int | None) -> None:
        self.scene_id = scene_id
        if scene_id is None:
            self.canvas.clear()
            self.relations.show_labels([], [])
            return
        try:
            data, labels = repo.get_scene(self.store, scene_id)
        except StoreError:  # deleted meanwhile
            return self.show_scene(None)
        objects = repo.objects(self.store, scene_id)
        image = None if data.meta.get("drawn") else data.image
        self.canvas.show_scene(image, data.width, data.height, objects, labels)
        self.relations.show_labels(labels, [o.name for o in objects])
        self.setWindowTitle(f"{data.id} — mfv_desktop {__version__}")

    def refresh_vocabulary(self) -> None:
        self.relations.set_vocabulary([r.name for r in repo.relations(self.store)])

    def _changed(self, scene_id: int) -> None:
        """After every edit, its undo and its redo: redraw a drawn scene's image, show, recount."""
        data, _ = repo.get_scene(self.store, scene_id)
        if data.meta.get("drawn"):
            repo.render_drawn_scene(self.store, scene_id)
        if scene_id != self.scene_id:
            self.library.select_scene(scene_id)
        self.show_scene(scene_id)
        self.library.refresh()
        self.refresh_vocabulary()

    def notify(self, message: str, error: bool = False) -> None:
        self.statusBar().showMessage(("⚠ " if error else "") + message, 10000 if error else 5000)

    def _update_banner(self) -> None:
        empty = repo.count_scenes(self.store) == 0
        if self.read_only_reason:
            self.banner_text.setText(self.read_only_reason)
        else:
            self.banner_text.setText("No scenes yet. Add the sample data set, import images (drop them here), "
                                     "or draw a scene.")
        self.sample_button.setVisible(empty and not self.store.read_only)
        self.banner.setVisible(empty or bool(self.read_only_reason))

    # -- edits ---------------------------------------------------------------------------------------
    def edit(self, kind: type[cmd.Edit], *args: Any) -> bool:
        if self.scene_id is None:
            return False
        error = cmd.apply(self.undo, kind(self.store, self.scene_id, self._changed, *args))
        if error:
            self.notify(error, error=True)
        return error is None

    def _object(self, object_id: int) -> repo.ObjectView | None:
        return next((o for o in repo.objects(self.store, self.scene_id) if o.id == object_id), None) \
            if self.scene_id is not None else None

    def _on_selected(self, fn: Callable[[int], Any]) -> None:
        oid = self.canvas.selected_object()
        if oid is not None:
            fn(oid)

    def add_box(self, box: Box) -> None:
        name = self.ask_name(repo.object_names(self.store), "")
        if name:
            self.edit(cmd.AddObject, name, box)

    def move_box(self, object_id: int, box: Box) -> None:
        o = self._object(object_id)
        if o is not None and o.box != box:
            self.edit(cmd.MoveObject, o.name, o.box, box)

    def rename_object(self, object_id: int) -> None:
        o = self._object(object_id)
        if o is None:
            return
        name = self.ask_name(repo.object_names(self.store), o.name)
        if name and name != o.name:
            self.edit(cmd.RenameObject, o.name, name)

    def delete_object(self, object_id: int) -> None:
        o = self._object(object_id)
        if o is not None:
            self.edit(cmd.DeleteObject, o.name)

    def arm_stamp(self, stamp_id: str, _name: str) -> None:
        size = 800
        if self.scene_id is not None:
            data, _ = repo.get_scene(self.store, self.scene_id)
            size = max(data.width, data.height)
        self.canvas.set_stamp(stamp_id, round(STAMP_SIZE * size))
        self.canvas.set_mode("stamp")

    def place_stamp(self, stamp_id: str, box: Box) -> None:
        self.edit(cmd.AddObject, stamp_from_id(stamp_id).name, box, stamp_id)

    def suggest(self) -> None:
        self.edit(cmd.Suggest)

    def new_drawing(self) -> None:
        if self.store.read_only:
            return self.notify("the store is open read-only", error=True)
        sid = repo.create_drawn_scene(self.store, "drawn")
        self.library.refresh()
        self.library.select_scene(sid)
        self.show_scene(sid)
        self.canvas.set_mode("stamp")
        self.docks["stamps"].raise_()
        self._update_banner()

    def delete_scene(self) -> None:
        if self.scene_id is not None and self.confirm("Delete this scene with its objects and labels? "
                                                      "This cannot be undone."):
            repo.delete_scene(self.store, self.scene_id)
            self.undo.clear()  # its edits point at a scene that is gone
            self.library.refresh()
            self.show_scene(self.library.current_scene_id())

    # -- imports and jobs ------------------------------------------------------------------------
    def ask_import_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import images", "",
                                                "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff)")
        if paths:
            self.import_paths(paths)

    def ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images")
        if folder:
            self.import_paths([folder])

    def import_paths(self, paths: list[str], dataset: str = "imported") -> Job | None:
        """Image files and folders (menu, drag and drop) into a data set, in the background."""
        from mfv_desktop.store.exchange import import_images

        return self.run(lambda: import_images(self.store, paths, dataset), "import", self._imported, recorded=True)

    def _imported(self, result: dict) -> None:
        skipped = result.get("not_images", [])
        self.notify(f"{result['added']} images added to {result['dataset']!r}"
                    + (f"; {len(skipped)} skipped: {skipped[0]}" if skipped else ""), error=bool(skipped))
        self._jobs_changed()

    def ask_generate(self) -> None:
        d = GenerateDialog(self)
        if d.exec():
            self.generate(d.spec(), d.dataset.text().strip() or "generated")

    def generate(self, spec, dataset: str, then: Callable[[], None] | None = None) -> Job | None:
        def done(_result: Any) -> None:
            self._jobs_changed()
            if then:
                then()
        return self.submit_spec(spec, "generate", done, dataset=dataset)

    def add_samples_on_first_start(self) -> Job | None:
        """The first start on an empty store brings the sample data set in (once: a user who deletes
        it is not given it again)."""
        if self.store.read_only or self.settings.value("first_start/samples_added", False, type=bool) \
                or repo.count_scenes(self.store) > 0:
            return None
        # marked when the scenes are in: a start that ends before (a crash, a failed job) tries again
        return self.add_sample_scenes(lambda: self.settings.setValue("first_start/samples_added", True))

    def add_sample_scenes(self, then: Callable[[], None] | None = None) -> Job | None:
        from mfv_desktop.jobs import GenerateSpec

        return self.generate(GenerateSpec(n_scenes=SAMPLE_SCENES, seed=0, split="sample"), "sample", then)

    def _writable(self) -> bool:
        if self.store.read_only:
            self.notify("the store is open read-only: jobs cannot record their results", error=True)
        return not self.store.read_only

    def run(self, work: Callable, what: str, on_done: Callable[[Any], None], recorded: bool = False) -> Job | None:
        """Queue plain work (an import) in the background; the jobs panel and status bar show it
        (`recorded`: as the run it records, see `JobQueue.submit`)."""
        if not self._writable():
            return None
        return self.jobs.submit(work, what, on_done, on_failed=lambda msg: self.notify(f"{what} failed: {msg}", True),
                                recorded=recorded)

    def submit_spec(self, spec, what: str, on_done: Callable[[Any], None] | None = None,
                    on_progress: Callable[[Progress], None] | None = None,
                    on_failed: Callable[[str], None] | None = None, dataset: str | None = None) -> Job | None:
        """Queue a job spec, recorded in the store as a run (what `mfv --store` runs). Failures are
        shown in the status bar and, with their traceback, in the jobs panel."""
        if not self._writable():
            return None

        def failed(msg: str) -> None:
            self.notify(f"{what} failed: {msg} (details in the Jobs panel)", error=True)
            if on_failed:
                on_failed(msg)
        return self.jobs.submit_spec(spec, what, on_done, on_progress, failed, dataset=dataset)

    def _job_changed(self, job: Job) -> None:
        running = self.jobs.running
        for widget in (self.job_label, self.job_bar, self.job_cancel):
            widget.setVisible(running is not None)
        if running is not None:
            self.job_label.setText(running.what)
        if job.status == "cancelled":
            self.notify(f"{job.what} cancelled")

    def _job_progress(self, job: Job, p: Progress) -> None:
        self.job_bar.setMaximum(max(p.total, 1))
        self.job_bar.setValue(p.done)
        self.job_label.setText(f"{job.what}: {p.message[:60]}")

    def _jobs_changed(self) -> None:
        self.library.refresh()
        self._update_banner()
        if self.scene_id is None:
            self.show_scene(self.library.current_scene_id())

    def cancel_job(self) -> None:
        if self.jobs.running is not None:
            self.jobs.cancel(self.jobs.running)

    # -- settings and help --------------------------------------------------------------------------
    def open_settings(self) -> None:
        if SettingsDialog(self.settings, self.acts, self).exec():
            self._update_model_label()

    def show_cheat_sheet(self) -> None:
        CheatSheet(self.acts, self.relations.vocabulary, self).exec()

    def show_log(self) -> None:
        LogDialog(self).show()

    # -- drag and drop, closing ---------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.import_paths(paths)
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        self.jobs.wait_all(30000)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        self.store.close()
        super().closeEvent(event)


def apply_user_theme(settings: QSettings) -> None:
    apply_theme(get(settings, "theme"))
