"""Celery tasks: thin wrappers that take ids and call the grading code."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from service.queueing import GRADE_TASK, SWEEP_TASK
from worker import grading, sweeper
from worker.celery_app import celery_app, settings


@celery_app.task(
    name=GRADE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OperationalError, DBAPIError),
    retry_backoff=0.5,
    retry_backoff_max=30,
    max_retries=20,
    ignore_result=True,
)
def grade_submission(submission_id: int) -> str:
    """Grade one submission; idempotent, so a re-delivery writes nothing new."""
    return grading.grade_submission(settings.database_url, submission_id)


@celery_app.task(name=SWEEP_TASK, ignore_result=True, soft_time_limit=30, time_limit=60)
def sweep_submissions() -> int:
    """Re-enqueue submissions left queued or running past their deadline."""
    return sweeper.sweep(settings, celery_app)
