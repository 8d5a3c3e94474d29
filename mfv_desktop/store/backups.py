"""Backups of the store's database in backups/: writing one (a consistent copy, the newest few kept, and
always the newest one this app can open), listing the usable ones, restoring one, and the advice a
damaged store's error carries."""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreCorrupt, StoreError
from .files import _copy_database, _errno_error, _fsync, _Lock, _swap_in
from .paths import DB_FILE, REVISIONS

KEEP_BACKUPS = 5


@dataclass(frozen=True)
class Backup:
    """A copy of the database in backups/ that this app can open."""

    path: Path
    revision: str
    time: float

    def __str__(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return f"{self.path} (revision {self.revision}, {when})"


def _backup_files(folder: Path, stem: str = Path(DB_FILE).stem) -> list[Path]:
    """The backups in a folder, newest first."""
    files = [f for f in folder.glob(f"{stem}-*.sqlite") if f.is_file()] if folder.is_dir() else []
    return sorted(files, key=lambda f: (f.stat().st_mtime, f.name), reverse=True)


def _usable(path: Path) -> Backup | None:
    """The backup, if it is a sound database at a revision this app knows."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return None
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return Backup(path, row[0], path.stat().st_mtime) if row and row[0] in REVISIONS else None


def usable_backups(data_dir: str | Path) -> list[Backup]:
    """The backups of a data folder's store that this app can open, newest first."""
    return [b for b in map(_usable, _backup_files(Path(data_dir) / "backups")) if b is not None]


def _restore_advice(data_dir: Path) -> tuple[str, list[Backup]]:
    found = usable_backups(data_dir)
    if not found:
        return (
            f"There is no usable backup in {data_dir / 'backups'}: move {data_dir / DB_FILE} away to start "
            "a new store, or choose another data folder."
        ), found
    return (
        f'The newest usable backup is {found[0]}. Restore it with `mfv --store "{data_dir}" backups '
        f'--restore "{found[0].path}"` (or Restore a backup in the app; the current file is kept aside '
        "as store.sqlite.broken-TIME), or choose another data folder."
    ), found


def _corrupt(db: Path, what: str) -> StoreCorrupt:
    advice, found = _restore_advice(db.parent)
    return StoreCorrupt(f"{db} {what}. {advice}", backups=found)


def backup(db: Path, label: str) -> Path:
    """A consistent copy of the database (WAL included) in backups/, keeping the newest few, and always the
    newest one this app can open."""
    folder = db.parent / "backups"
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = folder / f"{db.stem}-{label}-{stamp}.sqlite"
    n = 1
    while dest.exists():
        n += 1
        dest = folder / f"{db.stem}-{label}-{stamp}-{n}.sqlite"
    _copy_database(db, dest)
    files = _backup_files(folder, db.stem)
    keep = set(files[:KEEP_BACKUPS])
    last_good = next((f for f in files if _usable(f) is not None), None)
    for old in files:
        if old not in keep and old != last_good:
            old.unlink()
    return dest


def restore_backup(data_dir: str | Path, backup_path: str | Path) -> Path | None:
    """Put a backup in place of the store's database; returns where the current file was kept
    (store.sqlite.broken-TIME, with its -wal), or None when there was none. Takes the writer's lock
    (refused while the store is open elsewhere); the backup must be one this app can open."""
    data_dir, backup_path = Path(data_dir).expanduser().absolute(), Path(backup_path).expanduser()
    found = _usable(backup_path) if backup_path.is_file() else None
    if found is None:
        raise StoreError(
            f"{backup_path} is not a usable backup of an mfv_desktop store (it is missing, damaged or "
            "from a newer app); choose one from `mfv --store DIR backups`"
        )
    db = data_dir / DB_FILE
    lock = _Lock(data_dir / "store.lock")
    lock.acquire()
    try:
        work = data_dir / f".{DB_FILE}.restoring"
        _copy_database(backup_path, work)
        kept = None
        if db.exists():
            kept = data_dir / f"{DB_FILE}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.copyfile(db, kept)
            if Path(f"{db}-wal").is_file():
                shutil.copyfile(f"{db}-wal", f"{kept}-wal")
            _fsync(kept)
        _swap_in(work, db)
        return kept
    except OSError as e:
        raise (_errno_error(e, data_dir, "restoring a backup") or e) from e
    finally:
        lock.release()
