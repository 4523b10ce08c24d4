"""Migrations: `upgrade head` on empty SQLite and PostgreSQL matches the models exactly."""

from __future__ import annotations

import sqlite3
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


def _filler(sql_type: str) -> object:
    kind = sql_type.upper()
    if "INT" in kind or "BOOL" in kind:
        return 1
    if "DATE" in kind or "TIME" in kind:
        return "2026-01-01 00:00:00.000000"
    if "JSON" in kind:
        return "{}"
    return "x"


def _insert(db: sqlite3.Connection, table: str, **given: object) -> None:
    """A row with `given` values and a filler in every other NOT NULL column."""
    values = dict(given)
    for _cid, name, sql_type, notnull, default, pk in db.execute(f"PRAGMA table_info({table})"):
        if name not in values and notnull and default is None and not pk:
            values[name] = _filler(sql_type)
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values()))


@pytest.mark.integration
def test_sqlite_table_rebuilds_keep_the_rows_that_point_at_them(tmp_path: Path) -> None:
    """SQLite rebuilds a table to alter it (copy, DROP, rename); with foreign keys enforced,
    the DROP would first fire ON DELETE SET NULL on every row pointing at the table (every
    verdict's regrade job when regrade_jobs gained its columns)."""
    path = tmp_path / "m.db"
    url = f"sqlite:///{path}"
    upgrade(url, "bab95813a235")  # before regrade_jobs was rebuilt
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    # Row 1 of every table, parents first; every other required column 1 (so every foreign
    # key points at a row 1) or a filler.
    for table in Base.metadata.sorted_tables:
        if table.name in present:
            _insert(db, table.name, id=1)
    db.execute("UPDATE submission_verdicts SET regrade_job_id = 1")
    db.commit()
    db.close()
    upgrade(url)
    db = sqlite3.connect(path)
    kept = db.execute("SELECT regrade_job_id FROM submission_verdicts WHERE id = 1").fetchone()
    db.close()
    assert kept == (1,)
