"""Engines and sessions, one engine per process and database URL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
CONNECT_TIMEOUT = 5  # seconds
# A pooled connection idle longer than this is pinged before use (see _ping_if_idle).
PING_IF_IDLE_SECONDS = 1.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL and a busy timeout let the web and the worker share one SQLite file."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _ping_if_idle(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when it sat idle for a while.

    SQLAlchemy's pool_pre_ping pings on every checkout: a round trip per request, a fifth
    of a POST's database time under load. A connection handed back milliseconds ago is as
    good as a pinged one; one idle for a second may belong to a database that restarted
    since, so it is pinged, and replaced (DisconnectionError: the pool retries with a new
    connection) if the ping fails. A connection that dies while busy fails its request
    (a 503) and the pool invalidates every connection older than the failure.
    """

    def stamp(_dbapi_conn: Any, record: Any, *_: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_IF_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as err:
            if engine.dialect.is_disconnect(err, dbapi_conn, None):
                raise exc.DisconnectionError(str(err)) from err
            raise

    event.listen(engine, "connect", stamp)
    event.listen(engine, "checkin", stamp)
    event.listen(engine, "checkout", checkout)


def make_engine(url: str) -> Engine:
    """A new engine for `url` with the settings this project relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Pinging idle connections replaces those a database restart killed, so the web recovers
    # by itself; connect_timeout turns a database that hangs into an error (a 503), not a hang.
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    engine = create_engine(url, pool_size=10, max_overflow=10, connect_args=connect_args)
    _ping_if_idle(engine)
    return engine


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


_CONNECTED = "gradschool.connected"


@event.listens_for(Session, "after_begin")
def _connected(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info[_CONNECTED] = True


@event.listens_for(Session, "after_transaction_end")
def _disconnected(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the root transaction: its connection went back
        session.info.pop(_CONNECTED, None)


def holds_connection(session: Session) -> bool:
    """True when the session's transaction already holds a connection (statements it sent are
    uncommitted there); False when the next statement would be the transaction's first."""
    return bool(session.info.get(_CONNECTED))


def alone_options(session: Session) -> dict[str, str]:
    """Execution options for the session's next statement: autocommit (one round trip, not
    BEGIN + statement + COMMIT/ROLLBACK) when it would be its transaction's first, else none.

    Not when the session has unflushed ORM changes either: they would be flushed at the
    commit, after the statement and outside its transaction."""
    if session.new or session.dirty or session.deleted or holds_connection(session):
        return {}
    return {"isolation_level": "AUTOCOMMIT"}


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
