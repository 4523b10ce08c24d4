"""Hot-cache invalidations shared through Redis pub/sub: another process's announcement drops
this process's entries; entries live long only while the subscription is live."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from service import hotcache
from service.hotcache import TtlCache
from tests.integration.conftest import REDIS_URL


def _wait(condition: object, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def channel(redis_prefix: str) -> Iterator[str]:
    name = redis_prefix + "hotcache"
    hotcache.connect(REDIS_URL, name)
    yield name
    hotcache.connect(None, "")


def test_another_process_announcement_drops_entries(channel: str) -> None:
    cache: TtlCache[str, int] = TtlCache()
    assert _wait(hotcache._channel.listening), "never subscribed"
    cache.put("token", 1, hotcache.generation())
    assert cache.get("token", 5) == 1
    raw = redis.Redis.from_url(REDIS_URL)
    raw.publish(channel, b"another-process")
    assert _wait(lambda: cache.get("token", 5) is None), "the announcement was not heard"
    raw.close()


def test_own_commits_announce(channel: str) -> None:
    raw = redis.Redis.from_url(REDIS_URL)
    sub = raw.pubsub()
    sub.subscribe(channel)
    assert _wait(
        lambda: (m := sub.get_message(timeout=0.1)) is not None and m["type"] == "subscribe"
    )
    hotcache._channel.announce()
    assert _wait(lambda: (m := sub.get_message(timeout=0.1)) is not None and m["type"] == "message")
    sub.close()
    raw.close()


def test_entries_outlive_the_short_ttl_only_while_listening(channel: str) -> None:
    cache: TtlCache[str, int] = TtlCache()
    assert _wait(hotcache._channel.listening)
    cache.put("token", 1, hotcache.generation())
    time.sleep(0.05)
    assert cache.get("token", 0.01) == 1  # listening: LISTENING_SECONDS applies
    hotcache.connect(None, "")  # no channel: the short TTL again
    cache.put("token", 1, hotcache.generation())
    time.sleep(0.05)
    assert cache.get("token", 0.01) is None


def test_an_unreachable_redis_means_the_short_ttl() -> None:
    hotcache.connect("redis://127.0.0.1:1/0", "nowhere")
    try:
        cache: TtlCache[str, int] = TtlCache()
        assert not hotcache._channel.listening()
        cache.put("token", 1, hotcache.generation())
        time.sleep(0.05)
        assert cache.get("token", 0.01) is None
        hotcache._channel.announce()  # logged, not raised
    finally:
        hotcache.connect(None, "")
