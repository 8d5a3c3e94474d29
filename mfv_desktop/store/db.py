"""Opening the store: one writer at a time, migrated to the app's schema, WAL and foreign keys on.

On a read-write open the store takes an exclusive lock (held until close; the OS releases it if the
process dies), backs the database file up, upgrades it to the newest revision, and marks runs that
a dead process left running as interrupted. A database written by a newer app is refused; a second
writer is refused with the holder's pid; `read_only=True` opens beside a writer, never writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy.exc
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .artifacts import Artifacts
from .backups import (
    KEEP_BACKUPS,
    Backup,
    _corrupt,
    backup,
    restore_backup,
    usable_backups,
)
from .errors import StoreError, StoreReadOnly, StoreReadOnlyMedia
from .files import _as_store_error, _errno_error, _Lock, _set_pragmas, _writable
from .migrate import (
    _alembic_config,
    _migrate,
    _refuse_newer,
    known_revisions,
    migration_revisions,
)
from .models import AIEResultRow, Image, Run, VectorRow
from .paths import DB_FILE, REVISIONS, default_data_dir

#: names that moved to backups.py, migrate.py and files.py, still importable from here
__all__ = [
    "KEEP_BACKUPS",
    "REVISIONS",
    "Backup",
    "Store",
    "_Lock",
    "_alembic_config",
    "backup",
    "database_revision",
    "known_revisions",
    "migration_revisions",
    "open_store",
    "restore_backup",
    "usable_backups",
]


def _inspect(db: Path, uri: str) -> str | None:
    """The schema revision of a database (None for a new, empty one), after a quick check of its pages."""
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "alembic_version" not in tables:
                if tables:
                    raise StoreError(
                        f"{db} is an SQLite database but not an mfv_desktop store "
                        f"(tables: {', '.join(sorted(tables))}); choose another data folder"
                    )
                return None
            check = [r[0] for r in con.execute("PRAGMA quick_check(5)")]
            if check != ["ok"]:
                raise _corrupt(db, f"is damaged (quick check: {'; '.join(check)[:300]})")
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        finally:
            con.close()
    except sqlite3.OperationalError as e:  # cannot open or read: not damage
        if not _writable(db.parent):
            raise StoreReadOnlyMedia(
                f"{db} cannot be read on this read-only or unwritable folder ({e}); "
                "copy the data folder somewhere writable"
            ) from e
        raise StoreError(f"{db} cannot be opened ({e})") from e
    except sqlite3.DatabaseError as e:
        raise _corrupt(db, f"is not a readable database ({e}): the file is damaged") from e


def database_revision(db: Path) -> str | None:
    """The schema revision stored in a database file (None for a new, empty one)."""
    if not db.exists() or db.stat().st_size == 0:
        return None
    return _inspect(db, _read_only_uri(db)[0])


def _read_only_uri(db: Path) -> tuple[str, Path | None]:
    """How to open a database without writing to its folder: (URI, a snapshot folder to remove at close).

    In a writable folder: mode=ro. In a folder that cannot be written (where SQLite cannot keep the -shm
    file WAL needs), with no committed frames in a -wal file the file is opened immutable; a leftover -wal
    with commits is read from a snapshot copy (database and -wal) in a temporary folder."""
    if _writable(db.parent):
        return f"file:{db}?mode=ro", None
    wal = Path(f"{db}-wal")
    if not wal.is_file() or wal.stat().st_size == 0:
        return f"file:{db}?mode=ro&immutable=1", None
    snap = Path(tempfile.mkdtemp(prefix="mfv-store-"))
    shutil.copyfile(db, snap / db.name)
    shutil.copyfile(wal, snap / wal.name)
    sqlite3.connect(str(snap / db.name)).close()  # the last connection folds the -wal into the copy
    return f"file:{snap / db.name}?mode=ro", snap


class Store:
    """One data folder: the database, managed images, artifacts and run folders."""

    def __init__(
        self, data_dir: Path, engine: Engine, read_only: bool, lock: _Lock | None, snapshot: Path | None = None
    ):
        self.data_dir = data_dir
        self.db_path = data_dir / DB_FILE
        self.images_dir = data_dir / "images"
        self.runs_dir = data_dir / "runs"
        self.engine = engine
        self.read_only = read_only
        self._lock = lock
        self._snapshot = snapshot
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._written = threading.local()
        self.artifacts = Artifacts(data_dir / "artifacts", on_new=self._wrote)

    def _wrote(self, path: Path) -> None:
        """A file written for the unit of work running in this thread (removed if it fails)."""
        files = getattr(self._written, "files", None)
        if files is not None:
            files.append(path)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed at the end, rolled back on an error (and the image and artifact
        files it wrote that no row refers to are removed). A full disk and an unwritable folder raise
        StoreDiskFull and StoreReadOnlyMedia, a write to a read-only store StoreReadOnly."""
        outer = getattr(self._written, "files", None)
        self._written.files = files = [] if outer is None else outer
        try:
            if self.read_only:
                with self._sessions() as s:
                    event.listen(s, "transient_to_pending", self._on_pending)
                    yield s
                    if s.new or s.dirty or s.deleted:
                        s.rollback()
                        raise self._read_only_error()
                return
            with self._sessions() as s:
                event.listen(s, "transient_to_pending", self._on_pending)
                with s.begin():
                    yield s
        except BaseException as e:
            if outer is None:
                self._remove_unreferenced(files)
            err = self.explain(e)
            if err is None:
                raise
            raise err from e
        finally:
            if outer is None:
                self._written.files = None

    def _on_pending(self, _session: Session, obj: object) -> None:
        if isinstance(obj, Image):
            self._wrote(self.data_dir / obj.path)

    def _remove_unreferenced(self, files: list[Path]) -> None:
        """After a failed unit of work: its new files that no committed row refers to."""
        if not files:
            return
        try:
            with self._sessions() as s:
                for f in files:
                    if f.parent.parent == self.images_dir:
                        used = s.scalar(select(Image.id).where(Image.path == f.relative_to(self.data_dir).as_posix()))
                    else:
                        d = f.name.split(".")[0]
                        used = s.scalar(select(VectorRow.id).where(VectorRow.artifact == d)) or s.scalar(
                            select(AIEResultRow.id).where(
                                (AIEResultRow.aie_artifact == d) | (AIEResultRow.mean_artifact == d)
                            )
                        )
                    if used is None:
                        f.unlink(missing_ok=True)
        except (OSError, sqlalchemy.exc.SQLAlchemyError):
            pass  # best effort: the original error is what the caller needs to hear

    def _read_only_error(self) -> StoreReadOnly:
        return StoreReadOnly(
            f"the store in {self.data_dir} is open read-only; close the other app (or leave out "
            "--read-only) to make changes"
        )

    def explain(self, e: BaseException) -> StoreError | None:
        """A clear StoreError for an error from the disk or the database (None: none applies)."""
        if isinstance(e, StoreError):
            return None
        if isinstance(e, OSError):
            inside = e.filename is None or str(Path(os.fsdecode(e.filename)).absolute()).startswith(
                str(self.data_dir.absolute())
            )
            if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) or inside:
                return _errno_error(e, self.data_dir, "writing")
            return None
        if isinstance(e, sqlalchemy.exc.OperationalError):
            msg = str(e.orig)
            if "disk is full" in msg:
                return _errno_error(OSError(errno.ENOSPC, msg), self.data_dir, "writing to the database")
            if "database is locked" in msg or "database is busy" in msg:
                return StoreError(
                    f"the database in {self.data_dir} is busy (another program is writing to it); "
                    "nothing was changed: try again in a moment"
                )
            if "readonly database" in msg:
                if self.read_only:
                    return self._read_only_error()
                return _errno_error(OSError(errno.EROFS, msg), self.data_dir, "writing to the database")
        return None

    def integrity_check(self) -> str:
        with self.engine.connect() as c:
            return ", ".join(r[0] for r in c.exec_driver_sql("PRAGMA integrity_check"))

    def revision(self) -> str | None:
        return database_revision(self.db_path)

    def close(self) -> None:
        self.engine.dispose()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(data_dir: str | Path | None = None, read_only: bool = False) -> Store:
    """Open (and on a read-write open create or upgrade) the store in a data folder. Every failure is a
    StoreError whose `kind` says what is wrong: locked, too_new, corrupt (with `backups`), read_only_media,
    disk_full."""
    data_dir = (Path(data_dir).expanduser() if data_dir is not None else default_data_dir()).resolve()
    db = data_dir / DB_FILE
    known, head = known_revisions()
    if read_only:
        if not db.is_file():
            raise StoreError(f"there is no store in {data_dir} to open read-only")
        uri, snapshot = _read_only_uri(db)
        try:
            rev = _inspect(db, uri)
            _refuse_newer(db, rev, known, head)
            if rev != head:
                raise StoreError(
                    f"the store in {data_dir} needs an upgrade (revision {rev} -> {head}); open it once read-write"
                )
        except BaseException:
            if snapshot is not None:
                shutil.rmtree(snapshot, ignore_errors=True)
            raise
        engine = create_engine(f"sqlite:///{uri}&uri=true")
        event.listen(engine, "connect", _set_pragmas(read_only=True))
        return Store(data_dir, engine, True, None, snapshot)

    if data_dir.exists() and not data_dir.is_dir():
        raise StoreError(f"{data_dir} is a file, not a data folder: choose a folder")
    if data_dir.is_dir() and not _writable(data_dir):
        raise _as_store_error(
            OSError(errno.EROFS if os.access(data_dir, os.R_OK) else errno.EACCES, "the folder is not writable"),
            data_dir,
            "opening the store",
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = _Lock(data_dir / "store.lock")
        lock.acquire()
    except OSError as e:
        raise (_errno_error(e, data_dir, "opening the store") or e) from e
    try:
        rev = database_revision(db)
        _refuse_newer(db, rev, known, head)
        if rev != head:
            _migrate(db, rev, head)
        engine = create_engine(f"sqlite:///{db}")
        event.listen(engine, "connect", _set_pragmas(read_only=False))
        store = Store(data_dir, engine, False, lock)
        _mark_interrupted(store)
        return store
    except BaseException as e:
        lock.release()
        if isinstance(e, OSError):
            raise (_errno_error(e, data_dir, "opening the store") or e) from e
        if isinstance(e, sqlalchemy.exc.OperationalError) and "disk is full" in str(e):
            raise _as_store_error(OSError(errno.ENOSPC, str(e.orig)), data_dir, "opening the store") from e
        raise


def _mark_interrupted(store: Store) -> None:
    """We hold the writer's lock, so a run still marked running belongs to a process that died."""
    with store.session() as s:
        s.execute(
            update(Run)
            .where(Run.status.in_(("running", "pending")))
            .values(status="interrupted", message="interrupted: the process ended before the job did")
        )
