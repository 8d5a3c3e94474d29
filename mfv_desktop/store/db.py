"""Opening the store: one writer at a time, migrated to the app's schema, WAL and foreign keys on.

On a read-write open the store takes an exclusive lock (held until close; the OS releases it if the
process dies), backs the database file up, upgrades it to the newest revision, and marks runs that
a dead process left running as interrupted. A database written by a newer app is refused; a second
writer is refused with the holder's pid; `read_only=True` opens beside a writer, never writes.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .artifacts import Artifacts
from .errors import StoreError, StoreLocked, StoreReadOnly, StoreTooNew
from .models import Run
from .paths import DB_FILE, default_data_dir, migrations_folder

KEEP_BACKUPS = 5


class _Lock:
    """An exclusive, non-blocking lock on a file (fcntl on POSIX, msvcrt on Windows)."""

    def __init__(self, path: Path):
        self.path = path
        self._f = None

    def acquire(self) -> None:
        f = open(self.path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise StoreLocked(
                f"the store in {self.path.parent} is in use by another mfv_desktop process ({holder}). "
                "Close that app or wait for its job to finish, or open the store read-only "
                "(`mfv --read-only ...`).") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.ctime()}))
        f.flush()
        self._f = f

    def release(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _set_pragmas(read_only: bool):
    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        if not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed edit survives a crash of the machine, not only of the app
            cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    return on_connect


def _alembic_config(connection=None):
    from alembic.config import Config

    folder = migrations_folder()
    if not (folder / "env.py").is_file():
        raise StoreError(f"the store's migrations are missing from {folder}: reinstall mfv_desktop")
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


#: the schema revisions this app knows, oldest first (database/versions/; a test keeps them in step),
#: so that opening a store at the newest revision does not need to import Alembic
REVISIONS: tuple[str, ...] = ("0001", "0002")


def known_revisions() -> tuple[set[str], str]:
    return set(REVISIONS), REVISIONS[-1]


def migration_revisions() -> tuple[set[str], str]:
    """What the migration scripts in database/ say (the source of truth for REVISIONS)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return {r.revision for r in script.walk_revisions()}, script.get_current_head()


def database_revision(db: Path) -> str | None:
    """The schema revision stored in a database file (None for a new, empty one)."""
    if not db.exists() or db.stat().st_size == 0:
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "alembic_version" not in tables:
                if tables:
                    raise StoreError(f"{db} is an SQLite database but not an mfv_desktop store "
                                     f"(tables: {', '.join(sorted(tables))}); choose another data folder")
                return None
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{db} is not a readable database ({e}). Move it away and restore the newest "
                         f"copy from {db.parent / 'backups'}, or choose another data folder") from e


def backup(db: Path, label: str) -> Path:
    """A consistent copy of the database (WAL included) in backups/, keeping the newest few."""
    folder = db.parent / "backups"
    folder.mkdir(exist_ok=True)
    dest = folder / f"{db.stem}-{label}-{time.strftime('%Y%m%d-%H%M%S')}.sqlite"
    src = sqlite3.connect(str(db))
    try:
        with sqlite3.connect(str(dest)) as out:
            src.backup(out)
        out.close()
    finally:
        src.close()
    for old in sorted(folder.glob(f"{db.stem}-*.sqlite"))[:-KEEP_BACKUPS]:
        old.unlink()
    return dest


class Store:
    """One data folder: the database, managed images, artifacts and run folders."""

    def __init__(self, data_dir: Path, engine: Engine, read_only: bool, lock: _Lock | None):
        self.data_dir = data_dir
        self.db_path = data_dir / DB_FILE
        self.images_dir = data_dir / "images"
        self.runs_dir = data_dir / "runs"
        self.artifacts = Artifacts(data_dir / "artifacts")
        self.engine = engine
        self.read_only = read_only
        self._lock = lock
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed at the end, rolled back on an error."""
        if self.read_only:
            with self._sessions() as s:
                yield s
                if s.new or s.dirty or s.deleted:
                    s.rollback()
                    raise StoreReadOnly(f"the store in {self.data_dir} is open read-only; "
                                        "close the other app to make changes")
            return
        with self._sessions.begin() as s:
            yield s

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

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(data_dir: str | Path | None = None, read_only: bool = False) -> Store:
    data_dir = (Path(data_dir).expanduser() if data_dir is not None else default_data_dir()).resolve()
    db = data_dir / DB_FILE
    known, head = known_revisions()
    if read_only:
        if not db.is_file():
            raise StoreError(f"there is no store in {data_dir} to open read-only")
        rev = database_revision(db)
        _refuse_newer(db, rev, known, head)
        if rev != head:
            raise StoreError(f"the store in {data_dir} needs an upgrade (revision {rev} -> {head}); "
                             "open it once read-write")
        engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
        event.listen(engine, "connect", _set_pragmas(read_only=True))
        return Store(data_dir, engine, True, None)

    if data_dir.exists() and not data_dir.is_dir():
        raise StoreError(f"{data_dir} is a file, not a data folder: choose a folder")
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _Lock(data_dir / "store.lock")
    lock.acquire()
    try:
        rev = database_revision(db)
        _refuse_newer(db, rev, known, head)
        if rev is not None and rev != head:
            backup(db, f"r{rev}")
        engine = create_engine(f"sqlite:///{db}")
        event.listen(engine, "connect", _set_pragmas(read_only=False))
        if rev != head:
            from alembic import command

            with engine.begin() as connection:
                command.upgrade(_alembic_config(connection), "head")
        store = Store(data_dir, engine, False, lock)
        _mark_interrupted(store)
        return store
    except BaseException:
        lock.release()
        raise


def _refuse_newer(db: Path, rev: str | None, known: set[str], head: str) -> None:
    if rev is not None and rev not in known:
        from mfv_desktop import __version__

        raise StoreTooNew(f"{db} was written by a newer mfv_desktop (schema revision {rev}; this is "
                          f"mfv_desktop {__version__}, which knows revisions up to {head}). Update mfv_desktop, "
                          "or choose another data folder; the file was not changed.")


def _mark_interrupted(store: Store) -> None:
    """We hold the writer's lock, so a run still marked running belongs to a process that died."""
    with store.session() as s:
        s.execute(update(Run).where(Run.status.in_(("running", "pending")))
                  .values(status="interrupted", message="interrupted: the process ended before the job did"))
