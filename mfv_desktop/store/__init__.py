"""The local store: one SQLite database (SQLAlchemy 2, Alembic migrations in database/), managed
image copies and content-addressed array artifacts in one data folder. No torch, no Qt."""

from . import models
from .artifacts import Artifacts
from .db import Backup, Store, backup, database_revision, known_revisions, open_store, restore_backup, usable_backups
from .errors import (
    ArtifactCorrupt,
    StoreCorrupt,
    StoreDiskFull,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreReadOnlyMedia,
    StoreTooNew,
)
from .paths import default_data_dir

__all__ = [
    "ArtifactCorrupt",
    "Artifacts",
    "Backup",
    "Store",
    "StoreCorrupt",
    "StoreDiskFull",
    "StoreError",
    "StoreLocked",
    "StoreReadOnly",
    "StoreReadOnlyMedia",
    "StoreTooNew",
    "backup",
    "database_revision",
    "default_data_dir",
    "known_revisions",
    "models",
    "open_store",
    "restore_backup",
    "usable_backups",
]
