"""Migrations: `upgrade head` on empty SQLite and PostgreSQL matches the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from service.data.migrate import upgrade
from service.data.models import Base


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.integration
def test_sqlite_upgrade_head_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert _diff(url) == []


@pytest.mark.integration
def test_postgresql_upgrade_head_matches_models(pg_url: str) -> None:
    upgrade(pg_url)
    assert _diff(pg_url) == []
    upgrade(pg_url)  # a second run is a no-op
