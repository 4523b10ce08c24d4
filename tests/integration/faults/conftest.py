"""Private servers for fault tests: one PostgreSQL cluster per run, a Redis and a database per test.

Nothing here touches the shared PostgreSQL (5432) or Redis (6379): these tests kill servers.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from service.data.session import get_engine
from tests.integration.faults.servers import PrivatePostgres, PrivateRedis


def _missing(*binaries: str) -> list[str]:
    return [b for b in binaries if shutil.which(b) is None]


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this run's own, on a free port."""
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis of this test's own, without persistence, on a free port."""
    if _missing("redis-server"):
        pytest.fail("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def database_url(private_pg: PrivatePostgres) -> Iterator[str]:
    """An empty database of this test's own in the private cluster (running again afterwards)."""
    name = f"faults_{uuid.uuid4().hex[:10]}"
    url = private_pg.create_database(name)
    yield url
    get_engine(url).dispose()
    if not private_pg.is_running():
        private_pg.start()
    private_pg.drop_database(name)
