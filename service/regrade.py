"""Regrade jobs: one submission, every submission of an exercise version, or an assignment,
graded again by workers with progress on the job row (the worker side: worker/regrading.py)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from service.background import REGRADE_TASK, Background
from service.catalog import get_exercise
from service.data.models import (
    Assignment,
    Course,
    ExerciseVersion,
    JobStatus,
    RegradeJob,
    Submission,
    SubmissionStatus,
    SubmissionVerdict,
    User,
    utcnow,
)
from service.errors import NotFound, ValidationFailed

BATCH = 20
SCOPES = ("submission", "exercise_version", "assignment")
FINAL = (SubmissionStatus.GRADED, SubmissionStatus.FAILED)


def _in_course(course: Course) -> ColumnElement[bool]:
    """Submissions to the course's assignments."""
    return Submission.assignment_id.in_(
        select(Assignment.id).where(Assignment.course_id == course.id)
    )


def target_ids(
    db: Session,
    course: Course,
    *,
    submission_id: int | None = None,
    exercise: str | None = None,
    version: int | None = None,
    assignment_id: int | None = None,
) -> tuple[str, dict[str, object], list[tuple[int, str]]]:
    """(scope, target, [(submission id, queue)]) of a regrade within the course."""
    given = [x is not None for x in (submission_id, exercise, assignment_id)]
    if sum(given) != 1:
        raise ValidationFailed(
            "give exactly one of submission_id, exercise (with version) or assignment_id",
            errors=[{"field": "body", "message": "exactly one target"}],
        )
    target: dict[str, object]
    query = select(Submission.id, Submission.queue).where(
        _in_course(course), Submission.status.in_(FINAL)
    )
    if submission_id is not None:
        found = db.scalar(
            select(Submission.id).where(Submission.id == submission_id, _in_course(course))
        )
        if found is None:
            raise NotFound(f"no submission {submission_id} in course {course.code}")
        scope, target = "submission", {"submission_id": submission_id}
        query = query.where(Submission.id == submission_id)
    elif exercise is not None:
        ex = get_exercise(db, exercise)
        if ex.course_id not in (None, course.id):
            raise NotFound(f"no exercise with slug {exercise!r}")
        number = version if version is not None else ex.current_version.number
        row = next((v for v in ex.versions if v.number == number), None)
        if row is None:
            raise NotFound(f"exercise {exercise} has no version {number}")
        scope, target = "exercise_version", {"exercise": exercise, "version": number}
        query = query.where(Submission.exercise_version_id == row.id)
    else:
        assignment = db.get(Assignment, assignment_id)
        if assignment is None or assignment.course_id != course.id:
            raise NotFound(f"no assignment {assignment_id} in course {course.code}")
        scope, target = "assignment", {"assignment_id": assignment_id}
        query = query.where(Submission.assignment_id == assignment_id)
    rows: list[tuple[int, str]] = [
        (r.id, r.queue) for r in db.execute(query.order_by(Submission.id))
    ]
    return scope, target, rows


def start_regrade(
    db: Session,
    runner: Background,
    course: Course,
    user: User,
    scope: str,
    target: dict[str, object],
    rows: list[tuple[int, str]],
    against: str = "same",
) -> RegradeJob:
    """Record the job, commit, then hand its submissions to workers in batches per queue."""
    job = RegradeJob(
        course_id=course.id,
        requested_by_id=user.id,
        scope=scope,
        target=target,
        against=against,
        total=len(rows),
        status=JobStatus.DONE if not rows else JobStatus.QUEUED,
        finished_at=utcnow() if not rows else None,
    )
    db.add(job)
    db.commit()
    by_queue: dict[str, list[int]] = defaultdict(list)
    for submission_id, queue in rows:
        by_queue[queue].append(submission_id)
    for queue, ids in by_queue.items():
        for start in range(0, len(ids), BATCH):
            runner.send(REGRADE_TASK, [job.id, ids[start : start + BATCH]], queue)
    db.refresh(job)
    return job


def get_job(db: Session, job_id: int) -> RegradeJob:
    """The regrade job, or NotFound."""
    job = db.get(RegradeJob, job_id)
    if job is None:
        raise NotFound(f"no regrade job {job_id}")
    return job


def jobs_of(db: Session, course: Course, limit: int = 100) -> list[RegradeJob]:
    """The course's newest regrade jobs first."""
    return list(
        db.scalars(
            select(RegradeJob)
            .where(RegradeJob.course_id == course.id)
            .order_by(RegradeJob.id.desc())
            .limit(limit)
        )
    )


def history(db: Session, submission: Submission) -> list[SubmissionVerdict]:
    """Every recorded grading of the submission, oldest first (empty until its first regrade)."""
    return list(
        db.scalars(
            select(SubmissionVerdict)
            .where(SubmissionVerdict.submission_id == submission.id)
            .order_by(SubmissionVerdict.number)
        )
    )


def version_number(db: Session, version_id: int) -> int:
    """The number of an exercise version by its id."""
    version = db.get(ExerciseVersion, version_id)
    return version.number if version is not None else 0
