"""Readiness checks: can this process reach the database and the broker, and does a worker answer?

Each check has a short deadline and reports `ok`, how long it took, and on failure
only the error's class (the details go to the log, not to anonymous callers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu import Connection
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from service.config import Settings
from service.data.session import get_engine

log = logging.getLogger(__name__)

# How a dependency that is down shows itself (kombu wraps most broker errors in KombuError).
DEPENDENCY_ERRORS = (SQLAlchemyError, KombuError, RedisError, OSError, TimeoutError)


@dataclass
class Check:
    """The outcome of one readiness check."""

    ok: bool
    ms: float
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON for /readyz."""
        out: dict[str, Any] = {"ok": self.ok, "ms": round(self.ms, 1), **self.detail}
        if self.error:
            out["error"] = self.error
        return out


def timed(name: str, probe: Callable[[], dict[str, Any]]) -> Check:
    """Run `probe`; a dependency's error makes a failed check (logged with its cause)."""
    start = time.perf_counter()
    try:
        detail = probe()
    except DEPENDENCY_ERRORS as err:
        log.warning("readiness check %s failed: %s: %s", name, type(err).__name__, err)
        return Check(False, (time.perf_counter() - start) * 1000, type(err).__name__)
    ok = bool(detail.pop("ok", True))
    return Check(ok, (time.perf_counter() - start) * 1000, None if ok else "no answer", detail)


_READY_ENGINES: dict[str, Engine] = {}


def _readiness_engine(url: str, timeout: float) -> Engine:
    """A pool-less engine with a connect timeout: a fresh connection per check, never stuck."""
    if url.startswith("sqlite"):
        return get_engine(url)
    if url not in _READY_ENGINES:
        connect_args = {"connect_timeout": max(1, round(timeout))} if "postgresql" in url else {}
        _READY_ENGINES[url] = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    return _READY_ENGINES[url]


def check_database(settings: Settings, timeout: float) -> Check:
    """`SELECT 1` on a new connection."""

    def probe() -> dict[str, Any]:
        with _readiness_engine(settings.database_url, timeout).connect() as conn:
            conn.execute(text("SELECT 1"))
        return {}

    return timed("database", probe)


def broker_connection(settings: Settings, timeout: float) -> Connection:
    """A kombu connection that gives up after `timeout` (connect and every socket read)."""
    options: dict[str, Any] = dict(settings.broker_transport_options)
    url = settings.broker_url
    if settings.redis_url:
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    elif url == "filesystem://":
        url = "filesystem://localhost"  # the same transport, without kombu's warning on each use
    return Connection(url, transport_options=options, connect_timeout=timeout)


def check_broker(settings: Settings, timeout: float) -> Check:
    """Connect to the broker once, without retrying."""

    def probe() -> dict[str, Any]:
        with broker_connection(settings, timeout) as conn:
            conn.ensure_connection(max_retries=0)
            conn.default_channel  # noqa: B018  (opening a channel talks to the server)
        return {}

    return timed("broker", probe)


def check_workers(celery_app: Celery, settings: Settings, timeout: float) -> Check:
    """Broadcast a ping over the broker; ready as soon as one worker answers."""

    def probe() -> dict[str, Any]:
        with broker_connection(settings, timeout) as conn:
            replies = celery_app.control.ping(timeout=timeout, limit=1, connection=conn)
        names = sorted(name for reply in replies for name in reply)
        return {"ok": bool(names), "answered": names}

    return timed("workers", probe)


def readiness(
    celery_app: Celery, settings: Settings, timeout: float, ping_timeout: float
) -> dict[str, Check]:
    """Database, broker, workers; a ping is not attempted while the broker is down."""
    checks = {
        "database": check_database(settings, timeout),
        "broker": check_broker(settings, timeout),
    }
    if checks["broker"].ok:
        checks["workers"] = check_workers(celery_app, settings, ping_timeout)
    else:
        checks["workers"] = Check(False, 0.0, "broker unavailable")
    return checks
