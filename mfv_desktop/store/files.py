"""The data folder's file operations under the store: the writer's lock, fsync, a consistent copy of the
database, the atomic swap of a new file into place, the connection pragmas, and OS errors (full disk,
read-only media) as StoreErrors."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from mfv_desktop.files import atomic_path

from .errors import StoreDiskFull, StoreError, StoreLocked, StoreReadOnlyMedia


class _Lock:
    """An exclusive, non-blocking lock on a file (fcntl on POSIX, msvcrt on Windows)."""

    def __init__(self, path: Path):
        self.path = path
        self._f: TextIO | None = None

    def acquire(self) -> None:
        f = open(self.path, "a+")
        try:
            if sys.platform == "win32":  # os.name == "nt", spelled so that type checkers follow it
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
                "(`mfv --read-only ...`)."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.ctime()}))
        f.flush()
        self._f = f

    def release(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _set_pragmas(read_only: bool) -> Callable[[DBAPIConnection, ConnectionPoolEntry], None]:
    def on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        if not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed edit survives a crash of the machine, not only of the app
            cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    return on_connect


def _errno_error(e: OSError, data_dir: Path, doing: str) -> StoreError | None:
    """A full disk or an unwritable data folder as what it is (None for other errors)."""
    if e.errno is None:
        return None
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            free = f"{shutil.disk_usage(data_dir).free / 2**20:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        return StoreDiskFull(
            f"the disk holding the data folder {data_dir} is full ({free}) while {doing} "
            f"({errno.errorcode.get(e.errno, e.errno)}); free some space or choose a data folder "
            "on another disk, then try again"
        )
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreReadOnlyMedia(
            f"the data folder {data_dir} cannot be written ({errno.errorcode[e.errno]}: {e.strerror}) while "
            f"{doing}: it is on read-only media or you lack permission. Open the store read-only "
            "(`mfv --read-only`, or Open read-only in the app) or choose another data folder"
        )
    return None


def _as_store_error(e: OSError, data_dir: Path, doing: str) -> StoreError | OSError:
    """`_errno_error`'s StoreError, or the OSError itself where it is neither a full disk nor an unwritable folder."""
    return _errno_error(e, data_dir, doing) or e


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


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


def _swap_in(new: Path, db: Path) -> None:
    """Replace the database file by a complete, synced new one: its old -wal and -shm go first (their
    commits are in the new file, or the old file is kept aside), then one atomic rename."""
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.replace(new, db)
    _fsync(db.parent)
