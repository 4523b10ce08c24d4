"""Engines and sessions, one engine per process and database URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
CONNECT_TIMEOUT = 5  # seconds


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL and a busy timeout let the web and the worker share one SQLite file."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """A new engine for `url` with the settings this project relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pool_pre_ping replaces connections a database restart killed, so the web recovers by
    # itself; connect_timeout turns a database that hangs into an error (a 503), not a hang.
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args
    )


def get_engine(url: str) -> Engine:
    """The process-wide engine for `url`."""
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
            _factories[url] = sessionmaker(bind=_engines[url], expire_on_commit=False)
        return _engines[url]


def session_factory(url: str) -> sessionmaker[Session]:
    """The process-wide session factory for `url`."""
    get_engine(url)
    return _factories[url]


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_all() -> None:
    """Drop pooled connections (after a fork, so children open their own)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)


def close_all() -> None:
    """Close every pooled connection and forget the engines (tests, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()
