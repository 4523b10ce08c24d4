"""The web's grading dispatcher: ids sent in batches per queue by one sender thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.exceptions import OperationalError

from service.logging_setup import TASK_REQUEST_ID_HEADER, log_context
from service.queueing import BATCH_LIMITS, GRADE_TASK, CeleryDispatcher


class FakeCelery:
    """Records send_task calls; the first send can be held to let ids pile up."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[int], str, dict[str, Any] | None]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.sending = threading.Event()
        self.fail = False
        self.lock = threading.Lock()

    @contextmanager
    def producer_or_acquire(self) -> Iterator[object]:
        yield object()

    def send_task(self, name: str, args: list[Any], queue: str, **kw: Any) -> None:
        self.sending.set()
        self.hold.wait(5)
        if self.fail:
            raise OperationalError("broker down")
        with self.lock:
            self.sent.append((name, args[0], queue, kw.get("headers")))


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _busy_sending(first: int) -> tuple[FakeCelery, CeleryDispatcher]:
    """A dispatcher whose sender is held in the middle of sending [first]."""
    celery = FakeCelery()
    d = CeleryDispatcher(celery)  # type: ignore[arg-type]
    celery.hold.clear()
    d.enqueue(first, "numeric")
    celery.sending.wait(5)
    return celery, d


def test_ids_that_arrive_during_a_send_go_together_in_the_next() -> None:
    celery, d = _busy_sending(1)  # the sender is busy with [1]
    for sid in range(2, 12):
        d.enqueue(sid, "numeric")
    code_ids = list(range(100, 100 + BATCH_LIMITS["code"] + 1))
    for sid in code_ids:
        d.enqueue(sid, "code")
    celery.hold.set()
    _wait_for(lambda: sum(len(ids) for _, ids, _, _ in celery.sent) == 11 + len(code_ids))
    numeric = [ids for _, ids, q, _ in celery.sent if q == "numeric"]
    code = [ids for _, ids, q, _ in celery.sent if q == "code"]
    assert numeric == [[1], list(range(2, 12))]
    # code answers go in smaller batches (BATCH_LIMITS): one slow answer delays few others
    assert code == [code_ids[:-1], code_ids[-1:]]
    assert all(name == GRADE_TASK for name, _, _, _ in celery.sent)


def test_a_batch_never_exceeds_its_queues_limit() -> None:
    celery, d = _busy_sending(0)
    limit = BATCH_LIMITS["numeric"]
    for sid in range(1, 2 * limit + 6):
        d.enqueue(sid, "numeric")
    celery.hold.set()
    _wait_for(lambda: sum(len(ids) for _, ids, _, _ in celery.sent) == 2 * limit + 6)
    sizes = [len(ids) for _, ids, _, _ in celery.sent]
    assert max(sizes) == limit and sizes[1:] == [limit, limit, 5]
    sent = [sid for _, ids, _, _ in celery.sent for sid in ids]
    assert sent == list(range(2 * limit + 6))  # each once, in order


def test_a_broker_outage_loses_the_batch_to_the_sweeper_not_the_sender() -> None:
    celery = FakeCelery()
    celery.fail = True
    d = CeleryDispatcher(celery)  # type: ignore[arg-type]
    assert d.enqueue(1, "numeric") is True
    _wait_for(lambda: not d.pending and celery.sending.is_set())
    celery.fail = False
    d.enqueue(2, "numeric")
    _wait_for(lambda: len(celery.sent) == 1)
    assert celery.sent[0][1] == [2]
    assert d.sender is not None and d.sender.is_alive()


def test_the_batch_carries_the_request_ids_of_its_submissions() -> None:
    celery, d = _busy_sending(1)
    with log_context(request_id="req-a"):
        d.enqueue(2, "numeric")
    with log_context(request_id="req-b"):
        d.enqueue(3, "numeric")
    celery.hold.set()
    _wait_for(lambda: len(celery.sent) == 2)
    assert celery.sent[0][3] is None
    assert celery.sent[1][3] == {TASK_REQUEST_ID_HEADER: "req-a,req-b"}


