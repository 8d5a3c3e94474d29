"""Opening the store: one writer at a time, migrated to the app's schema, WAL and foreign keys on.

On a read-write open the store takes an exclusive lock (held until close; the OS releases it if the
process dies), backs the database file up, upgrades it to the newest revision, and marks runs that
a dead process left running as interrupted. A database written by a newer app is refused; a second
writer is refused with the holder's pid; `read_only=True` opens beside a writer, never writes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlalchemy.exc
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mfv_desktop.files import atomic_path

from .artifacts import Artifacts
from .errors import StoreCorrupt, StoreDiskFull, StoreError, StoreLocked, StoreReadOnly, StoreReadOnlyMedia, StoreTooNew
from .models import AIEResultRow, Image, Run, VectorRow
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


def _errno_error(e: OSError, data_dir: Path, doing: str) -> StoreError | None:
    """A full disk or an unwritable data folder as what it is (None for other errors)."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            free = f"{shutil.disk_usage(data_dir).free / 2**20:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        return StoreDiskFull(f"the disk holding the data folder {data_dir} is full ({free}) while {doing} "
                             f"({errno.errorcode.get(e.errno, e.errno)}); free some space or choose a data folder "
                             "on another disk, then try again")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreReadOnlyMedia(
            f"the data folder {data_dir} cannot be written ({errno.errorcode[e.errno]}: {e.strerror}) while "
            f"{doing}: it is on read-only media or you lack permission. Open the store read-only "
            "(`mfv --read-only`, or Open read-only in the app) or choose another data folder")
    return None


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


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
        return (f"There is no usable backup in {data_dir / 'backups'}: move {data_dir / DB_FILE} away to start "
                "a new store, or choose another data folder."), found
    return (f"The newest usable backup is {found[0]}. Restore it with `mfv --store \"{data_dir}\" backups "
            f"--restore \"{found[0].path}\"` (or Restore a backup in the app; the current file is kept aside "
            "as store.sqlite.broken-TIME), or choose another data folder."), found


def _corrupt(db: Path, what: str) -> StoreCorrupt:
    advice, found = _restore_advice(db.parent)
    return StoreCorrupt(f"{db} {what}. {advice}", backups=found)


def _inspect(db: Path, uri: str) -> str | None:
    """The schema revision of a database (None for a new, empty one), after a quick check of its pages."""
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "alembic_version" not in tables:
                if tables:
                    raise StoreError(f"{db} is an SQLite database but not an mfv_desktop store "
                                     f"(tables: {', '.join(sorted(tables))}); choose another data folder")
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
            raise StoreReadOnlyMedia(f"{db} cannot be read on this read-only or unwritable folder ({e}); "
                                     "copy the data folder somewhere writable") from e
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


def _fsync(path: Path) -> None:
    if os.name == "nt" and path.is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_database(db: Path, dest: Path) -> None:
    """A consistent copy (every commit, WAL included) through SQLite's backup API, written to a temporary
    name in dest's folder, synced and renamed, so that dest is whole or absent."""
    with atomic_path(dest, fsync=True) as tmp:
        src = sqlite3.connect(str(db))
        try:
            out = sqlite3.connect(str(tmp))
            try:
                src.backup(out)
            finally:
                out.close()
        finally:
            src.close()


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
        raise StoreError(f"{backup_path} is not a usable backup of an mfv_desktop store (it is missing, damaged or "
                         "from a newer app); choose one from `mfv --store DIR backups`")
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


def _swap_in(new: Path, db: Path) -> None:
    """Replace the database file by a complete, synced new one: its old -wal and -shm go first (their
    commits are in the new file, or the old file is kept aside), then one atomic rename."""
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.replace(new, db)
    _fsync(db.parent)


def _migrate(db: Path, rev: str | None, head: str) -> None:
    """Build (rev None) or upgrade a copy of the database and swap it in: a crash at any point leaves the
    old file whole.

    SQLite's DDL under pysqlite is not transactional, so the live file is never migrated in place.
    The pre-migration backup is written only once the copy is sound, so failed attempts add none."""
    from alembic import command

    work = db.with_name(f".{db.name}.migrating")
    for f in (work, Path(f"{work}-wal"), Path(f"{work}-shm"), Path(f"{work}-journal")):
        f.unlink(missing_ok=True)  # a copy a killed migration left
    con = sqlite3.connect(str(db))
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every commit into the main file
    finally:
        con.close()
    try:
        _copy_database(db, work)
        engine = create_engine(f"sqlite:///{work}")
        event.listen(engine, "connect", _set_pragmas(read_only=False))
        try:
            with engine.begin() as connection:
                command.upgrade(_alembic_config(connection), "head")
            with engine.connect() as c:
                check = [r[0] for r in c.exec_driver_sql("PRAGMA integrity_check(5)")]
                now = c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        finally:
            engine.dispose()
        if check != ["ok"] or now != head:
            raise StoreError(f"the upgraded copy failed its check ({'; '.join(check)}, revision {now})")
        _fsync(work)
        if rev is not None:
            backup(db, f"r{rev}")
        _swap_in(work, db)
    except BaseException as e:
        work.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise (_errno_error(e, db.parent, "upgrading the store") or e) from e
        if isinstance(e, sqlalchemy.exc.OperationalError) and "disk is full" in str(e):
            raise _errno_error(OSError(errno.ENOSPC, "disk full"), db.parent, "upgrading the store") from e
        if isinstance(e, Exception):
            raise _corrupt(db, f"could not be upgraded from schema revision {rev} to {head} "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:300]}); the file was not changed") from e
        raise


