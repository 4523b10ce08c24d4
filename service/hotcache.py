"""Per-process caches of the submission hot path: API tokens and practice context.

A POST of an answer used to look up, every time, the token and its user, the exercise and
its versions, whether the learner may see it, whether an exam of theirs hides it, and their
variant: five queries that give the same answer for every answer a learner sends in a burst.
This module keeps those answers (`HOT_CACHE_SECONDS`; 0 turns the caches off).

Freshness: every entry is dropped as soon as this process commits a change to a table the
answers depend on (an SQLAlchemy event bumps a generation number), so a revoked token, an
enrolment or a new exam take effect at once in the process that made them. With a Redis
broker (`connect`), the process also announces the change on a pub/sub channel, and every
web process listening there drops its entries too: the change applies everywhere at once,
and entries may live for LISTENING_SECONDS. While a process is not subscribed (Redis down,
or no Redis), its entries live only `HOT_CACHE_SECONDS`: that bounds how long another
process's change can go unseen. A (re)subscription drops every entry, since announcements
may have been missed meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached

from service.lru import Lru

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

# The tables whose rows decide who a token is and what practice a learner may do.
WATCHED = frozenset(
    {
        "users",
        "api_tokens",
        "exercises",
        "exercise_versions",
        "courses",
        "enrollments",
        "assignments",
        "assignment_exercises",
        "extensions",
    }
)
# A statement with this execution option changes nothing any cache depends on
# (e.g. the time a token was last used).
NEUTRAL = "gradschool_cache_neutral"

# How long entries live while this process listens for other processes' changes.
LISTENING_SECONDS = 300.0

log = logging.getLogger(__name__)
_generation = 0
_lock = threading.Lock()


def generation() -> int:
    """The number of changes to watched tables this process has made."""
    return _generation


def bump() -> None:
    """Invalidate every entry of every cache in this process."""
    global _generation
    with _lock:
        _generation += 1


class TtlCache(Generic[K, V]):
    """A bounded LRU map whose entries expire after `seconds` or with the generation."""

    def __init__(self, size: int = 20_000) -> None:
        self.entries: Lru[K, tuple[float, int, V]] = Lru(size)

    def get(self, key: K, seconds: float) -> V | None:
        """The entry, if made since the last change and younger than `seconds` (than
        LISTENING_SECONDS while this process hears the others' changes)."""
        if seconds <= 0:
            return None
        entry = self.entries.get(key)
        if entry is None:
            return None
        made, gen, value = entry
        if _channel.listening():
            seconds = max(seconds, LISTENING_SECONDS)
        if gen != _generation or time.monotonic() - made > seconds:
            self.entries.discard(key)
            return None
        return value

    def put(self, key: K, value: V, gen: int) -> None:
        """Remember `value`, looked up when the generation was `gen` (taken before the
        lookup, so a change committed during it makes the entry stale at once)."""
        self.entries.put(key, (time.monotonic(), gen, value))

    def discard(self, key: K) -> None:
        """Forget one entry."""
        self.entries.discard(key)


def snapshot(obj: T) -> T:
    """A detached copy of a loaded ORM object's columns, owned by no session: safe to keep
    across requests and threads, and to `Session.merge(copy, load=False)` into a request's."""
    mapper = sa_inspect(type(obj))
    copy = type(obj)(**{attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs})
    make_transient_to_detached(copy)
    return copy


def _watched(table: Any) -> bool:
    return getattr(table, "name", None) in WATCHED


def _after_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if _watched(getattr(obj, "__table__", None)):
            session.info["gradschool_bump"] = True
            return


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get(NEUTRAL):
        return
    if _watched(getattr(state.statement, "table", None)):
        state.session.info["gradschool_bump"] = True


def _after_commit(session: Session) -> None:
    if session.info.pop("gradschool_bump", False):
        bump()
        _channel.announce()


class _Channel:
    """The pub/sub channel on which processes announce their changes to watched tables."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.name = ""
        self.origin = uuid.uuid4().hex.encode()  # this process's announcements carry it
        self.publisher: Any = None
        self.subscribed_pid = 0  # the process whose listener holds a live subscription
        self.listener_pid = 0
        self.epoch = 0  # a new configuration retires the listener of the old one

    def configure(self, url: str | None, name: str) -> None:
        with _lock:
            self.url, self.name, self.publisher = url, name, None
            self.epoch += 1
            self.listener_pid = self.subscribed_pid = 0

    def listening(self) -> bool:
        """True while this process's listener is subscribed (started here on first use)."""
        if self.url is None:
            return False
        pid = os.getpid()
        if self.listener_pid != pid:  # first use, or a forked child (threads do not fork)
            with _lock:
                if self.listener_pid != pid:
                    self.listener_pid = pid
                    threading.Thread(
                        target=self._listen,
                        args=(self.url, self.name, self.epoch),
                        name="hotcache-listen",
                        daemon=True,
                    ).start()
        return self.subscribed_pid == pid

    def announce(self) -> None:
        """Tell the other processes to drop their entries (best effort: a failed announcement
        is logged; listeners that lost Redis meanwhile drop everything when back)."""
        if self.url is None:
            return
        import redis

        try:
            if self.publisher is None:
                self.publisher = redis.Redis.from_url(
                    self.url, socket_timeout=2, socket_connect_timeout=2
                )
            self.publisher.publish(self.name, self.origin)
        except redis.RedisError as err:
            log.warning("cache invalidation not announced: %s", err)

    def _listen(self, url: str, name: str, epoch: int) -> None:
        import redis

        pid = os.getpid()

        def current() -> bool:
            return self.epoch == epoch and self.listener_pid == pid

        while current():
            try:
                client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2)
                pubsub = client.pubsub()
                pubsub.subscribe(name)
                last_ping = time.monotonic()
                while current():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        if time.monotonic() - last_ping > 5:
                            pubsub.ping()  # a dead connection raises instead of hanging
                            last_ping = time.monotonic()
                        continue
                    if message["type"] == "subscribe" and current():
                        bump()  # announcements made before this may have been missed
                        self.subscribed_pid = pid
                    elif message["type"] == "message" and message["data"] != self.origin:
                        bump()
                pubsub.close()
                client.close()
            except (redis.RedisError, OSError) as err:
                if self.subscribed_pid == pid:
                    log.warning("cache invalidations not heard: %s", err)
                if current():
                    self.subscribed_pid = 0
                time.sleep(1)


_channel = _Channel()


def connect(redis_url: str | None, channel: str) -> None:
    """Announce and hear changes on `channel` of the Redis at `redis_url` (None: only this
    process's changes count, and entries live HOT_CACHE_SECONDS)."""
    _channel.configure(redis_url, channel)


def install() -> None:
    """Watch every Session of the process (idempotent)."""
    if event.contains(Session, "after_commit", _after_commit):
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    # A rolled-back change leaves the mark: the next commit then drops entries it need not
    # have, which costs a lookup, never a stale answer.
    event.listen(Session, "after_commit", _after_commit)
