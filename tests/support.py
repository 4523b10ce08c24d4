"""Test helpers: a migrated template database and factories (not hand-built rows)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from exercises.catalog import load_builtin_catalog
from service.catalog import sync_catalog
from service.data.migrate import upgrade
from service.data.session import get_engine, session_scope
from service.users import create_token, create_user

_counter = itertools.count(1)


def migrated_sqlite_template(path: Path) -> Path:
    """Migrate an empty SQLite file to head and load the built-in catalog into it."""
    url = f"sqlite:///{path}"
    upgrade(url)
    with session_scope(url) as db:
        sync_catalog(db, load_builtin_catalog())
    # Fold the write-ahead log into the file, so that copying the file copies the data.
    with get_engine(url).connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    get_engine(url).dispose()
    return path


class Factory:
    """Makes users and tokens through the service's own functions."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def user_with_token(
        self, role: str = "learner", password: str = "correct-horse"
    ) -> dict[str, Any]:
        """A new user of `role` and an API token for it."""
        email = f"{role}{next(_counter)}@example.test"
        with session_scope(self.database_url) as db:
            user = create_user(db, email, password, role)
            token = create_token(db, user, name="test")
            user_id = user.id
        return {
            "user_id": user_id,
            "email": email,
            "password": password,
            "token": token,
            "headers": {"Authorization": f"Bearer {token}"},
        }
