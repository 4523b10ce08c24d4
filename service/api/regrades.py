"""Regrade jobs: one submission, an exercise version, or an assignment, with progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import url_for
from pydantic import Field

from service.access import INSTRUCTOR, STAFF, require_course
from service.api.blueprint import bp, current_user, heavy_limit, rate_key
from service.api.models import Id, In, Out, Slug
from service.api.openapi import operation
from service.background import background
from service.data.models import RegradeJob
from service.regrade import get_job, jobs_of, start_regrade, target_ids
from service.security import limiter
from service.webdb import get_db

TAG = ["regrades"]


class RegradeIn(In):
    """What to regrade: exactly one of submission_id, exercise (+ version), assignment_id."""

    submission_id: Id | None = None
    exercise: Slug | None = None
    version: int | None = Field(None, ge=1, description="Default: the exercise's newest.")
    assignment_id: Id | None = None
    against: Literal["same", "latest"] = Field(
        "same",
        description="Grade against each submission's own version, or the exercise's newest.",
    )


class RegradeJobOut(Out):
    """A regrade job and its progress."""

    id: int
    course_id: int
    scope: Literal["submission", "exercise_version", "assignment"]
    target: dict[str, Any]
    against: Literal["same", "latest"]
    status: Literal["queued", "running", "done", "failed"]
    total: int
    done: int
    failed: int
    changed: int = Field(description="Submissions whose verdict changed.")
    progress: float = Field(description="0 to 1.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RegradeJobList(Out):
    """A course's regrade jobs, newest first."""

    items: list[RegradeJobOut]


def job_out(job: RegradeJob) -> RegradeJobOut:
    """A job as the API shows it."""
    finished = job.done + job.failed
    return RegradeJobOut(
        id=job.id,
        course_id=job.course_id,
        scope=job.scope,  # type: ignore[arg-type]
        target=job.target,
        against=job.against,  # type: ignore[arg-type]
        status=job.status.value,
        total=job.total,
        done=job.done,
        failed=job.failed,
        changed=job.changed,
        progress=finished / job.total if job.total else 1.0,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@bp.post("/courses/<int:course_id>/regrade-jobs")
@limiter.limit(heavy_limit, key_func=rate_key, override_defaults=False)
@operation(tags=TAG, ok=202, resp=RegradeJobOut, creates=True)
def regrade_create(course_id: int, json: RegradeIn) -> tuple[RegradeJobOut, int, dict[str, str]]:
    """Regrade in the background (instructors); old verdicts are kept in each history."""
    db, user = get_db(), current_user()
    course, _ = require_course(db, user, course_id, INSTRUCTOR)
    scope, target, rows = target_ids(
        db,
        course,
        submission_id=json.submission_id,
        exercise=json.exercise,
        version=json.version,
        assignment_id=json.assignment_id,
    )
    job = start_regrade(db, background(), course, user, scope, target, rows, json.against)
    location = url_for("api.regrade_detail", course_id=course.id, job_id=job.id)
    return job_out(job), 202, {"Location": location}


@bp.get("/courses/<int:course_id>/regrade-jobs")
@operation(tags=TAG, resp=RegradeJobList)
def regrade_list(course_id: int) -> RegradeJobList:
    """The course's regrade jobs, newest first (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    return RegradeJobList(items=[job_out(j) for j in jobs_of(db, course)])


@bp.get("/courses/<int:course_id>/regrade-jobs/<int:job_id>")
@operation(tags=TAG, resp=RegradeJobOut)
def regrade_detail(course_id: int, job_id: int) -> RegradeJobOut:
    """A regrade job's progress (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    job = get_job(db, job_id)
    if job.course_id != course.id:
        from service.errors import NotFound

        raise NotFound(f"no regrade job {job_id} in course {course.code}")
    return job_out(job)
