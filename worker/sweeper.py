"""The sweeper: re-enqueues submissions the broker lost (queued or running too long).

The database is the source of truth and the broker only carries ids, so anything the broker
loses (a restart without persistence, a worker killed with messages it had not acknowledged, a
publish that failed while the broker was down) is a row still `queued`, or `running` with a
claim nobody will finish. Sending a row again is always safe: grading claims a submission
before it judges it and writes the result only while its claim holds.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery
from kombu.exceptions import KombuError
from sqlalchemy import ColumnElement, or_, select, update

from service.config import Settings
from service.data.models import Submission, SubmissionStatus, utcnow
from service.data.session import session_scope
from service.queueing import GRADE_TASK

log = logging.getLogger(__name__)

BATCH = 500


def _stale(settings: Settings) -> ColumnElement[bool]:
    now = utcnow()
    queued_before = now - timedelta(seconds=settings.sweep_after_seconds)
    running_before = now - timedelta(seconds=settings.running_grace_seconds)
    return or_(
        (Submission.status == SubmissionStatus.QUEUED) & (Submission.updated_at < queued_before),
        (Submission.status == SubmissionStatus.RUNNING) & (Submission.updated_at < running_before),
    )


def sweep(settings: Settings, celery_app: Celery) -> int:
    """Re-enqueue stale submissions; returns how many were sent again."""
    with session_scope(settings.database_url) as db:
        rows = db.execute(
            select(Submission.id, Submission.queue)
            .where(_stale(settings))
            .order_by(Submission.id)
            .limit(BATCH)
        ).all()
    sent: list[int] = []
    try:
        with celery_app.producer_or_acquire() as producer:
            for submission_id, queue in rows:
                celery_app.send_task(
                    GRADE_TASK, args=[submission_id], queue=queue, producer=producer
                )
                sent.append(submission_id)
    except (KombuError, OSError) as err:
        # The rows not sent are still stale: the next sweep finds them again.
        log.warning("broker unavailable: sweeper sent %d of %d: %s", len(sent), len(rows), err)
    if sent:
        # Sent first, then marked: a mark that fails only means one more duplicate later.
        # A row claimed in between is no longer stale and keeps its claim's time.
        now = utcnow()
        with session_scope(settings.database_url) as db:
            db.execute(
                update(Submission)
                .where(Submission.id.in_(sent), _stale(settings))
                .values(updated_at=now)
                .execution_options(synchronize_session=False)
            )
        log.info("sweeper re-enqueued %d submissions", len(sent))
    return len(sent)
