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
and entries may live for LISTENING_SECONDS (120 s). While a process is not subscribed (Redis down,
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

# How long entries live while this process listens for other processes' changes (also the
# most an announcement lost for good can leave another process stale).
LISTENING_SECONDS = 120.0
ANNOUNCE_SECONDS = 10.0  # an announcement is retried this long
PING_SECONDS = 5.0  # the listener's PING interval; 3 unanswered: reconnect

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
        self._origin = b""  # this process's announcements carry it (see `origin`)
        self._origin_pid = 0
        self.publisher: Any = None
        self.subscribed_pid = 0  # the process whose listener holds a live subscription
        self.listener_pid = 0
        self.epoch = 0  # a new configuration retires the listener of the old one
        self.announcing: list[threading.Thread] = []

    @property
    def origin(self) -> bytes:
        """This process's own mark (a forked child gets its own, or it would ignore its
        siblings' announcements as its own)."""
        if self._origin_pid != os.getpid():
            self._origin, self._origin_pid = uuid.uuid4().hex.encode(), os.getpid()
        return self._origin

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
        """Tell the other processes to drop their entries, from a thread of its own (the
        committing request does not wait on Redis), retried for ANNOUNCE_SECONDS. One that
        still fails is logged; the others' entries then live at most LISTENING_SECONDS."""
        if self.url is None:
            return
        args = (self.url, self.name, self.origin)
        thread = threading.Thread(
            target=self._publish, args=args, name="hotcache-announce", daemon=True
        )
        with _lock:
            self.announcing = [t for t in self.announcing if t.is_alive()] + [thread]
        thread.start()

    def wait(self, seconds: float) -> None:
        """Wait (at most `seconds`) for announcements in flight: a short-lived process (the
        CLI) calls it before exiting."""
        end = time.monotonic() + seconds
        with _lock:
            threads = list(self.announcing)
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _publish(self, url: str, name: str, origin: bytes) -> None:
        import redis

        deadline = time.monotonic() + ANNOUNCE_SECONDS
        while True:
            try:
                with _lock:
                    if self.publisher is None:
                        self.publisher = redis.Redis.from_url(
                            url, socket_timeout=2, socket_connect_timeout=2
                        )
                    publisher = self.publisher
                publisher.publish(name, origin)
                return
            except (redis.RedisError, OSError) as err:
                if time.monotonic() > deadline:
                    log.error("cache invalidation not announced: %s", err)
                    return
                time.sleep(0.5)

    def _listen(self, url: str, name: str, epoch: int) -> None:
        import redis

        pid = os.getpid()

        def current() -> bool:
            return self.epoch == epoch and self.listener_pid == pid

        while current():
            try:
                client = redis.Redis.from_url(
                    url, socket_timeout=10, socket_connect_timeout=2, socket_keepalive=True
                )
                pubsub = client.pubsub()
                pubsub.subscribe(name)
                last_ping = last_heard = time.monotonic()
                while current():
                    message = pubsub.get_message(timeout=1.0)
                    now = time.monotonic()
                    if message is not None:
                        last_heard = now  # the PONGs too: the connection is alive
                    elif now - last_heard > 3 * PING_SECONDS:
                        # A half-open connection raises nothing: no answer to our PINGs is
                        # how it shows. Not subscribed any more: reconnect.
                        raise redis.ConnectionError("no answer from Redis to PING")
                    if now - last_ping > PING_SECONDS:
                        pubsub.ping()
                        last_ping = now
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        bump()  # announcements made before this may have been missed
                        with _lock:
                            if current():
                                self.subscribed_pid = pid
                    elif message["type"] == "message" and message["data"] != self.origin:
                        bump()
                pubsub.close()
                client.close()
            except (redis.RedisError, OSError) as err:
                if self.subscribed_pid == pid:
                    log.warning("cache invalidations not heard: %s", err)
                with _lock:
                    was_subscribed = self.subscribed_pid == pid
                    if current():
                        self.subscribed_pid = 0
                if was_subscribed:
                    bump()  # what was cached while the connection was failing may be stale
                time.sleep(1)


_channel = _Channel()


def wait_for_announcements(seconds: float = ANNOUNCE_SECONDS) -> None:
    """Let this process's announcements in flight reach Redis before it exits."""
    _channel.wait(seconds)


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