def test_flush_sends_what_is_pending_in_the_calling_thread() -> None:
    celery = FakeCelery()
    d = CeleryDispatcher(celery)  # type: ignore[arg-type]
    with d.cond:  # the sender cannot take the ids while we hold its lock
        d._ensure_sender()
        d.pending = {"numeric": [(7, None), (8, None)]}
    d.flush()
    _wait_for(lambda: celery.sent)
    assert [ids for _, ids, _, _ in celery.sent] == [[7, 8]]


def test_under_load_a_batch_fills_for_the_linger_and_alone_goes_at_once() -> None:
    celery = FakeCelery()
    d = CeleryDispatcher(celery, linger_seconds=0.3)  # type: ignore[arg-type]
    started = time.monotonic()
    d.enqueue(1, "numeric")  # idle: sent at once
    _wait_for(lambda: len(celery.sent) == 1)
    assert time.monotonic() - started < 0.25
    d.enqueue(2, "numeric")  # a send was just made: these wait for the linger, together
    d.enqueue(3, "numeric")
    _wait_for(lambda: len(celery.sent) == 2)
    assert time.monotonic() - started >= 0.25
    assert [ids for _, ids, _, _ in celery.sent] == [[1], [2, 3]]


def test_a_full_batch_goes_at_once_without_waiting_for_the_linger() -> None:
    celery = FakeCelery()
    d = CeleryDispatcher(celery, linger_seconds=3.0)  # type: ignore[arg-type]
    d.enqueue(1, "code")  # idle: sent at once; the next batch then lingers up to 3 s
    _wait_for(lambda: len(celery.sent) == 1)
    started = time.monotonic()
    limit = BATCH_LIMITS["code"]
    for sid in range(2, 2 + limit):
        d.enqueue(sid, "code")
        time.sleep(0.05)  # the sender is waiting out the linger when the batch fills
    _wait_for(lambda: len(celery.sent) == 2)
    assert time.monotonic() - started < 1.5
    assert celery.sent[1][1] == list(range(2, 2 + limit))


def test_the_sender_is_woken_for_a_first_id_or_a_full_batch_only() -> None:
    celery = FakeCelery()
    d = CeleryDispatcher(celery, linger_seconds=3.0)  # type: ignore[arg-type]
    wakes: list[int] = []
    notify = d.cond.notify

    def counting_notify(n: int = 1) -> None:
        wakes.append(n)
        notify(n)

    d.cond.notify = counting_notify  # type: ignore[method-assign]
    d.enqueue(1, "numeric")
    _wait_for(lambda: len(celery.sent) == 1)
    assert len(wakes) == 1
    for sid in range(2, 12):  # lingering: waking the sender for each id would be waste
        d.enqueue(sid, "numeric")
    assert len(wakes) == 2  # the first of them only
    _wait_for(lambda: len(celery.sent) == 2, timeout=10)
    assert celery.sent[1][1] == list(range(2, 12))


def test_grading_batch_ms_is_read_and_checked() -> None:
    import pytest

    from service.config import ConfigError, load_settings

    env = {"SECRET_KEY": "x", "GRADING_BATCH_MS": "5", "HOT_CACHE_SECONDS": "0"}
    got = load_settings(env)
    assert (got.grading_batch_ms, got.hot_cache_seconds) == (5.0, 0.0)
    with pytest.raises(ConfigError, match="GRADING_BATCH_MS must be a number of milliseconds"):
        load_settings({"SECRET_KEY": "x", "GRADING_BATCH_MS": "soon"})
    with pytest.raises(ConfigError, match="HOT_CACHE_SECONDS must be between"):
        load_settings({"SECRET_KEY": "x", "HOT_CACHE_SECONDS": "-1"})
