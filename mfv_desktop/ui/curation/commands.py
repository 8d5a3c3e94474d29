"""Undoable edits. Each command calls the same store functions that save, both ways, so undo,
redo and autosave never drift apart: every redo/undo is committed at once. Objects are named by
(scene id, object name) — unique within a scene — since a restored object gets a new row id."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand, QUndoStack

from mfv_desktop.scenes import Box, SceneError
from mfv_desktop.store import Store, StoreError
from mfv_desktop.store import scenes as repo


class Edit(QUndoCommand):
    """Base: `changed(scene_id)` is called after every redo and undo (the window redraws)."""

    def __init__(self, store: Store, scene_id: int, changed: Callable[[int], None], text: str):
        super().__init__(text)
        self.store, self.scene_id, self.changed = store, scene_id, changed
        self._pushed = False

    def object_id(self, name: str) -> int:
        for o in repo.objects(self.store, self.scene_id):
            if o.name == name:
                return o.id
        raise KeyError(name)

    def redo(self) -> None:
        if self.isObsolete():  # its scene is gone (an empty drawing dropped): the stack drops it
            return
        if self._pushed:  # the first redo: `apply` has done it already
            self._pushed = False
        else:
            self.do()
        self.changed(self.scene_id)

    def undo(self) -> None:
        if self.isObsolete():
            return
        self.undo_it()
        self.changed(self.scene_id)

    def do(self) -> None:
        raise NotImplementedError

    def undo_it(self) -> None:
        raise NotImplementedError


class AddObject(Edit):
    def __init__(self, store, scene_id, changed, name: str, box: Box, stamp: str | None = None):
        super().__init__(store, scene_id, changed, f"add {name}")
        self.name, self.box, self.stamp = name, box, stamp

    def do(self) -> None:
        repo.add_object(self.store, self.scene_id, self.name, self.box, self.stamp)

    def undo_it(self) -> None:
        repo.delete_object(self.store, self.object_id(self.name))


class MoveObject(Edit):
    def __init__(self, store, scene_id, changed, name: str, old: Box, new: Box):
        super().__init__(store, scene_id, changed, f"move {name}")
        self.name, self.old, self.new = name, old, new

    def do(self) -> None:
        repo.set_box(self.store, self.object_id(self.name), self.new)

    def undo_it(self) -> None:
        repo.set_box(self.store, self.object_id(self.name), self.old)


class RenameObject(Edit):
    def __init__(self, store, scene_id, changed, old: str, new: str):
        super().__init__(store, scene_id, changed, f"rename {old} to {new}")
        self.old, self.new = old, new

    def do(self) -> None:
        repo.rename_object(self.store, self.object_id(self.old), self.new)

    def undo_it(self) -> None:
        repo.rename_object(self.store, self.object_id(self.new), self.old)


class DeleteObject(Edit):
    def __init__(self, store, scene_id, changed, name: str):
        super().__init__(store, scene_id, changed, f"delete {name}")
        self.name = name
        self.gone: repo.DeletedObject | None = None

    def do(self) -> None:
        self.gone = repo.delete_object(self.store, self.object_id(self.name))

    def undo_it(self) -> None:
        assert self.gone is not None
        repo.restore_object(self.store, self.gone)


class LabelEdit(Edit):
    """Base of the label edits: each redo and undo is one call of `repo.set_labels` (one transaction, all
    or nothing); a redo keeps the changes that undo it."""

    def __init__(self, store, scene_id, changed, text: str):
        super().__init__(store, scene_id, changed, text)
        self.inverse: repo.LabelChanges = ()

    def undo_it(self) -> None:
        repo.set_labels(self.store, self.scene_id, self.inverse)


class SetLabel(LabelEdit):
    """Label a pair (subject, relation, object) with a status (a label there keeps its source); undo
    puts back what was there (no label, or the label with its old status)."""

    def __init__(
        self, store, scene_id, changed, subject: str, relation: str, obj: str, status: str, source: str = "user"
    ):
        super().__init__(store, scene_id, changed, f"{status} {subject} {relation} {obj}")
        self.triple, self.status, self.source = (subject, relation, obj), status, source

    def do(self) -> None:
        self.inverse = repo.set_labels(
            self.store, self.scene_id, [(self.triple, (self.source, self.status))], keep_source=True
        )


class Relabel(LabelEdit):
    """Give a labelled pair another relation (and confirm it): the old label is replaced."""

    def __init__(self, store, scene_id, changed, subject: str, old: str, obj: str, new: str):
        super().__init__(store, scene_id, changed, f"{subject} {old} {obj} -> {new}")
        self.subject, self.old, self.obj, self.new = subject, old, obj, new

    def do(self) -> None:
        self.inverse = repo.relabel(self.store, self.scene_id, self.subject, self.old, self.obj, self.new)


class Suggest(LabelEdit):
    """Add geometry suggestions for every unlabelled pair; undo removes them."""

    def __init__(self, store, scene_id, changed, relations: tuple[str, ...] | None = None):
        super().__init__(store, scene_id, changed, "suggest relations")
        self.relations = relations

    def do(self) -> None:
        self.inverse = repo.suggest_label_changes(self.store, self.scene_id, self.relations)

    @property
    def added(self) -> list[tuple[str, str, str]]:
        return [triple for triple, _ in reversed(self.inverse)]


def apply(stack: QUndoStack, cmd: Edit) -> str | None:
    """Do an edit and put it on the undo stack; an edit the store refuses is not pushed and its
    message is returned (Qt would swallow an exception raised inside redo)."""
    try:
        cmd.do()
    except (StoreError, SceneError, KeyError) as e:
        return str(e)
    cmd._pushed = True
    stack.push(cmd)
    return None
