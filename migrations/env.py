"""Alembic environment: the URL comes from the config (or the caller), the metadata from models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.config import load_settings
from service.data.models import Base
from service.data.session import make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings(dev=True).database_url


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by rebuilding it (copy, DROP, rename: alembic's batch mode).
        # With foreign keys enforced, the DROP first deletes the rows, firing ON DELETE
        # actions on every table pointing at it (SET NULL on each verdict's regrade job).
        # Off for the migration, as alembic's batch docs say; the pragma is a no-op inside a
        # transaction, so it goes first (the project's engine turns it on per connection).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            connection.commit()  # the pragma below would be a no-op inside the transaction
    finally:
        if sqlite:
            connection.rollback()  # (nothing left after the commit; all of it on an error)
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    """Emit SQL without a database connection."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
