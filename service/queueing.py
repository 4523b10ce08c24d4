"""Hand-off to the workers: Celery settings shared with the worker, and the web's dispatcher.

The web enqueues by task name only, so it never imports worker code or torch.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any, Protocol

from celery import Celery, Task
from flask import Flask, current_app
from kombu.exceptions import KombuError, OperationalError

from service.config import Settings
from service.logging_setup import TASK_REQUEST_ID_HEADER, current_request_id

log = logging.getLogger(__name__)

GRADE_TASK = "grading.grade_submission"
SWEEP_TASK = "grading.sweep_submissions"
QUEUES = {"data": "numeric", "code": "code"}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings: no result backend (the submission row is the result)."""
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": dict(settings.broker_transport_options),
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "numeric",
        "task_create_missing_queues": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 4,
        "worker_hijack_root_logger": False,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "beat_schedule": {
            "sweep-submissions": {
                "task": SWEEP_TASK,
                "schedule": max(1.0, settings.sweep_after_seconds / 4),
            }
        },
    }


def celery_init_app(app: Flask) -> Celery:
    """Flask's celery_init_app pattern: tasks run inside the app context."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    settings: Settings = app.config["GRADSCHOOL"]
    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_config(settings))
    app.extensions["celery"] = celery_app
    return celery_app


class Dispatcher(Protocol):
    """Something that hands a submission to grading."""

    def enqueue(self, submission_id: int, queue: str) -> bool:
        """Hand over; False when the broker could not take it (the sweeper will)."""


# Most ids one grading task carries, per queue: numeric answers grade in a fraction of a
# millisecond each, so a batch amortizes the task's and the database's fixed costs. Code
# answers usually run in milliseconds too, but may run for seconds (up to the sandbox's
# wall limit, 5 s by default): a batch of 4 amortizes the task, the send and the database
# writes (a tenth of a code answer's CPU) while bounding what one slow answer can make
# the three others of its batch wait. Batches fill only under load (see CeleryDispatcher).
BATCH_LIMITS = {"numeric": 64, "code": 4}


class CeleryDispatcher:
    """Send grading tasks by name to the submission's queue, batched per queue.

    `enqueue` only notes the id; a sender thread per process sends what has accumulated
    as one task per queue (at most BATCH_LIMITS ids each). At low load a batch is the one
    id just submitted, sent at once; under load (a send less than `linger_seconds` ago)
    the next batch fills until then, so a process sends at most one task per queue per
    linger and a batch carries about rate x linger ids. The submission row is
    committed before `enqueue`, so ids lost with a process that dies before sending (or
    refused by a broker outage) are still `queued` and the sweeper sends them again.
    """

    def __init__(self, celery_app: Celery, linger_seconds: float = 0.02) -> None:
        self.celery = celery_app
        self.linger = linger_seconds
        self.pending: dict[str, list[tuple[int, str | None]]] = {}
        self.cond = threading.Condition()
        self.sender: threading.Thread | None = None
        self.pid = os.getpid()
        self.flush_at_exit = False

    def enqueue(self, submission_id: int, queue: str) -> bool:
        """Note the id for the sender thread; True (a broker outage is the sweeper's)."""
        with self.cond:
            self._ensure_sender()
            woken = not self.pending  # the sender waits for a first id, else for a full batch
            # With the request's id: the worker's log lines name the requests of its batch.
            ids = self.pending.setdefault(queue, [])
            ids.append((submission_id, current_request_id()))
            if woken or len(ids) == BATCH_LIMITS.get(queue, 1):
                # Only then: waking the sender for every id cost a thread switch per POST
                # (8 % of the web's GIL time under load; PERFORMANCE.md, session 6).
                self.cond.notify()
        return True

    def _ensure_sender(self) -> None:
        # Started lazily in the process that enqueues: a thread does not survive a fork, and a
        # process may be forked after the app is made (a test, a prefork pool).
        if self.pid != os.getpid():  # a forked child: what is pending is its parent's to send
            self.pid, self.pending, self.sender = os.getpid(), {}, None
        if self.sender is None or not self.sender.is_alive():
            self.sender = threading.Thread(target=self._run, name="grading-sender", daemon=True)
            self.sender.start()
        if not self.flush_at_exit:  # once: a forked child inherits the registration
            atexit.register(self.flush)
            self.flush_at_exit = True

    def _take(self) -> list[tuple[str, list[tuple[int, str | None]]]]:
        batches: list[tuple[str, list[tuple[int, str | None]]]] = []
        for queue, ids in self.pending.items():
            limit = BATCH_LIMITS.get(queue, 1)
            batches.extend((queue, ids[i : i + limit]) for i in range(0, len(ids), limit))
        self.pending = {}
        return batches

    def _full(self) -> bool:
        return any(len(ids) >= BATCH_LIMITS.get(q, 1) for q, ids in self.pending.items())

    def _run(self) -> None:
        last_send = 0.0
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                # Under load (the last send was recent), let the batch fill for up to `linger`
                # after it; when idle, send at once: a lone answer never waits.
                until = last_send + self.linger
                while not self._full() and (left := until - time.monotonic()) > 0:
                    self.cond.wait(left)
                batches = self._take()
            last_send = time.monotonic()
            self._send(batches)

    def flush(self) -> None:
        """Send what is pending now, in the calling thread (at exit; in tests)."""
        with self.cond:
            batches = self._take()
        self._send(batches)

    def _send(self, batches: list[tuple[str, list[tuple[int, str | None]]]]) -> None:
        if not batches:
            return
        try:
            with self.celery.producer_or_acquire() as producer:
                for queue, entries in batches:
                    ids = [submission_id for submission_id, _ in entries]
                    request_ids = ",".join(rid for _, rid in entries if rid)
                    self.celery.send_task(
                        GRADE_TASK,
                        args=[ids],
                        queue=queue,
                        producer=producer,
                        headers={TASK_REQUEST_ID_HEADER: request_ids} if request_ids else None,
                    )
        except (OperationalError, KombuError, OSError) as err:
            log.warning("broker unavailable, submissions %s left queued: %s", batches, err)
        except Exception:  # never let the sender thread die: the sweeper has the ids
            log.exception("sending grading tasks failed; submissions %s left queued", batches)


class InlineDispatcher:
    """Grade inside the web request: the no-queue baseline (imports the worker lazily)."""

    def enqueue(self, submission_id: int, queue: str) -> bool:
        """Grade now, in this process."""
        from worker.grading import GradingFailed, grade_submission

        try:
            grade_submission(current_app.config["GRADSCHOOL"].database_url, submission_id)
        except GradingFailed:
            log.exception("inline grading of submission %s failed", submission_id)
        return True


def dispatcher() -> Dispatcher:
    """The current app's dispatcher."""
    d: Dispatcher = current_app.extensions["gradschool.dispatcher"]
    return d


def init_app(app: Flask) -> None:
    """Install the dispatcher chosen by GRADING_MODE (tests may replace it)."""
    celery_app = celery_init_app(app)
    settings: Settings = app.config["GRADSCHOOL"]
    app.extensions["gradschool.dispatcher"] = (
        InlineDispatcher()
        if settings.grading_mode == "inline"
        else CeleryDispatcher(celery_app, settings.grading_batch_ms / 1000)
    )
