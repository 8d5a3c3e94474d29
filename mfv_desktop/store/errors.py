"""The store's errors; each message names the file and what to do.

`kind` tells a caller (the GUI's start-up dialog) which choices to offer; `backups` lists the usable
backups of the store (newest first, see `db.usable_backups`) where restoring one may help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backups import Backup


class StoreError(RuntimeError):
    kind = "error"

    def __init__(self, message: str = "", backups: Sequence[Backup] = ()):
        super().__init__(message)
        self.backups: tuple[Backup, ...] = tuple(backups)


class StoreLocked(StoreError):
    """Another process is writing to this store."""

    kind = "locked"


class StoreTooNew(StoreError):
    """The database was written by a newer mfv_desktop."""

    kind = "too_new"


class StoreReadOnly(StoreError):
    """A write was attempted on a store opened read-only."""

    kind = "read_only"


class StoreReadOnlyMedia(StoreError):
    """The data folder cannot be written (read-only media or no permission): open it read-only or choose
    another folder."""

    kind = "read_only_media"


class StoreDiskFull(StoreError):
    """The disk holding the data folder is full."""

    kind = "disk_full"


class StoreCorrupt(StoreError):
    """The database file is damaged (header or pages) or a migration of it failed: restore a backup."""

    kind = "corrupt"


class ArtifactCorrupt(StoreError):
    """An artifact file is missing or its bytes no longer match its hash."""

    kind = "artifact_corrupt"
