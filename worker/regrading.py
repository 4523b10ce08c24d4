"""Regrading: a submission graded again with a fresh reference, its old verdict kept.

Every regrade appends to `submission_verdicts` (the first time also the original
verdict), then replaces the submission's current verdict, all in one transaction.
Like first grading, it is idempotent: a regrade job re-delivered (by the broker, or sent
again by the sweeper) regrades nothing twice, and it never touches a submission that is
still queued or running (its first grading will use the current code).

Each submission of a job is settled once, in one transaction that holds the job's row
(no other settlement of the job can interleave) and that writes, together:
its record for the job (a history row, unique per submission and job; or, for a submission
passed over, its id in the job's `passed_over`), the job's counters and progress time, and,
when it was the last one, the job's final status. A delivery that finds the record finds it
under that lock, so it counts nothing; the job turns `done` exactly once.

Each try of a submission is counted (`regrade_attempts`, under the same lock) before anything
of it is done; one that has had MAX_REGRADE_ATTEMPTS tries without a result (it killed its
worker each time, or met a sandbox fault) is given up: settled `failed`, its old verdict kept.
A defect (an exception other than a database or sandbox fault) settles it `failed` at once.
So a job ends, unless the database stays unreachable: tries it cannot record are not counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from exercises.model import Verdict
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.catalog import spec_of
from service.data.models import (
    ExerciseVersion,
    JobStatus,
    RegradeAttempt,
    RegradeJob,
    Submission,
    SubmissionStatus,
    SubmissionVerdict,
    Variant,
    utcnow,
)
from service.data.session import session_scope
from service.variants import as_domain, get_or_create_variant
from worker.grading import MAX_GRADING_ATTEMPTS, judge
from worker.sandbox.errors import SandboxError

log = logging.getLogger(__name__)

FINAL = (SubmissionStatus.GRADED, SubmissionStatus.FAILED)
OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)
WRITE_RETRIES = 3
# Tries of one submission's regrade for a job without a result before it is given up (settled
# `failed`): as for first grading, one that kills its worker (re-delivered at once) or meets
# an infrastructure fault (retried by the task, then sent again by the sweeper) every time
# must not come back forever. A database outage counts at most the try it interrupted: a
# try is committed before its work, and none can be while the database is down.
MAX_REGRADE_ATTEMPTS = MAX_GRADING_ATTEMPTS


@dataclass(frozen=True)
class Target:
    """What one submission is regraded against."""

    submission_id: int
    status: SubmissionStatus
    score: float | None
    verdict: dict[str, Any] | None
    answer: dict[str, Any]
    version_id: int
    variant_id: int
    spec: ExerciseSpec
    variant: Variant


def regrade_submissions(
    database_url: str, job_id: int, submission_ids: list[int]
) -> dict[str, int]:
    """Regrade a batch of a job's submissions; returns what happened, by outcome."""
    counts = {"changed": 0, "unchanged": 0, "failed": 0, "skipped": 0}
    if not _start(database_url, job_id):
        counts["skipped"] = len(submission_ids)  # a late copy of a finished (or deleted) job
        return counts
    for submission_id in submission_ids:
        counts[regrade_one(database_url, job_id, submission_id)] += 1
    return counts


def regrade_one(database_url: str, job_id: int, submission_id: int) -> str:
    """Regrade one submission for a job: "changed", "unchanged", "failed" or "skipped"."""
    with session_scope(database_url) as db:
        job = db.get(RegradeJob, job_id)
        if job is None or _settled(db, job_id, submission_id, job.passed_over):
            return "skipped"
        against = job.against
    given_up = _begin(database_url, job_id, submission_id)
    if given_up is not None:
        return given_up
    target = None
    try:
        with session_scope(database_url) as db:
            target = _target(db, submission_id, against)
        if target is None:  # queued or running (graded afresh anyway), or gone: passed over
            with session_scope(database_url) as db:
                return _settle(db, job_id, submission_id, None, "unchanged")
        reference, verdict = _judge(target)
    except (DBAPIError, SandboxError):
        raise  # infrastructure: the task is retried
    except Exception as err:
        # A defect in regrading this one submission (its exercise, its variant, its grader):
        # keep its old verdict, record the failed attempt in its history and the job's count
        # (with the traceback in the log), and go on with the rest of the job.
        log.exception("regrading submission %s for job %s failed", submission_id, job_id)
        error = f"regrade failed: {err}"
        return _record(database_url, job_id, submission_id, target=target, error=error)
    return _record(
        database_url, job_id, submission_id, target=target, reference=reference, verdict=verdict
    )


