"""The curation controller: what the Scene tab's widgets ask for (a box drawn, moved, renamed or
deleted, a stamp placed, relations suggested, confirmed or relabelled, a drawing begun, a scene
deleted) becomes an undoable edit of the store (commands.py), and after every edit, its undo and its
redo the scene is shown again; a label change is also said in the status bar. A drawn scene left
empty (no objects) is dropped when the user leaves it: another scene, another tab, quitting. The
widgets only emit intents; the window only lays them out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

import mfv_desktop.ui.curation.commands as cmd
from mfv_desktop.scenes import Box, stamp_from_id
from mfv_desktop.scenes import Scene as SceneData
from mfv_desktop.store import StoreError
from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.curation.canvas import SceneCanvas
from mfv_desktop.ui.curation.library import SceneLibrary
from mfv_desktop.ui.curation.palette import StampPalette
from mfv_desktop.ui.curation.relations import RelationPanel
from mfv_desktop.ui.shell.context import AppContext

#: a stamp's long side on a drawn canvas, as a fraction of the canvas (the paper: 130-230 of 800 px)
STAMP_SIZE = 0.22


class CurationController(QObject):
    #: a scene is shown (its name in the data set), or none ("")
    sceneShown = Signal(str)
    #: a new drawing waits for its first stamp (the window brings the stamps forward)
    drawingStarted = Signal()

    def __init__(
        self,
        ctx: AppContext,
        canvas: SceneCanvas,
        library: SceneLibrary,
        relations: RelationPanel,
        palette: StampPalette,
        ask_name: Callable[[list[str], str], str | None],
    ) -> None:
        super().__init__(ctx)
        self.ctx, self.canvas, self.library, self.relations, self.palette = ctx, canvas, library, relations, palette
        self.store = ctx.store
        #: replaceable by tests and scripts: ask for an object's name (known names, the current one)
        self.ask_name = ask_name
        #: the box whose name is asked (just drawn, or renamed): the name dialog stands beside it
        self.naming_box: Box | None = None
        #: the scene shown when it is a drawing without objects (dropped when the user leaves it)
        self.empty_drawing: int | None = None
        library.sceneActivated.connect(self.show_scene)
        canvas.boxDrawn.connect(self.add_box)
        canvas.boxChanged.connect(self.move_box)
        canvas.deleteRequested.connect(self.delete_object)
        canvas.renameRequested.connect(self.rename_object)
        canvas.stampPlaced.connect(self.place_stamp)
        palette.stampChosen.connect(self.arm_stamp)
        relations.statusRequested.connect(self.set_status)
        relations.relabelRequested.connect(self.relabel)
        relations.addRequested.connect(lambda s, r, o: self.edit(cmd.SetLabel, s, r, o, "confirmed"))
        relations.suggestRequested.connect(self.suggest)

    @property
    def scene_id(self) -> int | None:
        return self.ctx.scene_id

    # -- showing -------------------------------------------------------------------------------
    def show_scene(self, scene_id: int | None) -> SceneData | None:
        """Show a scene (None: none) on the canvas with its relations; returns it."""
        left, self.empty_drawing = self.empty_drawing, None
        if scene_id is None:
            self.ctx.set_scene(None)
            self.canvas.clear()
            self.relations.show_labels([], [])
            self.sceneShown.emit("")
            self._left(left)
            return None
        try:
            data, labels, objects = repo.scene_for_editing(self.store, scene_id)
        except StoreError:  # deleted meanwhile
            return self.show_scene(None)
        self.ctx.set_scene(scene_id)
        image = None if data.meta.get("drawn") else data.image
        self.canvas.show_scene(image, data.width, data.height, objects, labels)
        self.relations.show_labels(labels, [o.name for o in objects])
        self.sceneShown.emit(data.id)
        if data.meta.get("drawn") and not objects:
            self.empty_drawing = scene_id
        self._left(left)
        return data

    def reveal(self, scene_id: int) -> None:
        """Show a scene and make it current in the library, clearing filters that hide it."""
        if not self.library.select_scene(scene_id):
            self.library.set_filters(**dict.fromkeys(("dataset", "relation", "status", "split", "object_name")))
            self.library.select_scene(scene_id)
        if self.scene_id != scene_id:
            self.show_scene(scene_id)

    # -- an empty drawing is not kept ----------------------------------------------------------
    def is_empty_drawing(self, scene_id: int | None) -> bool:
        if scene_id is None:
            return False
        try:
            data, _ = repo.get_scene(self.store, scene_id)
        except StoreError:
            return False
        return bool(data.meta.get("drawn")) and not data.objects

    @property
    def showing_empty_drawing(self) -> bool:
        return self.empty_drawing is not None and self.empty_drawing == self.scene_id

    def leave(self) -> None:
        """The user leaves the Scene tab or quits: a drawing left empty is dropped."""
        if self.showing_empty_drawing and self._drop_if_empty(self.scene_id or 0):
            self.show_scene(self.library.current_scene_id())

    def _left(self, scene_id: int | None) -> None:
        """A scene was left for another: dropped if it was an empty drawing."""
        if scene_id is not None and scene_id != self.scene_id:
            self._drop_if_empty(scene_id)

    def drop_empty_drawings(self) -> int:
        """Drop the empty drawings a start that ended without quitting (a crash) left; returns how many."""
        if self.store.read_only:
            return 0
        drawn = repo.page_scenes(self.store, 0, 1000, split="drawn")
        return sum(self._drop_if_empty(s.id) for s in drawn if s.n_objects == 0)

    def _drop_if_empty(self, scene_id: int) -> bool:
        """Delete a drawn scene without objects (an accidental "New drawn scene"), without asking;
        the edits on it that the undo stack holds are dropped too (undo brings no junk back)."""
        if self.store.read_only or not self.is_empty_drawing(scene_id):
            return False
        repo.delete_scene(self.store, scene_id)
        if self.empty_drawing == scene_id:
            self.empty_drawing = None
        stack = self.ctx.undo
        for i in range(stack.count()):
            c = stack.command(i)
            if isinstance(c, cmd.Edit) and c.scene_id == scene_id:
                c.setObsolete(True)
        self.library.refresh()
        self.ctx.scenesChanged.emit()
        return True

    def refresh_vocabulary(self) -> None:
        self.relations.set_vocabulary([r.name for r in repo.relations(self.store)])

    def _changed(self, scene_id: int) -> None:
        """After every edit, its undo and its redo: redraw a drawn scene's image, show, recount."""
        if scene_id != self.scene_id:
            self.library.select_scene(scene_id)
        data = self.show_scene(scene_id)
        if data is not None and data.meta.get("drawn"):  # the canvas draws the stamps; the file is for the rest
            repo.render_drawn_scene(self.store, scene_id)
        self.library.refresh()
        self.refresh_vocabulary()

    # -- edits ---------------------------------------------------------------------------------
    def edit(self, kind: type[cmd.Edit], *args: Any) -> bool:
        if self.scene_id is None:
            return False
        error = cmd.apply(self.ctx.undo, kind(self.store, self.scene_id, self._changed, *args))
        if error:
            self.ctx.notify(error, error=True)
        return error is None

    def set_status(self, t: tuple[str, str, str], status: str) -> None:
        """Confirm or reject a label (a key, the toolbar, the menu); the status bar says what changed."""
        if self.edit(cmd.SetLabel, *t, status):
            self.ctx.notify(f"{status}: {' '.join(t)}")

    def relabel(self, t: tuple[str, str, str], new: str) -> None:
        if self.edit(cmd.Relabel, t[0], t[1], t[2], new):
            self.ctx.notify(f"relabelled: {' '.join(t)} → {t[0]} {new} {t[2]} (confirmed)")

    def _object(self, object_id: int) -> repo.ObjectView | None:
        return (
            next((o for o in repo.objects(self.store, self.scene_id) if o.id == object_id), None)
            if self.scene_id is not None
            else None
        )

    def on_selected(self, fn: Callable[[int], Any]) -> None:
        oid = self.canvas.selected_object()
        if oid is not None:
            fn(oid)

    def add_box(self, box: Box) -> None:
        self.naming_box = box
        name = self._named(repo.object_names(self.store), "")
        if name:
            self.edit(cmd.AddObject, name, box)

    def _named(self, known: list[str], current: str) -> str | None:
        """Ask for a name; then the keys go back to the canvas (the next box, G, 1-9 work at once)."""
        try:
            return self.ask_name(known, current)
        finally:
            self.canvas.window().activateWindow()
            self.canvas.setFocus()

    def move_box(self, object_id: int, box: Box) -> None:
        o = self._object(object_id)
        if o is not None and o.box != box:
            self.edit(cmd.MoveObject, o.name, o.box, box)

    def rename_object(self, object_id: int) -> None:
        o = self._object(object_id)
        if o is None:
            return
        self.naming_box = o.box
        name = self._named(repo.object_names(self.store), o.name)
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

    # -- scenes --------------------------------------------------------------------------------
    def new_drawing(self) -> None:
        """A blank drawing, shown (dropped again if the user leaves it empty)."""
        if self.store.read_only:
            return self.ctx.notify("the store is open read-only", error=True)
        sid = repo.create_drawn_scene(self.store, "drawn")
        self.library.refresh()
        self.library.select_scene(sid)
        self.show_scene(sid)
        self.canvas.set_mode("stamp")
        self.drawingStarted.emit()
        self.ctx.scenesChanged.emit()

    def delete_scene(self) -> None:
        if self.scene_id is not None and self.ctx.confirm(
            "Delete this scene with its objects and labels? This cannot be undone."
        ):
            repo.delete_scene(self.store, self.scene_id)
            self.ctx.undo.clear()  # its edits point at a scene that is gone
            self.library.refresh()
            self.show_scene(self.library.current_scene_id())
            self.ctx.scenesChanged.emit()

    def scenes_added(self) -> None:
        """After an import or a generated data set: the library recounts; the first scene shows if none does."""
        self.library.refresh()
        if self.scene_id is None:
            self.show_scene(self.library.current_scene_id())
