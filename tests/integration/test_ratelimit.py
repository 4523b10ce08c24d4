"""The batched rate-limit storage against the real Redis: exact in a process, shared across
processes after a flush, and still counting while Redis is away."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis
from flask import Flask
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from service.ratelimit import FLUSH_SECONDS, BatchedRedisStorage, storage_uri
from tests.integration.conftest import REDIS_URL


def _storage(prefix: str) -> BatchedRedisStorage:
    storage = storage_from_string(storage_uri(REDIS_URL), key_prefix=prefix + "limits")
    assert isinstance(storage, BatchedRedisStorage)
    return storage


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}{uuid.uuid4().hex[:6]}:"


def test_one_process_counts_exactly(prefix: str) -> None:
    limiter = FixedWindowRateLimiter(_storage(prefix))
    limit = parse("3 per minute")
    assert [limiter.hit(limit, "learner") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(limit, "another learner")  # per key


def test_processes_share_their_counts_through_redis(prefix: str) -> None:
    a, b = _storage(prefix), _storage(prefix)  # two web processes
    limit = parse("5 per minute")
    for _ in range(3):
        assert FixedWindowRateLimiter(a).hit(limit, "learner")
    a.flush()
    raw = redis.Redis.from_url(REDIS_URL)
    key = a.prefixed_key(limit.key_for("learner"))
    assert int(raw.get(key) or 0) == 3
    assert 0 < raw.ttl(key) <= 60
    assert FixedWindowRateLimiter(b).hit(limit, "learner")  # b's 1st: 1 here
    b.flush()  # b learns the 3 of a
    assert FixedWindowRateLimiter(b).hit(limit, "learner")  # 3 + 2
    assert not FixedWindowRateLimiter(b).hit(limit, "learner")  # 3 + 3 > 5
    b.flush()
    assert int(raw.get(key) or 0) == 6
    # a has not flushed since b's hits: it admits what arrives before its next flush (the
    # documented bound), then knows the shared total.
    assert FixedWindowRateLimiter(a).hit(limit, "learner")  # 3 + 1 as a knows it
    a.flush()
    assert int(raw.get(key) or 0) == 7
    assert not FixedWindowRateLimiter(a).hit(limit, "learner")
    raw.close()


def test_the_flusher_thread_shares_counts_by_itself(prefix: str) -> None:
    storage = _storage(prefix)
    limit = parse("100 per minute")
    FixedWindowRateLimiter(storage).hit(limit, "learner")
    raw = redis.Redis.from_url(REDIS_URL)
    key = storage.prefixed_key(limit.key_for("learner"))
    deadline = time.monotonic() + 5
    while raw.get(key) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(raw.get(key) or 0) == 1
    raw.close()


def test_a_window_ends_and_counting_starts_again(prefix: str) -> None:
    storage = _storage(prefix)
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("1 per second")
    assert limiter.hit(limit, "learner")
    assert not limiter.hit(limit, "learner")
    assert storage.get_expiry(limit.key_for("learner")) <= time.time() + 1
    # Redis starts the window at the first flush, up to FLUSH_SECONDS after the first hit.
    time.sleep(1 + 2 * FLUSH_SECONDS + 0.1)
    assert limiter.hit(limit, "learner")


def test_redis_away_counts_locally_and_never_raises() -> None:
    storage = storage_from_string("batched+redis://127.0.0.1:1/0", key_prefix="x")
    assert isinstance(storage, BatchedRedisStorage)
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("2 per minute")
    assert limiter.hit(limit, "learner") and limiter.hit(limit, "learner")
    storage.flush()  # fails quietly: the hits stay counted here
    assert not limiter.hit(limit, "learner")
    assert storage.get(limit.key_for("learner")) == 3


def test_the_app_limits_api_calls_through_redis(prefix: str, pg_url: str, tmp_path: object) -> None:
    from service.app import create_app
    from service.config import load_settings

    settings = load_settings(
        {
            "DATABASE_URL": "sqlite:///" + str(tmp_path) + "/db.sqlite",
            "BROKER_URL": REDIS_URL,
            "BROKER_KEY_PREFIX": prefix,
            "SECRET_KEY": "test",
            "GRADSCHOOL_DATA_DIR": str(tmp_path),
        }
    )
    app: Flask = create_app(settings, TESTING=True, API_RATE_LIMIT="2 per minute")
    assert app.config["RATELIMIT_STORAGE_URI"].startswith("batched+redis://")
    client = app.test_client()
    codes = [client.get("/api/v1/me").status_code for _ in range(3)]
    assert codes[:2] == [401, 401] and codes[2] == 429  # counted per address, before auth


def test_deployments_sharing_a_redis_count_apart(redis_prefix: str, tmp_path: Path) -> None:
    from service.app import create_app
    from service.config import load_settings

    def app_for(prefix: str) -> Flask:
        settings = load_settings(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path}/{prefix}.sqlite",
                "BROKER_URL": REDIS_URL,
                "BROKER_KEY_PREFIX": f"{redis_prefix}{prefix}:",
                "SECRET_KEY": "test",
                "GRADSCHOOL_DATA_DIR": str(tmp_path),
            }
        )
        return create_app(settings, TESTING=True, API_RATE_LIMIT="2 per minute")

    a, b = app_for("a").test_client(), app_for("b").test_client()
    assert [a.get("/api/v1/me").status_code for _ in range(3)] == [401, 401, 429]
    time.sleep(3 * FLUSH_SECONDS)  # a's counts reach Redis (its flusher)
    assert b.get("/api/v1/me").status_code == 401  # not b's count


def test_ended_windows_are_forgotten_even_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.ratelimit as ratelimit

    monkeypatch.setattr(ratelimit, "PRUNE_AT", 10)
    storage = storage_from_string("batched+redis://127.0.0.1:1/0", key_prefix="x")
    limiter = FixedWindowRateLimiter(storage)
    for i in range(10):
        limiter.hit(parse("5 per second"), f"address-{i}")
    time.sleep(1.1)  # every window ends; no flush ever reached Redis
    limiter.hit(parse("5 per second"), "one more")
    assert len(storage._counters) == 1