def _begin(database_url: str, job_id: int, submission_id: int) -> str | None:
    """Count a try of the submission's regrade for the job before anything of it is done
    (under the job's lock, committed). None: go on. When MAX_REGRADE_ATTEMPTS tries ended
    without a result, give it up instead: settled `failed` with its old verdict kept, and
    returns "failed" (or "skipped", if another delivery settled it first)."""
    with session_scope(database_url) as db:
        if not _unsettled_under_lock(db, job_id, submission_id):
            return "skipped"
        tries = db.get(RegradeAttempt, (job_id, submission_id))
        if tries is None:
            db.add(RegradeAttempt(job_id=job_id, submission_id=submission_id, attempts=1))
            return None
        if tries.attempts < MAX_REGRADE_ATTEMPTS:
            tries.attempts += 1
            return None
    error = (
        f"regrade given up after {MAX_REGRADE_ATTEMPTS} tries without a result "
        "(each lost its worker or met an infrastructure fault)"
    )
    outcome = _record(database_url, job_id, submission_id, error=error)
    if outcome == "failed":
        log.error(
            "gave up regrading submission %s for job %s after %d tries",
            submission_id,
            job_id,
            MAX_REGRADE_ATTEMPTS,
        )
    return outcome


def _already(db: Session, job_id: int, submission_id: int) -> bool:
    return (
        db.scalar(
            select(SubmissionVerdict.id).where(
                SubmissionVerdict.submission_id == submission_id,
                SubmissionVerdict.regrade_job_id == job_id,
            )
        )
        is not None
    )


def _settled(db: Session, job_id: int, submission_id: int, passed: list[int] | None) -> bool:
    """Whether the submission was regraded (or passed over) for the job already."""
    return submission_id in (passed or ()) or _already(db, job_id, submission_id)


def _hold(db: Session, job_id: int) -> bool:
    """Lock the job's row for this transaction (a no-op UPDATE: a row lock on PostgreSQL, the
    write lock on SQLite); False if the job is gone. Every settlement of a job's submissions
    takes it first, so checking the record and writing it cannot interleave with another."""
    held = db.execute(
        update(RegradeJob)
        .where(RegradeJob.id == job_id)
        .values(updated_at=RegradeJob.updated_at)
        .execution_options(synchronize_session=False)
    )
    return bool(held.rowcount)  # type: ignore[attr-defined]


def _settle(
    db: Session,
    job_id: int,
    submission_id: int,
    record: SubmissionVerdict | None,
    outcome: str,
) -> str:
    """Settle one submission of the job once, in the caller's transaction: under the job's
    lock, unless it is settled already, enter `record` (a history row; None: pass it over)
    and count `outcome`. Returns `outcome`, or "skipped"."""
    if not _unsettled_under_lock(db, job_id, submission_id):
        return "skipped"
    return _enter(db, job_id, submission_id, record, outcome)


def _unsettled_under_lock(db: Session, job_id: int, submission_id: int) -> bool:
    """Take the job's lock; then whether the submission is still to settle for it (read
    afresh: under the lock, what other settlements committed). False if the job is gone."""
    if not _hold(db, job_id):
        return False
    passed = db.scalar(select(RegradeJob.passed_over).where(RegradeJob.id == job_id))
    return not _settled(db, job_id, submission_id, passed)


def _enter(
    db: Session,
    job_id: int,
    submission_id: int,
    record: SubmissionVerdict | None,
    outcome: str,
) -> str:
    """Record a submission as settled for the job and count it (the job's lock is held and
    the submission was found unsettled under it)."""
    if record is None:
        passed = db.scalar(select(RegradeJob.passed_over).where(RegradeJob.id == job_id))
        db.execute(
            update(RegradeJob)
            .where(RegradeJob.id == job_id)
            .values(passed_over=[*(passed or ()), submission_id])
            .execution_options(synchronize_session=False)
        )
    else:
        db.add(record)
        db.flush()  # the unique (submission, job) row: a second one could not commit anyway
    db.execute(
        delete(RegradeAttempt)
        .where(RegradeAttempt.job_id == job_id, RegradeAttempt.submission_id == submission_id)
        .execution_options(synchronize_session=False)
    )
    _count(db, job_id, outcome)
    return outcome


def _target(db: Session, submission_id: int, against: str) -> Target | None:
    submission = db.get(Submission, submission_id)
    if submission is None or submission.status not in FINAL:
        return None
    version = db.get(ExerciseVersion, submission.exercise_version_id)
    variant = db.get(Variant, submission.variant_id)
    if version is None or variant is None:
        raise LookupError(f"submission {submission_id} refers to a missing version or variant")
    if against == "latest":
        newest = db.scalar(
            select(ExerciseVersion)
            .where(ExerciseVersion.exercise_id == version.exercise_id)
            .order_by(ExerciseVersion.number.desc())
            .limit(1)
        )
        if newest is not None and newest.id != version.id:
            version = newest
            variant = get_or_create_variant(db, submission.user_id, version, variant.label)
            db.flush()
    return Target(
        submission_id=submission.id,
        status=submission.status,
        score=submission.score,
        verdict=submission.verdict,
        answer=dict(submission.answer),
        version_id=version.id,
        variant_id=variant.id,
        spec=spec_of(version),  # versions are immutable: parsed once per process
        variant=variant,
    )


