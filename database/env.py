"""Alembic environment for the mfv_desktop store (SQLite, batch mode).

mfv_desktop.store.migrate runs migrations in-process and hands its connection over in
`config.attributes["connection"]`; `alembic -x url=sqlite:///path upgrade head` works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mfv_desktop.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as connection:
        _configure_and_run(connection)


if context.is_offline_mode():
    raise SystemExit("the mfv_desktop store migrates online only")
run_migrations_online()
