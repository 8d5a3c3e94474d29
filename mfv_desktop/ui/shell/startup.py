"""Opening the store when the app starts. A store that cannot be opened (written by a newer
mfv_desktop, damaged, on read-only media, locked before it exists, a full disk) is explained in a
dialog with what the user can do: open it read-only, choose another folder, restore a backup, try
again, or quit. The app never ends with a bare traceback or in silence."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractButton, QFileDialog, QInputDialog, QMessageBox, QWidget

from mfv_desktop.store import Store, StoreError, StoreLocked, default_data_dir, open_store
from mfv_desktop.store.db import restore_backup, usable_backups
from mfv_desktop.store.paths import DB_FILE

log = logging.getLogger("mfv_desktop")

#: what the user chose: (choice, its argument: a folder or a backup file, or None)
Answer = tuple[str, str | None]
#: asks the user what to do about a store that does not open: (error, data folder, backups) -> answer
Ask = Callable[[StoreError, Path, list], Answer]

#: problems that a read-only open has too
NOT_READABLE = {"too_new", "corrupt"}
CHOICES = {
    "read_only": "Open read-only",
    "other": "Choose another folder…",
    "restore": "Restore a backup…",
    "retry": "Try again",
    "quit": "Quit",
}


def open_window_store(data_dir: str | Path | None) -> tuple[Store, str]:
    """The store, or (when another process writes to it) the store read-only with the reason."""
    folder = Path(data_dir).expanduser() if data_dir else default_data_dir()
    try:
        return open_store(folder), ""
    except StoreLocked as e:
        if not (folder / DB_FILE).is_file():  # two first starts at once: the other one is creating it
            raise StoreLocked(f"{e} It is creating the store right now: try again in a moment.") from e
        return open_store(folder, read_only=True), f"Read-only: {e}"


def open_or_ask(data_dir: str | Path | None, settings: QSettings, ask: Ask | None = None) -> tuple[Store, str] | None:
    """Open the store, asking the user about every problem until it opens or they quit (None)."""
    ask = ask or ask_user
    folder = Path(data_dir).expanduser() if data_dir else default_data_dir()
    read_only = False
    while True:
        try:
            if read_only:
                return open_store(folder, read_only=True), f"Read-only, as you chose: {folder}"
            return open_window_store(folder)
        except (StoreError, OSError) as e:
            error = e if isinstance(e, StoreError) else StoreError(f"the store in {folder} cannot be opened ({e})")
            log.error("the store in %s did not open: %s", folder, error)
            choice, arg = ask(error, folder, usable_backups(folder))
        read_only = choice == "read_only"
        if choice == "quit":
            log.error("quit at start-up: the store in %s did not open", folder)
            return None
        if choice == "other" and arg:
            folder = Path(arg)
            settings.setValue("data_dir", str(folder))
        elif choice == "restore" and arg:
            try:
                aside = restore_backup(folder, arg)
                log.warning("restored %s into %s; the file it replaced is kept as %s", arg, folder, aside)
            except StoreError as e:
                log.error("restoring %s failed: %s", arg, e)
                QMessageBox.critical(None, "mfv_desktop", f"The backup could not be restored: {e}")


def ask_user(error: StoreError, folder: Path, backups: list, parent: QWidget | None = None) -> Answer:
    """The dialog: the store's message and the choices that fit it."""
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "mfv_desktop: the store cannot be opened",
        f"The data folder {folder} cannot be opened.",
        parent=parent,
    )
    box.setInformativeText(str(error))
    buttons: dict[QAbstractButton, str] = {}
    for key, text in CHOICES.items():
        if key == "read_only" and (error.kind in NOT_READABLE or not (folder / DB_FILE).is_file()):
            continue
        if key == "restore" and not backups:
            continue
        role = QMessageBox.ButtonRole.RejectRole if key == "quit" else QMessageBox.ButtonRole.ActionRole
        buttons[box.addButton(text, role)] = key
    box.setObjectName("store-problem")
    box.exec()
    choice = buttons.get(box.clickedButton(), "quit")
    if choice == "other":
        chosen = QFileDialog.getExistingDirectory(parent, "Choose a data folder", str(folder.parent))
        return ("other", chosen) if chosen else ("retry", None)
    if choice == "restore":
        items = [
            f"{b.path.name} (revision {b.revision}, {time.strftime('%Y-%m-%d %H:%M', time.localtime(b.time))})"
            for b in backups
        ]
        item, ok = QInputDialog.getItem(
            parent,
            "Restore a backup",
            "The current file is kept beside it (store.sqlite.broken-…). Restore:",
            items,
            0,
            False,
        )
        return ("restore", str(backups[items.index(item)].path)) if ok else ("retry", None)
    return choice, None
