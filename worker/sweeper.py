"""The sweeper: re-enqueues submissions the broker lost (queued or running too long)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery
from sqlalchemy import or_, select, update

from service.config import Settings
from service.data.models import Submission, SubmissionStatus, utcnow
from service.data.session import session_scope
from service.queueing import GRADE_TASK

log = logging.getLogger(__name__)

RUNNING_GRACE = timedelta(seconds=120)  # longer than the task's hard time limit
BATCH = 500


def sweep(settings: Settings, celery_app: Celery) -> int:
    """Re-enqueue stale submissions; returns how many were sent again."""
    now = utcnow()
    stale_queued = now - timedelta(seconds=settings.sweep_after_seconds)
    stale_running = now - RUNNING_GRACE
    with session_scope(settings.database_url) as db:
        rows = db.execute(
            select(Submission.id, Submission.queue)
            .where(
                or_(
                    (Submission.status == SubmissionStatus.QUEUED)
                    & (Submission.updated_at < stale_queued),
                    (Submission.status == SubmissionStatus.RUNNING)
                    & (Submission.updated_at < stale_running),
                )
            )
            .order_by(Submission.id)
            .limit(BATCH)
        ).all()
        if rows:
            db.execute(
                update(Submission)
                .where(Submission.id.in_([r.id for r in rows]))
                .values(updated_at=now)
            )
    for submission_id, queue in rows:
        celery_app.send_task(GRADE_TASK, args=[submission_id], queue=queue)
    if rows:
        log.info("sweeper re-enqueued %d submissions", len(rows))
    return len(rows)
