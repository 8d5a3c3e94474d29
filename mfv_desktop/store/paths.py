"""Where the store lives: a data folder from platformdirs, or the one the user names.

Nothing is ever written into the install folder. Layout of a data folder:
    store.sqlite (+ -wal, -shm)   the database
    store.lock                    held by the one process that writes
    images/ab/<sha256>.<ext>      managed copies of every image, content-addressed
    artifacts/ab/<sha256>.safetensors   arrays (AIE matrices, mean activations, vectors)
    runs/<id>/                    each job's own output files
    backups/                      the database file as it was before each migration
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "mfv_desktop"
DB_FILE = "store.sqlite"


#: the schema revisions this app knows, oldest first (database/versions/; a test keeps them in step),
#: so that opening a store at the newest revision does not need to import Alembic
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003")


def default_data_dir() -> Path:
    """$MFV_DATA_DIR if set, else the platform's per-user data folder."""
    env = os.environ.get("MFV_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


def migrations_folder() -> Path:
    """database/: the Alembic migrations (inside the installed package, or beside it in a checkout)."""
    from mfv_desktop.locations import shipped

    return shipped("database")
