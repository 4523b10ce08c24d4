"""Celery tasks: thin wrappers that take ids and call the grading code."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from service.background import DRY_RUN_TASK, REGRADE_TASK
from service.queueing import GRADE_TASK, SWEEP_TASK
from worker import authoring, grading, regrading, sweeper
from worker.celery_app import celery_app, settings
from worker.sandbox.errors import SandboxError

# Every task that writes a result: acknowledged only once done (a lost worker means a
# re-delivery), retried on database faults, and no Celery result (the row is the result).
RELIABLE: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "retry_backoff": 0.5,
    "ignore_result": True,
}


@celery_app.task(
    **RELIABLE,
    name=GRADE_TASK,
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OperationalError, DBAPIError, SandboxError),
    retry_backoff_max=30,
    max_retries=20,
)
def grade_submission(submission_ids: int | list[int]) -> dict[int, str]:
    """Grade a batch of submissions (or one, as the sweeper and older webs send); idempotent,
    so a re-delivery writes nothing new."""
    ids = [submission_ids] if isinstance(submission_ids, int) else list(submission_ids)
    return grading.grade_batch(settings.database_url, ids)


@celery_app.task(name=SWEEP_TASK, ignore_result=True, soft_time_limit=30, time_limit=60)
def sweep_submissions() -> int:
    """Re-enqueue submissions left queued or running past their deadline, and what is left
    of regrade jobs without progress as long."""
    return sweeper.sweep(settings, celery_app)


@celery_app.task(
    **RELIABLE,
    name=DRY_RUN_TASK,
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OperationalError, DBAPIError),
    max_retries=5,
)
def dry_run_exercise(dry_run_id: int) -> str:
    """Check an authored exercise (reference, graph, worked example); the row is the result."""
    return authoring.dry_run(settings.database_url, dry_run_id)


@celery_app.task(
    **RELIABLE,
    name=REGRADE_TASK,
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=(OperationalError, DBAPIError, SandboxError),
    retry_backoff_max=30,
    max_retries=20,
)
def regrade_submissions(job_id: int, submission_ids: list[int]) -> dict[str, int]:
    """Regrade a batch of a job's submissions; idempotent per submission and job (a copy sent
    by the sweeper, or re-delivered, regrades and counts nothing twice)."""
    return regrading.regrade_submissions(settings.database_url, job_id, submission_ids)
