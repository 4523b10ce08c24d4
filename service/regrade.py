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
LOOKUP = 500  # ids per query when the sweeper looks up what is left of a job
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
    """Record the job with its submissions, commit, then hand them to workers in batches per
    queue. A batch the broker refuses (or loses) is the sweeper's: the job row says what is
    left to do, and sending a batch again regrades nothing twice."""
    now = utcnow()
    job = RegradeJob(
        course_id=course.id,
        requested_by_id=user.id,
        scope=scope,
        target=target,
        against=against,
        total=len(rows),
        submission_ids=[submission_id for submission_id, _ in rows],
        status=JobStatus.DONE if not rows else JobStatus.QUEUED,
        finished_at=now if not rows else None,
        updated_at=now,
    )
    db.add(job)
    db.commit()
    for queue, ids in batches(rows):
        runner.send(REGRADE_TASK, [job.id, ids], queue)
    db.refresh(job)
    return job


def batches(rows: list[tuple[int, str]]) -> list[tuple[str, list[int]]]:
    """(queue, submission ids) of at most BATCH ids each, in the order of `rows`."""
    by_queue: dict[str, list[int]] = defaultdict(list)
    for submission_id, queue in rows:
        by_queue[queue].append(submission_id)
    return [
        (queue, ids[start : start + BATCH])
        for queue, ids in by_queue.items()
        for start in range(0, len(ids), BATCH)
    ]


def unsettled(db: Session, job: RegradeJob) -> list[tuple[int, str]]:
    """[(submission id, queue)] of the job's submissions not yet regraded for it (nor passed
    over): what a re-send carries. Submissions deleted since are left out."""
    settled = set(
        db.scalars(
            select(SubmissionVerdict.submission_id).where(
                SubmissionVerdict.regrade_job_id == job.id
            )
        )
    )
    settled.update(job.passed_over or ())
    todo = [i for i in job.submission_ids or () if i not in settled]
    found: dict[int, str] = {}
    for start in range(0, len(todo), LOOKUP):
        chunk = todo[start : start + LOOKUP]
        query = select(Submission.id, Submission.queue).where(Submission.id.in_(chunk))
        found.update((row.id, row.queue) for row in db.execute(query))
    return [(i, found[i]) for i in todo if i in found]


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
