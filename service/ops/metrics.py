"""The web's /metrics: the system's state, read from the database and the broker at scrape time.

Gauges computed at scrape time are the same whichever web process answers and
whichever machine graded, so the web needs no shared metrics storage. Events
(grading latency, sandbox outcomes) are counted where they happen, in the
workers, which export them on their own endpoint (worker/observability.py).
docs/DEPLOY.md explains the split and the scrape configuration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator

from kombu.exceptions import ChannelError
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from service.config import Settings
from service.data.models import Submission, SubmissionStatus, utcnow
from service.data.session import session_scope
from service.ops.health import DEPENDENCY_ERRORS, broker_connection
from service.queueing import QUEUES

log = logging.getLogger(__name__)

ALL_QUEUES = sorted(set(QUEUES.values()))


def _submission_metrics(settings: Settings) -> list[Metric]:
    by_status = GaugeMetricFamily(
        "gradschool_submissions", "Submissions in the database, by status.", labels=["status"]
    )
    depth = GaugeMetricFamily(
        "gradschool_queue_depth",
        "Submissions waiting for a worker (status queued), by queue.",
        labels=["queue"],
    )
    oldest = GaugeMetricFamily(
        "gradschool_queue_oldest_seconds",
        "Age of the oldest submission still queued, by queue (0 when none).",
        labels=["queue"],
    )
    with session_scope(settings.database_url) as db:
        counts = dict(
            db.execute(select(Submission.status, func.count()).group_by(Submission.status)).all()
        )
        waiting = {
            queue: (n, first)
            for queue, n, first in db.execute(
                select(Submission.queue, func.count(), func.min(Submission.created_at))
                .where(Submission.status == SubmissionStatus.QUEUED)
                .group_by(Submission.queue)
            ).all()
        }
    for status in SubmissionStatus:
        by_status.add_metric([status.value], counts.get(status, 0))
    now = utcnow()
    for queue in sorted({*ALL_QUEUES, *waiting}):
        n, first = waiting.get(queue, (0, None))
        depth.add_metric([queue], n)
        age = (now - first).total_seconds() if first is not None else 0.0
        oldest.add_metric([queue], max(0.0, age))
    return [by_status, depth, oldest]


def _broker_metrics(settings: Settings, timeout: float) -> list[Metric]:
    messages = GaugeMetricFamily(
        "gradschool_broker_queue_messages",
        "Messages waiting in the broker, by queue (a submission id each).",
        labels=["queue"],
    )
    with broker_connection(settings, timeout) as conn:
        conn.ensure_connection(max_retries=0)
        channel = conn.default_channel
        for queue in ALL_QUEUES:
            try:
                count = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # never declared, or empty and gone (Redis deletes empty lists)
                count = 0
            messages.add_metric([queue], count)
    return [messages]


class StateCollector(Collector):
    """Collects submission and queue gauges at scrape time, cached for a few seconds."""

    def __init__(self, settings: Settings, timeout: float = 2.0, cache_seconds: float = 5.0):
        self.settings = settings
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        """The gauges, from the cache when it is fresh (scrapes are cheap and bounded)."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (now, list(self._gather()))
            metrics = self._cached[1]
        yield from metrics

    def _gather(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "gradschool_dependency_up",
            "1 when the web could read this dependency during the scrape.",
            labels=["dependency"],
        )
        for name, gather in (
            ("database", lambda: _submission_metrics(self.settings)),
            ("broker", lambda: _broker_metrics(self.settings, self.timeout)),
        ):
            try:
                yield from gather()
            except DEPENDENCY_ERRORS as err:
                log.warning("metrics: %s unavailable: %s: %s", name, type(err).__name__, err)
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
        yield up


def state_registry(settings: Settings, timeout: float, cache_seconds: float) -> CollectorRegistry:
    """A registry holding only the scrape-time collector (no per-process metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(settings, timeout, cache_seconds))
    return registry
