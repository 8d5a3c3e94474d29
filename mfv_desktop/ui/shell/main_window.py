"""The main window: scene library, scene canvas, relation panel and stamp palette in docks, the
science panels as tabs; menus and a toolbar of actions with ids and shortcuts; a status bar with the
store, the model and the device, and the running job's progress. The window lays things out: what the
panels share is the app context (context.py), the Scene tab's edits go through the curation controller
(curation/controller.py), scenes come in through imports.py. No torch here: models load in workers."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop import __version__
from mfv_desktop.specs import ModelRef
from mfv_desktop.store import Store
from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.curation.canvas import SceneCanvas
from mfv_desktop.ui.curation.controller import CurationController
from mfv_desktop.ui.curation.library import SceneLibrary
from mfv_desktop.ui.curation.palette import StampPalette
from mfv_desktop.ui.curation.relations import RelationPanel
from mfv_desktop.ui.science.vectors import VectorLibrary
from mfv_desktop.ui.shell.actions import SPECS, TOOLBAR, Actions, CheatSheet
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.dialogs import LogDialog, NameDialog
from mfv_desktop.ui.shell.imports import SAMPLE_SCENES, Imports
from mfv_desktop.ui.shell.jobs import Job, JobsPanel
from mfv_desktop.ui.shell.models import install_menu
from mfv_desktop.ui.shell.settings import SettingsDialog, app_settings, apply_theme, get
from mfv_desktop.ui.shell.startup import open_window_store
from mfv_desktop.ui.shell.status import StatusBar

#: the Jobs dock's height on the first start: several runs in view beside the selected one's details
JOBS_HEIGHT = 170

#: how long closing the window waits for a running job to stop before it says "stopping…"
STOP_WAIT_MS = 500

#: the science tabs, in the order of the work: (key, title, module, panel class), built when first shown
SCIENCE_TABS = (
    ("aie", "AIE", "mfv_desktop.ui.science.aie", "AIEPanel"),
    ("sweep", "Layer sweep", "mfv_desktop.ui.science.sweep", "SweepPanel"),
    ("apply", "Apply", "mfv_desktop.ui.science.apply", "ApplyPanel"),
    ("analogy", "Analogy", "mfv_desktop.ui.science.analogy", "AnalogyPanel"),
)


@runtime_checkable
class Refreshes(Protocol):
    """A panel that reads the store again when its tab is shown (every science panel)."""

    def refresh(self) -> None: ...


class LazyTab(QWidget):
    """A tab whose panel is built the first time it is asked for (shown, or used by code)."""

    def __init__(self, make: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.make = make
        self.built: QWidget | None = None
        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(0, 0, 0, 0)
        # a click anywhere in a science tab takes the keyboard focus from the curation widgets
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def panel(self) -> QWidget:
        if self.built is None:
            self.built = self.make()
            # in a scroll area: a panel wider or taller than the window scrolls, and the window never
            # grows past the screen for it (a long status line on a tab used to widen the window)
            scroll = QScrollArea(self)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(self.built)
            self.column.addWidget(scroll)
        return self.built


class MainWindow(QMainWindow):
    def __init__(
        self,
        data_dir: str | Path | None = None,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
        store: tuple[Store, str] | None = None,
    ):
        """`store`: a store the caller opened (`startup.open_or_ask`) and the reason it is read-only, if it is."""
        super().__init__(parent)
        settings = settings if settings is not None else app_settings()
        folder = data_dir or get(settings, "data_dir") or None
        opened, reason = store or open_window_store(folder)
        #: what every panel shares: store, job queue, undo stack, settings, model, current scene, signals
        self.ctx = ctx = AppContext(opened, settings, self, reason)
        self.store, self.settings, self.jobs, self.undo = ctx.store, settings, ctx.jobs, ctx.undo
        self.read_only_reason = reason
        #: closing: waiting for the running job to stop (`_close_when_stopped`), then closed
        self._close_when_stopped = self._closed = False
        self._first_layout = False
        ctx.confirm = lambda q: QMessageBox.question(self, "mfv_desktop", q) == QMessageBox.StandardButton.Yes

        self.setWindowTitle(f"mfv_desktop {__version__}")
        self.acts = Actions(self, settings)
        self.canvas = SceneCanvas(self)
        self.banner = self._make_banner()
        self.scene_tab = scene_tab = QWidget(self)
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
        data = self.store.data_dir
        self.stamp_palette = StampPalette(data / "stamps", data / "cache" / "stamps", self)
        self.jobs_panel = JobsPanel(self.jobs, self)
        self.jobs_panel.promptsRequested.connect(self._show_prompts)
        self.docks = {
            name: self._dock(name, title, w, area)
            for name, title, w, area in (
                ("library", "Scenes", self.library, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("relations", "Relations", self.relations, Qt.DockWidgetArea.RightDockWidgetArea),
                ("stamps", "Stamps", self.stamp_palette, Qt.DockWidgetArea.RightDockWidgetArea),
                ("jobs", "Jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
            )
        }
        self.curation = CurationController(
            ctx,
            self.canvas,
            self.library,
            self.relations,
            self.stamp_palette,
            self._ask_name,
        )
        self.imports = Imports(ctx, self, show_scene=self.curation.reveal)
        self._make_panels()
        #: the store, the model, messages and the running job
        self.status = StatusBar(ctx, self)
        self.setStatusBar(self.status)
        self._make_menus()
        self._connect()
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        geometry, state = settings.value("window/geometry"), settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        else:  # the first start: the workbench gets the height, the jobs list a strip below it (once
            # the window has its size: docks sized before are laid out again when it is shown)
            self._first_layout = True
        self.curation.refresh_vocabulary()
        self.curation.drop_empty_drawings()  # left by a start that ended without quitting
        self._update_banner()
        first = self.library.current_scene_id()
        if first is not None:
            self.show_scene(first)
        self.canvas.setFocus()  # the Scene tab is in front: its keys work from the start

    # -- what tests and scripts reach through the window ------------------------------------------
    vectorsChanged = property(lambda self: self.ctx.vectorsChanged)
    scene_id = property(lambda self: self.ctx.scene_id)
    model = property(lambda self: self.ctx.model)
    confirm = property(lambda self: self.ctx.confirm, lambda self, fn: setattr(self.ctx, "confirm", fn))
    ask_name = property(lambda self: self.curation.ask_name, lambda self, fn: setattr(self.curation, "ask_name", fn))

    def _ask_name(self, known: list[str], current: str) -> str | None:
        """The name dialog, beside the box being named."""
        box = self.curation.naming_box
        near = self.canvas.global_rect(box) if box is not None else None
        return NameDialog.ask(self, known, self.ctx.model, current, near)

    def show_vocabulary(self) -> None:
        """The words the current model knows as one token (built when first asked, again for another model)."""
        from mfv_desktop.ui.curation.vocabulary import VocabularyDialog

        d = getattr(self, "vocabulary_dialog", None)
        if d is None or d.model != self.ctx.model:
            if d is not None:
                d.deleteLater()
            d = self.vocabulary_dialog = VocabularyDialog(self.ctx.model, self)
        d.show()
        d.raise_()
        d.activateWindow()

    def model_ref(self) -> ModelRef:
        return self.ctx.model_ref()

    def submit_spec(self, spec, what: str, **kw: Any) -> Job | None:
        return self.ctx.submit_spec(spec, what, **kw)

    def show_scene(self, scene_id: int | None) -> None:
        self.curation.show_scene(scene_id)

    def import_paths(self, paths: list[str], dataset: str = "imported") -> Job | None:
        return self.imports.import_paths(paths, dataset)

    def add_samples_on_first_start(self) -> Job | None:
        return self.imports.add_samples_on_first_start()

    # -- building ----------------------------------------------------------------------------------
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
            make = lambda module=module, cls=cls: getattr(import_module(module), cls)(self.ctx, self)  # noqa: E731
            self.lazy_tabs[key] = LazyTab(make, self)
            self.tabs.addTab(self.lazy_tabs[key], title)
        self.tabs.currentChanged.connect(self._tab_shown)
        self.vector_library = VectorLibrary(self.ctx, self)
        self.docks["vectors"] = self._dock(
            "vectors", "Vectors", self.vector_library, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tabifyDockWidget(self.docks["stamps"], self.docks["vectors"])  # the two libraries share a place
        self.model_menu, self.model_manager_action = install_menu(self.ctx, self)

    aie_panel = property(lambda self: self.lazy_tabs["aie"].panel())
    sweep_panel = property(lambda self: self.lazy_tabs["sweep"].panel())
    apply_panel = property(lambda self: self.lazy_tabs["apply"].panel())
    analogy_panel = property(lambda self: self.lazy_tabs["analogy"].panel())

    def show_tab(self, key: str) -> QWidget:
        """Bring a science tab to the front; returns its panel."""
        self.tabs.setCurrentWidget(self.lazy_tabs[key])
        return self.lazy_tabs[key].panel()

    def _tab_shown(self, index: int) -> None:
        """A tab shows what the store holds now (data sets, runs, vectors made since it was last seen).
        The keyboard focus goes with the tab: curation keys act on the Scene tab, not on a science tab
        (a drawing left empty is dropped)."""
        page = self.tabs.widget(index)
        if page is self.scene_tab:
            self.canvas.setFocus(Qt.FocusReason.TabFocusReason)
        elif page is not None:
            self.curation.leave()
            page.setFocus(Qt.FocusReason.TabFocusReason)
        if isinstance(page, LazyTab):
            if page.built is None:
                page.panel()  # a new panel reads the store as it is built
            elif isinstance(page.built, Refreshes):
                page.built.refresh()

    def _make_banner(self) -> QWidget:
        banner = QWidget(self)
        row = QHBoxLayout(banner)
        self.banner_text = QLabel(banner)
        self.banner_text.setWordWrap(True)
        row.addWidget(self.banner_text, 1)
        self.sample_button = QPushButton(f"Add {SAMPLE_SCENES} sample scenes", banner)
        self.sample_button.clicked.connect(lambda: self.imports.add_sample_scenes())
        row.addWidget(self.sample_button)
        banner.setStyleSheet("background: #fff6d6; color: #4a3b00;")
        return banner

    def _make_menus(self) -> None:
        menus: dict[str, Any] = {}
        for spec in SPECS:  # "&File/&Import": a submenu, in its menu where its first action is
            path = spec.menu.split("/")
            for depth in range(len(path)):
                key = "/".join(path[: depth + 1])
                if key not in menus:
                    parent = menus["/".join(path[:depth])] if depth else self.menuBar()
                    menus[key] = parent.addMenu(path[depth])
            menus[spec.menu].addAction(self.acts[spec.id])
        # shortcuts also with the menus closed: curation keys where curation is, the rest window-wide
        self.acts.bind(self, (self.scene_tab, self.library, self.relations, self.stamp_palette))
        tb = self.addToolBar("Tools")
        tb.setObjectName("toolbar.tools")
        for action_id in TOOLBAR:
            tb.addSeparator() if action_id is None else tb.addAction(self.acts[action_id])

    def _connect(self) -> None:
        a, c, im = self.acts, self.curation, self.imports
        handlers: dict[str, Callable[[], Any]] = {
            "file.import_images": im.ask_import_images,
            "file.import_folder": im.ask_import_folder,
            "file.import_gqa": im.ask_import_gqa,
            "file.generate": im.ask_generate,
            "file.new_drawing": c.new_drawing,
            "file.settings": self.open_settings,
            "file.quit": self.close,
            "edit.undo": lambda: self._undo_redo("undo"),
            "edit.redo": lambda: self._undo_redo("redo"),
            "edit.select": lambda: self.canvas.set_mode("select"),
            "edit.new_box": lambda: self.canvas.set_mode("box"),
            "edit.stamp": lambda: self.canvas.set_mode("stamp"),
            "edit.rename": lambda: c.on_selected(c.rename_object),
            "edit.delete": lambda: c.on_selected(c.delete_object),
            "scene.next": self.library.next_scene,
            "scene.previous": self.library.previous_scene,
            "scene.delete": c.delete_scene,
            "scene.vocabulary": self.show_vocabulary,
            "label.suggest": c.suggest,
            "label.confirm": self.relations.confirm,
            "label.reject": self.relations.reject,
            "label.next": lambda: self.relations.move_selection(1),
            "label.previous": lambda: self.relations.move_selection(-1),
            "label.add": self.relations.ask_add,
            "view.zoom_in": self.canvas.zoom_in,
            "view.zoom_out": self.canvas.zoom_out,
            "view.fit": self.canvas.fit,
            "help.shortcuts": self.show_cheat_sheet,
            "help.log": self.show_log,
        }
        for i in range(1, 10):
            handlers[f"label.relation.{i}"] = lambda *_, i=i: self.relations.relation_key(i)
        for action_id, fn in handlers.items():
            a[action_id].triggered.connect(fn)
        self.undo.canUndoChanged.connect(a["edit.undo"].setEnabled)
        self.undo.canRedoChanged.connect(a["edit.redo"].setEnabled)
        a["edit.undo"].setEnabled(False)
        a["edit.redo"].setEnabled(False)
        self.library.countChanged.connect(lambda _: self._update_banner())
        c.sceneShown.connect(lambda name: self.setWindowTitle(f"{name} — mfv_desktop {__version__}") if name else None)
        c.drawingStarted.connect(self.docks["stamps"].raise_)
        c.drawingStarted.connect(lambda: self.tabs.setCurrentWidget(self.scene_tab))
        self.imports.incoming.connect(self.library.set_incoming)
        self.imports.incoming.connect(lambda _: self._update_banner())
        self.ctx.scenesChanged.connect(self._scenes_changed)

    # -- the status bar and the banner -----------------------------------------------------------
    def notify(self, message: str, error: bool = False) -> None:
        self.status.notify(message, error)

    def _undo_redo(self, which: str) -> None:
        """Undo or redo, said in the status bar (it may change a scene of a tab not in view)."""
        stack = self.undo
        while True:  # edits of a dropped empty drawing are obsolete: Qt drops them without a word
            i = stack.index() - 1 if which == "undo" else stack.index()
            cmd = stack.command(i) if 0 <= i < stack.count() else None
            if cmd is None or not cmd.isObsolete():
                break
            getattr(stack, which)()
        text = stack.undoText() if which == "undo" else stack.redoText()
        getattr(stack, which)()
        if text:
            self.notify(f"{which}: {text}")

    def _update_banner(self) -> None:
        # an empty drawing (dropped when the user leaves it) does not count
        n = repo.count_scenes(self.store) - self.curation.showing_empty_drawing
        job = self.imports.sample_job
        if self.read_only_reason:
            self.banner_text.setText(self.read_only_reason)
        elif job is not None:
            doing = self.imports.describe(job)
            self.banner_text.setText(
                f"{doing[:1].upper()}{doing[1:]}. They appear in the library when they are all in."
            )
        else:
            self.banner_text.setText(
                "No scenes yet. Add the sample data set, import images (drop them here), or draw a scene."
            )
        self.sample_button.setVisible(n <= 0 and job is None and not self.store.read_only)
        self.banner.setVisible(n <= 0 or job is not None or bool(self.read_only_reason))

    def _scenes_changed(self) -> None:
        self.curation.scenes_added()
        self._update_banner()

    # -- settings and help --------------------------------------------------------------------------
    def open_settings(self) -> None:
        if SettingsDialog(self.settings, self.acts, self).exec():
            self.status.update_model()

    def show_cheat_sheet(self) -> None:
        CheatSheet(self.acts, self.relations.vocabulary, self).exec()

    def show_log(self) -> None:
        LogDialog(self).show()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._first_layout:
            self._first_layout = False
            self.resizeDocks([self.docks["jobs"]], [JOBS_HEIGHT], Qt.Orientation.Vertical)
            # the relation list gets the height to show a scene's relations, the libraries the rest
            self.resizeDocks(
                [self.docks["relations"], self.docks["vectors"]],
                [self.height() // 2, self.height() // 4],
                Qt.Orientation.Vertical,
            )

    # -- drag and drop, closing ---------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.imports.import_paths(paths)
            event.acceptProposedAction()

    def _show_prompts(self, run_id: int) -> None:
        from mfv_desktop.ui.science.prompt_hooks import show_prompts

        show_prompts(self.ctx, run_id, parent=self)

    def closeEvent(self, event) -> None:
        """Quit: the running job is cancelled and waited for a moment (STOP_WAIT_MS); a job in a long
        step (a model loading) gets "stopping…" in the status bar, and the window closes when it has
        stopped. Then the layout is saved and the store closed."""
        if self._closed:
            return super().closeEvent(event)
        if not self.jobs.stop(STOP_WAIT_MS):
            event.ignore()
            self.status.show_stopping(self.jobs.running)
            if not self._close_when_stopped:
                self._close_when_stopped = True
                self.jobs.stopped.connect(lambda: QTimer.singleShot(0, self.close))
            return
        self._closed = True
        self.curation.leave()  # a drawing left empty is not kept
        for dialog in self.findChildren(QDialog):  # the viewers and dialogs it opened go with it
            dialog.close()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        self.store.close()
        super().closeEvent(event)


def apply_user_theme(settings: QSettings) -> None:
    apply_theme(get(settings, "theme"))
