"""Rate-limit counters kept in this process and shared through Redis in the background.

flask-limiter's Redis storage makes a round trip (an EVALSHA) on every request: under a
burst that was a tenth of the CPU a POST cost the web. This storage (for the `limits`
library, scheme `batched+redis://`) counts each hit in memory and sends the counts to Redis
every FLUSH_SECONDS in one script call, which returns the shared totals and their expiry.
A request is admitted while the last shared total plus this process's hits since then stay
within the limit.

What it gives up: between two flushes a process does not see the other processes' hits,
so all web processes together may admit up to what they receive in FLUSH_SECONDS beyond
the limit (a few requests per key at most; the limits protect the service, not a quota).
Within one process the count is exact. A window starts in Redis at the first flush of its
key, so it may end up to FLUSH_SECONDS later than the first hit's. While Redis is
unreachable each process goes on counting on its own (as flask-limiter's in-memory fallback
would) and shares again once Redis answers.

The keys and their semantics (INCRBY, then EXPIRE on the first hit of a window) are those of
`limits.storage.RedisStorage`, so processes using either storage count together.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from limits.storage import RedisStorage

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
# Counters of ended windows are dropped at each flush, and when a new key finds this many.
PRUNE_AT = 50_000


def storage_uri(redis_url: str) -> str:
    """The flask-limiter storage URI of this storage on the Redis at `redis_url`."""
    return f"batched+{redis_url}"


# For each key: INCRBY its new hits, EXPIRE it when that made the key, and answer the total
# and the milliseconds left (PTTL) - one call for every key a flush carries.
_FLUSH_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
    local amount = tonumber(ARGV[2 * i - 1])
    local current = redis.call("incrby", key, amount)
    if current == amount then
        redis.call("expire", key, ARGV[2 * i])
    end
    out[2 * i - 1] = current
    out[2 * i] = redis.call("pttl", key)
end
return out
"""


@dataclass
class _Counter:
    """One key's window as this process knows it."""

    shared: int  # the total Redis answered at the last flush
    pending: int  # hits here since, not yet sent
    sending: int  # hits of the flush in flight
    expiry: int  # the window's length, seconds
    ends_at: float  # time.time() when the window ends (Redis's expiry once known)

    @property
    def total(self) -> int:
        """The window's count as this process knows it."""
        return self.shared + self.sending + self.pending


class BatchedRedisStorage(RedisStorage):
    """`limits` storage: fixed-window counters in memory, flushed to Redis in batches.

    Only the fixed-window strategy (flask-limiter's default, the one this app uses) counts
    here; the other strategies' methods are RedisStorage's own, one round trip each.
    """

    STORAGE_SCHEME = ["batched+redis", "batched+rediss"]  # noqa: RUF012

    def __init__(self, uri: str, **options: Any) -> None:
        # A Redis that stops answering must not hang the flusher (or a request's fallback).
        options.setdefault("socket_timeout", 2)
        options.setdefault("socket_connect_timeout", 2)
        super().__init__(uri.removeprefix("batched+"), **options)
        self._outage = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._counters: dict[str, _Counter] = {}
        self._flusher: threading.Thread | None = None
        self._pid = 0
        self._flush_script = self.get_connection().register_script(_FLUSH_SCRIPT.encode())

    def _ensure_flusher(self) -> None:
        # Started on first use in each process: a fork (the web's worker processes) keeps no thread.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._flusher = threading.Thread(target=self._run, name="ratelimit-flush", daemon=True)
            self._flusher.start()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits; the total as this process knows it (no round trip)."""
        now = time.time()
        with self._lock:
            self._ensure_flusher()
            counter = self._counters.get(key)
            if counter is None or now >= counter.ends_at:
                if len(self._counters) >= PRUNE_AT:
                    self._prune(now)  # also without flushes (Redis away): memory stays bounded
                counter = self._counters[key] = _Counter(0, 0, 0, expiry, now + expiry)
            counter.pending += amount
            return counter.total

    def get(self, key: str) -> int:
        """The window's count as this process knows it."""
        with self._lock:
            counter = self._counters.get(key)
            if counter is None or time.time() >= counter.ends_at:
                return 0
            return counter.total

    def get_expiry(self, key: str) -> float:
        """When the window ends (time.time())."""
        with self._lock:
            counter = self._counters.get(key)
            if counter is not None:
                return counter.ends_at
        return super().get_expiry(key)

    def clear(self, key: str) -> None:
        """Forget the key here and in Redis."""
        with self._lock:
            self._counters.pop(key, None)
        super().clear(key)

    def reset(self) -> int | None:
        """Forget every key here and in Redis."""
        with self._lock:
            self._counters.clear()
        return super().reset()

    def _prune(self, now: float) -> None:
        """Forget windows that ended (call with the lock held)."""
        for key in [k for k, c in self._counters.items() if now >= c.ends_at]:
            del self._counters[key]

    def flush(self) -> None:
        """Send the hits counted since the last flush; take the shared totals back."""
        now = time.time()
        with self._lock:
            self._prune(now)
            batch = [(k, c) for k, c in self._counters.items() if c.pending]
            for _, counter in batch:
                counter.sending, counter.pending = counter.pending, 0
        if not batch:
            return
        keys = [self.prefixed_key(k) for k, _ in batch]
        args: list[int] = []
        for _, counter in batch:
            args += [counter.sending, counter.expiry]
        try:
            answer = self._flush_script(keys, args)
        except self.base_exceptions as err:
            # Redis is away: the hits stay counted here and are sent with the next flush.
            if not self._outage:
                log.warning("rate-limit counters not shared until Redis answers: %s", err)
            self._outage = True
            with self._lock:
                for _, counter in batch:
                    counter.pending += counter.sending
                    counter.sending = 0
            return
        if self._outage:
            log.warning("rate-limit counters shared again")
            self._outage = False
        done = time.time()
        with self._lock:
            for i, (_, counter) in enumerate(batch):
                total, ttl_ms = int(answer[2 * i]), int(answer[2 * i + 1])
                counter.shared, counter.sending = total, 0
                if ttl_ms > 0:
                    counter.ends_at = done + ttl_ms / 1000

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the flusher must outlive any surprise; the next one retries
                log.exception("rate-limit flush failed")
