"""The schema migrations: Alembic's configuration, the revisions this app knows, upgrading a copy of the
database and swapping it in, and refusing a database a newer app wrote."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy.exc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection

from .backups import _corrupt, backup
from .errors import StoreError, StoreTooNew
from .files import _as_store_error, _copy_database, _errno_error, _fsync, _set_pragmas, _swap_in
from .paths import REVISIONS, migrations_folder

if TYPE_CHECKING:
    from alembic.config import Config


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    folder = migrations_folder()
    if not (folder / "env.py").is_file():
        raise StoreError(f"the store's migrations are missing from {folder}: reinstall mfv_desktop")
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def known_revisions() -> tuple[set[str], str]:
    return set(REVISIONS), REVISIONS[-1]


def migration_revisions() -> tuple[set[str], str | None]:
    """What the migration scripts in database/ say (the source of truth for REVISIONS)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return {r.revision for r in script.walk_revisions()}, script.get_current_head()


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
            raise _as_store_error(OSError(errno.ENOSPC, "disk full"), db.parent, "upgrading the store") from e
        if isinstance(e, Exception):
            raise _corrupt(
                db,
                f"could not be upgraded from schema revision {rev} to {head} "
                f"({type(e).__name__}: {str(e).splitlines()[0][:300]}); the file was not changed",
            ) from e
        raise


def _refuse_newer(db: Path, rev: str | None, known: set[str], head: str) -> None:
    if rev is not None and rev not in known:
        from mfv_desktop import __version__

        raise StoreTooNew(
            f"{db} was written by a newer mfv_desktop (schema revision {rev}; this is "
            f"mfv_desktop {__version__}, which knows revisions up to {head}). Update mfv_desktop, "
            "or choose another data folder; the file was not changed."
        )
