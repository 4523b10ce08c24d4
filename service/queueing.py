"""Hand-off to the workers: Celery settings shared with the worker, and the web's dispatcher.

The web enqueues by task name only, so it never imports worker code or torch.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from celery import Celery, Task
from flask import Flask, current_app
from kombu.exceptions import KombuError, OperationalError

from service.config import Settings

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


class CeleryDispatcher:
    """Send the grading task by name to the submission's queue."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def enqueue(self, submission_id: int, queue: str) -> bool:
        """Send the task; a broker outage leaves the submission queued for the sweeper."""
        try:
            self.celery.send_task(GRADE_TASK, args=[submission_id], queue=queue)
        except (OperationalError, KombuError, OSError) as err:
            log.warning("broker unavailable, submission %s left queued: %s", submission_id, err)
            return False
        return True


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
        InlineDispatcher() if settings.grading_mode == "inline" else CeleryDispatcher(celery_app)
    )