class Store:
    """One data folder: the database, managed images, artifacts and run folders."""

    def __init__(self, data_dir: Path, engine: Engine, read_only: bool, lock: _Lock | None,
                 snapshot: Path | None = None):
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
                        used = (s.scalar(select(VectorRow.id).where(VectorRow.artifact == d))
                                or s.scalar(select(AIEResultRow.id).where(
                                    (AIEResultRow.aie_artifact == d) | (AIEResultRow.mean_artifact == d))))
                    if used is None:
                        f.unlink(missing_ok=True)
        except (OSError, sqlalchemy.exc.SQLAlchemyError):
            pass  # best effort: the original error is what the caller needs to hear

    def _read_only_error(self) -> StoreReadOnly:
        return StoreReadOnly(f"the store in {self.data_dir} is open read-only; close the other app (or leave out "
                             "--read-only) to make changes")

    def explain(self, e: BaseException) -> StoreError | None:
        """A clear StoreError for an error from the disk or the database (None: none applies)."""
        if isinstance(e, StoreError):
            return None
        if isinstance(e, OSError):
            inside = e.filename is None or str(Path(os.fsdecode(e.filename)).absolute()).startswith(
                str(self.data_dir.absolute()))
            if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) or inside:
                return _errno_error(e, self.data_dir, "writing")
            return None
        if isinstance(e, sqlalchemy.exc.OperationalError):
            msg = str(e.orig)
            if "disk is full" in msg:
                return _errno_error(OSError(errno.ENOSPC, msg), self.data_dir, "writing to the database")
            if "database is locked" in msg or "database is busy" in msg:
                return StoreError(f"the database in {self.data_dir} is busy (another program is writing to it); "
                                  "nothing was changed: try again in a moment")
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

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
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
                raise StoreError(f"the store in {data_dir} needs an upgrade (revision {rev} -> {head}); "
                                 "open it once read-write")
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
        raise _errno_error(OSError(errno.EROFS if os.access(data_dir, os.R_OK) else errno.EACCES,
                                   "the folder is not writable"), data_dir, "opening the store")
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
            raise _errno_error(OSError(errno.ENOSPC, str(e.orig)), data_dir, "opening the store") from e
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