def _judge(target: Target) -> tuple[dict[str, Any], Verdict]:
    """Grade with a reference computed afresh (a regrade is how a fixed grader reaches old work)."""
    spec, domain = target.spec, as_domain(target.variant)
    reference = get_kind(spec.kind).compute_reference(spec, domain)
    return reference, judge(spec, domain, reference, target.answer)


def _record(
    database_url: str,
    job_id: int,
    submission_id: int,
    *,
    target: Target | None = None,
    reference: dict[str, Any] | None = None,
    verdict: Verdict | None = None,
    error: str | None = None,
) -> str:
    """Settle the submission for the job with `verdict` (judged against `target`, whose
    variant's reference is stored too), or as failed with `error` (its old verdict kept)."""
    for attempt in range(WRITE_RETRIES):
        try:
            with session_scope(database_url) as db:
                if reference is not None and target is not None:
                    db.execute(
                        update(Variant)
                        .where(Variant.id == target.variant_id)
                        .values(reference=reference)
                    )
                return _write(db, job_id, submission_id, target, verdict, error)
        except IntegrityError:
            # Another regrade of this submission took the same history number: go again.
            if attempt == WRITE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _write(
    db: Session,
    job_id: int,
    submission_id: int,
    target: Target | None,
    verdict: Verdict | None,
    error: str | None,
) -> str:
    if not _unsettled_under_lock(db, job_id, submission_id):
        return "skipped"
    submission = db.get(Submission, submission_id)
    if submission is None or submission.status not in FINAL:
        return _enter(db, job_id, submission_id, None, "unchanged")
    number = db.scalar(
        select(func.max(SubmissionVerdict.number)).where(
            SubmissionVerdict.submission_id == submission.id
        )
    )
    if number is None:
        db.add(_snapshot(submission, 1))
        number = 1
    now = utcnow()
    data = verdict.to_dict() if verdict is not None else None
    record = SubmissionVerdict(
        submission_id=submission.id,
        number=number + 1,
        regrade_job_id=job_id,
        exercise_version_id=target.version_id if target else submission.exercise_version_id,
        status=SubmissionStatus.GRADED if verdict is not None else SubmissionStatus.FAILED,
        verdict=data,
        score=verdict.score if verdict is not None else None,
        error=error,
        graded_at=now,
    )
    if verdict is None or target is None:
        return _enter(db, job_id, submission.id, record, "failed")
    changed = _differs(submission, verdict)
    submission.verdict = data
    submission.score = verdict.score
    submission.status = SubmissionStatus.GRADED
    submission.error = None
    submission.graded_at = now
    submission.updated_at = now
    submission.exercise_version_id = target.version_id
    submission.variant_id = target.variant_id
    db.flush()
    return _enter(db, job_id, submission.id, record, "changed" if changed else "unchanged")


def _snapshot(submission: Submission, number: int) -> SubmissionVerdict:
    return SubmissionVerdict(
        submission_id=submission.id,
        number=number,
        regrade_job_id=None,
        exercise_version_id=submission.exercise_version_id,
        status=submission.status,
        verdict=submission.verdict,
        score=submission.score,
        error=submission.error,
        graded_at=submission.graded_at,
    )


def _differs(submission: Submission, verdict: Verdict) -> bool:
    if submission.status != SubmissionStatus.GRADED or submission.score != verdict.score:
        return True
    old = {p["part"]: p["correct"] for p in (submission.verdict or {}).get("parts", [])}
    return old != {p.part: p.correct for p in verdict.parts}


def _count(db: Session, job_id: int, outcome: str) -> None:
    """Count a settled submission, and finish the job if it was the last (in the caller's
    transaction, under the job's lock: exactly one settlement finishes it)."""
    now = utcnow()
    values: dict[str, Any] = {"updated_at": now}
    if outcome == "failed":
        values["failed"] = RegradeJob.failed + 1
    else:
        values["done"] = RegradeJob.done + 1
    if outcome == "changed":
        values["changed"] = RegradeJob.changed + 1
    db.execute(
        update(RegradeJob)
        .where(RegradeJob.id == job_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.execute(
        update(RegradeJob)
        .where(
            RegradeJob.id == job_id,
            RegradeJob.status.in_(OPEN),
            RegradeJob.done + RegradeJob.failed >= RegradeJob.total,
        )
        .values(status=JobStatus.DONE, finished_at=now)
        .execution_options(synchronize_session=False)
    )


def _start(database_url: str, job_id: int) -> bool:
    """Mark the job running (once); False if it is finished or gone: nothing left to do."""
    now = utcnow()
    with session_scope(database_url) as db:
        db.execute(
            update(RegradeJob)
            .where(RegradeJob.id == job_id, RegradeJob.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, started_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        status = db.scalar(select(RegradeJob.status).where(RegradeJob.id == job_id))
    return status in OPEN
