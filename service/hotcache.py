"""Short-lived per-process caches of the submission hot path: API tokens and practice context.

A POST of an answer used to look up, every time, the token and its user, the exercise and
its versions, whether the learner may see it, whether an exam of theirs hides it, and their
variant: five queries that give the same answer for every answer a learner sends in a burst.
This module keeps those answers for `HOT_CACHE_SECONDS` (5 s by default; 0 turns it off).

Freshness: every entry is dropped as soon as this process commits a change to a table the
answers depend on (an SQLAlchemy event bumps a generation number), so a revoked token, an
enrolment or a new exam take effect at once in the process that made them. Another web
process sees such a change when its entry expires, within `HOT_CACHE_SECONDS`.
"""

from __future__ import annotations

import threading
import time
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
        """The entry, if younger than `seconds` and made since the last change."""
        if seconds <= 0:
            return None
        entry = self.entries.get(key)
        if entry is None:
            return None
        made, gen, value = entry
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


def install() -> None:
    """Watch every Session of the process (idempotent)."""
    if event.contains(Session, "after_commit", _after_commit):
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    # A rolled-back change leaves the mark: the next commit then drops entries it need not
    # have, which costs a lookup, never a stale answer.
    event.listen(Session, "after_commit", _after_commit)
