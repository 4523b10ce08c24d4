"""The sweeper: re-enqueues the work the broker lost: submissions queued or running too long,
and regrade jobs that stopped making progress.

The database is the source of truth and the broker only carries ids, so anything the broker
loses (a restart without persistence, a worker killed with messages it had not acknowledged, a
publish that failed while the broker was down) is a row still `queued`, or `running` with a
claim nobody will finish; for a regrade, a job neither done nor failed whose `updated_at` (its
last progress) is old. Sending again is always safe: grading claims a submission before it
judges it and writes the result only while its claim holds, and a regrade settles each
submission of a job once (worker/regrading.py), so the sweeper sends what is left of a job
and a copy of a batch that was only slow regrades nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import undefer

from service.background import REGRADE_TASK
from service.config import Settings
from service.data.models import JobStatus, RegradeJob, Submission, SubmissionStatus, utcnow
from service.data.session import session_scope
from service.queueing import GRADE_TASK
from service.regrade import batches, unsettled

log = logging.getLogger(__name__)

BATCH = 500
JOBS = 20  # regrade jobs per sweep (each may be sent as many batches)


def _stale(settings: Settings) -> ColumnElement[bool]:
    now = utcnow()
    queued_before = now - timedelta(seconds=settings.sweep_after_seconds)
    running_before = now - timedelta(seconds=settings.running_grace_seconds)
    return or_(
        (Submission.status == SubmissionStatus.QUEUED) & (Submission.updated_at < queued_before),
        (Submission.status == SubmissionStatus.RUNNING) & (Submission.updated_at < running_before),
    )


def _stale_jobs(settings: Settings) -> ColumnElement[bool]:
    """Regrade jobs without progress for too long. A queued job's batches wait in the queue
    (SWEEP_AFTER_SECONDS, as a queued submission); a running job's remaining batches may wait
    there too, or be regraded one submission at a time (each settled submission is progress:
    RUNNING_GRACE_SECONDS, as a claim), so it is given the longer of the two."""
    now = utcnow()
    queued_before = now - timedelta(seconds=settings.sweep_after_seconds)
    running_before = now - timedelta(
        seconds=max(settings.sweep_after_seconds, settings.running_grace_seconds)
    )
    return RegradeJob.submission_ids.is_not(None) & or_(
        (RegradeJob.status == JobStatus.QUEUED) & (RegradeJob.updated_at < queued_before),
        (RegradeJob.status == JobStatus.RUNNING) & (RegradeJob.updated_at < running_before),
    )


def sweep(settings: Settings, celery_app: Celery) -> int:
    """Re-enqueue stale submissions and regrade jobs; returns how many were sent again."""
    return _sweep_submissions(settings, celery_app) + _sweep_regrades(settings, celery_app)


Message = tuple[str, list[Any], str]  # (task, args, queue)


def _sweep_submissions(settings: Settings, celery_app: Celery) -> int:
    with session_scope(settings.database_url) as db:
        rows = db.execute(
            select(Submission.id, Submission.queue)
            .where(_stale(settings))
            .order_by(Submission.id)
            .limit(BATCH)
        ).all()
    plans = [(sid, [(GRADE_TASK, [sid], queue)]) for sid, queue in rows]
    # A row claimed in between is no longer stale and keeps its claim's time.
    return _send_then_mark(settings, celery_app, "submissions", plans, Submission, _stale)


def _sweep_regrades(settings: Settings, celery_app: Celery) -> int:
    """Send again what is left of each stale regrade job (as the web sent it: batches per
    queue); finish a stale job with nothing left (its last submissions are gone)."""
    plans: list[tuple[int, list[Message]]] = []
    with session_scope(settings.database_url) as db:
        jobs = db.scalars(
            select(RegradeJob)
            .options(undefer(RegradeJob.submission_ids))
            .where(_stale_jobs(settings))
            .order_by(RegradeJob.id)
            .limit(JOBS)
        ).all()
        empty = []
        for job in jobs:
            left = unsettled(db, job)
            if left:
                work = [(REGRADE_TASK, [job.id, ids], queue) for queue, ids in batches(left)]
                plans.append((job.id, work))
            else:
                empty.append(job.id)
        if empty:
            now = utcnow()
            db.execute(
                update(RegradeJob)
                .where(RegradeJob.id.in_(empty), _stale_jobs(settings))
                .values(status=JobStatus.DONE, finished_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            log.warning("sweeper finished regrade jobs %s: nothing left to regrade", empty)
    # A job that progressed meanwhile is no longer stale and keeps its time.
    return _send_then_mark(settings, celery_app, "regrade jobs", plans, RegradeJob, _stale_jobs)


def _send_then_mark(
    settings: Settings,
    celery_app: Celery,
    what: str,
    plans: list[tuple[int, list[Message]]],
    model: type[Submission] | type[RegradeJob],
    stale: Callable[[Settings], ColumnElement[bool]],
) -> int:
    """Send each row's messages; then mark the rows sent whole (those still stale) as fresh.

    Sent first, then marked: a mark that fails only means one more duplicate later. A row
    not (or partly) sent while the broker is down is still stale: the next sweep sends what
    is left of it. Returns how many rows were sent."""
    sent: list[int] = []
    try:
        with celery_app.producer_or_acquire() as producer:
            for row_id, messages in plans:
                for task, args, queue in messages:
                    celery_app.send_task(task, args=args, queue=queue, producer=producer)
                sent.append(row_id)
    except (KombuError, OSError) as err:
        log.warning(
            "broker unavailable: sweeper sent %d of %d %s: %s", len(sent), len(plans), what, err
        )
    if sent:
        with session_scope(settings.database_url) as db:
            db.execute(
                update(model)
                .where(model.id.in_(sent), stale(settings))
                .values(updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        log.info("sweeper re-enqueued %d %s", len(sent), what)
    return len(sent)
