"""Every action of the window: an id, a text, a default shortcut, a menu. Shortcuts are remapped in
the settings (QSettings "shortcuts/<id>") and listed in the cheat sheet.

Curation actions (label, edit, scene and view of the Scene tab; most are single keys) act only where
curation is on screen: their shortcuts work while the keyboard focus is inside a curation widget
(the Scene tab, the relation list, the scene library, the stamps), never from a science tab. The
rest (undo, new drawing, import, quit...) work from anywhere in the window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    shortcut: str
    #: the menu ("&File"), or a menu and its submenu ("&File/&Import")
    menu: str
    tip: str = ""
    #: acts on the Scene tab's scene: its shortcut works only with the focus in a curation widget
    is_curation: bool = False


def _curation(spec: ActionSpec) -> ActionSpec:
    return ActionSpec(spec.id, spec.text, spec.shortcut, spec.menu, spec.tip, is_curation=True)


#: relation keys: "1".."9" label the current pair with the n-th relation of the vocabulary
RELATION_KEYS = 9

_LISTED: tuple[ActionSpec, ...] = (
    ActionSpec("file.import_images", "Import images…", "Ctrl+I", "&File/&Import", "add image files as new scenes"),
    ActionSpec("file.import_folder", "Import folder…", "Ctrl+Shift+I", "&File/&Import", "add every image in a folder"),
    ActionSpec(
        "file.import_gqa",
        "GQA scene graphs…",
        "",
        "&File/&Import",
        "scenes with objects and relations from GQA scene graphs, filtered; says what was kept and why",
    ),
    ActionSpec("file.generate", "Generate scenes…", "Ctrl+G", "&File", "synthetic scenes in the paper's layout"),
    ActionSpec("file.new_drawing", "New drawn scene", "Ctrl+N", "&File", "a blank canvas to place object stamps on"),
    ActionSpec("file.settings", "Settings…", "Ctrl+,", "&File"),
    ActionSpec("file.quit", "Quit", "Ctrl+Q", "&File"),
    ActionSpec("edit.undo", "Undo", "Ctrl+Z", "&Edit"),
    ActionSpec("edit.redo", "Redo", "Ctrl+Shift+Z", "&Edit"),
    ActionSpec("edit.select", "Select and move", "V", "&Edit", "select, move and resize boxes"),
    ActionSpec("edit.new_box", "New box", "B", "&Edit", "drag on the image to draw an object's box"),
    ActionSpec("edit.stamp", "Place stamp", "S", "&Edit", "click to place the stamp chosen in the palette"),
    ActionSpec("edit.rename", "Rename object", "F2", "&Edit"),
    ActionSpec("edit.delete", "Delete object", "Delete", "&Edit"),
    ActionSpec("scene.next", "Next scene", "PgDown", "&Scene"),
    ActionSpec("scene.previous", "Previous scene", "PgUp", "&Scene"),
    ActionSpec("scene.delete", "Delete scene", "Ctrl+Delete", "&Scene"),
    ActionSpec(
        "scene.vocabulary", "Vocabulary…", "", "&Scene", "the words the current model knows as one token, searchable"
    ),
    ActionSpec("label.suggest", "Suggest relations", "G", "&Relations", "from the geometry of the boxes"),
    ActionSpec("label.confirm", "Confirm relation", "Y", "&Relations"),
    ActionSpec("label.reject", "Reject relation", "X", "&Relations"),
    ActionSpec("label.next", "Next relation", "J", "&Relations"),
    ActionSpec("label.previous", "Previous relation", "K", "&Relations"),
    ActionSpec("label.add", "Add relation…", "A", "&Relations", "a relation between two objects, any name"),
    *(
        ActionSpec(
            f"label.relation.{i}",
            f"Relation {i}",
            str(i),
            "&Relations",
            f"label the current pair with relation {i} and confirm it",
        )
        for i in range(1, RELATION_KEYS + 1)
    ),
    ActionSpec("view.zoom_in", "Zoom in", "Ctrl++", "&View"),
    ActionSpec("view.zoom_out", "Zoom out", "Ctrl+-", "&View"),
    ActionSpec("view.fit", "Fit to window", "Ctrl+0", "&View"),
    ActionSpec("help.shortcuts", "Keyboard shortcuts", "F1", "&Help"),
    ActionSpec("help.log", "Show log", "", "&Help", "the app's log file: jobs, errors and their tracebacks"),
)
#: the window-wide edit actions; every other edit, scene, label and view action is a curation action
WINDOW_WIDE = ("edit.undo", "edit.redo")
SPECS: tuple[ActionSpec, ...] = tuple(
    _curation(s) if s.id.split(".")[0] in ("edit", "scene", "label", "view") and s.id not in WINDOW_WIDE else s
    for s in _LISTED
)
#: where a curation action's shortcut works (the cheat sheet says so)
CURATION_PLACES = "Scene tab, Relations, Scenes, Stamps"


class Actions:
    """The window's QActions by id, with the user's shortcuts applied."""

    def __init__(self, parent: QWidget, settings: QSettings):
        self.settings = settings
        self.by_id: dict[str, QAction] = {}
        for spec in SPECS:
            a = QAction(spec.text, parent)
            a.setObjectName(spec.id)
            a.setStatusTip(spec.tip)
            self.by_id[spec.id] = a
        self.apply_shortcuts()

    def bind(self, window: QWidget, curation: Iterable[QWidget]) -> None:
        """Where each shortcut works: a curation action's while the focus is inside one of the
        `curation` widgets (or their children), any other action's anywhere in `window`. Menus and the
        toolbar trigger every action whatever has the focus."""
        widgets = list(curation)
        for spec in SPECS:
            a = self.by_id[spec.id]
            if spec.is_curation:
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                for w in widgets:
                    w.addAction(a)
            else:
                window.addAction(a)

    def __getitem__(self, action_id: str) -> QAction:
        return self.by_id[action_id]

    def shortcut(self, action_id: str) -> str:
        default = next(s.shortcut for s in SPECS if s.id == action_id)
        return str(self.settings.value(f"shortcuts/{action_id}", default))

    def set_shortcut(self, action_id: str, keys: str) -> None:
        """Remap an action (an empty string removes its shortcut)."""
        self.settings.setValue(f"shortcuts/{action_id}", keys)
        self.apply_shortcuts()

    def apply_shortcuts(self) -> None:
        for spec in SPECS:
            keys = self.shortcut(spec.id)
            self.by_id[spec.id].setShortcut(QKeySequence(keys))
            if spec.id == "edit.redo" and keys == spec.shortcut:
                self.by_id[spec.id].setShortcuts([QKeySequence(keys), QKeySequence("Ctrl+Y")])


class CheatSheet(QDialog):
    """Every action with its current shortcut."""

    def __init__(self, actions: Actions, relations: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(SPECS), 4, self)
        table.setHorizontalHeaderLabels(["menu", "action", "keys", "works in"])
        for row, spec in enumerate(SPECS):
            text = spec.text
            if spec.id.startswith("label.relation."):
                i = int(spec.id.rsplit(".", 1)[1])
                text = f"Relation {i}: {relations[i - 1]}" if i <= len(relations) else text
            where = CURATION_PLACES if spec.is_curation else "the whole window"
            menu = spec.menu.replace("&", "").replace("/", " > ")
            for col, value in enumerate((menu, text, actions.shortcut(spec.id), where)):
                table.setItem(row, col, QTableWidgetItem(value))
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table = table
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        self.resize(720, 640)


#: the toolbar: action ids in groups (None: a separator)
TOOLBAR: tuple[str | None, ...] = (
    "file.import_images",
    "file.generate",
    "file.new_drawing",
    None,
    "edit.undo",
    "edit.redo",
    None,
    "edit.select",
    "edit.new_box",
    "edit.stamp",
    None,
    "label.suggest",
    "label.confirm",
    "label.reject",
    None,
    "view.fit",
)
