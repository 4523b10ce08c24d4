"""Exercise authoring: validate and dry-run, create, update (a new version each change)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import current_app, request, url_for
from pydantic import Field

from exercises.spec import ExerciseSpec
from service.access import INSTRUCTOR, STAFF, require_course
from service.api.blueprint import bp, current_user, heavy_limit, rate_key
from service.api.models import Out
from service.api.openapi import FieldProblem, operation
from service.authoring import (
    check_slug_free,
    course_exercise,
    course_exercises,
    get_dry_run,
    read_exercise_body,
    require_passed,
    save_version,
    start_dry_run,
    validate_exercise,
    wait_for,
)
from service.background import background
from service.data.models import Course, Exercise, ExerciseDryRun, JobStatus, User
from service.errors import ValidationFailed
from service.security import limiter
from service.webdb import get_db

TAG = ["authoring"]
DEFAULT_WAIT_SECONDS = 10.0

EXERCISE_BODY = {
    "required": True,
    "description": "An exercise in the format of the built-in files: YAML, or the same as JSON.",
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/ExerciseSpec"}},
    },
}


class VersionOut(Out):
    """One version of an exercise."""

    number: int
    content_hash: str
    created_at: datetime
    author_id: int | None


class CourseExerciseOut(Out):
    """An exercise authored in a course, with its versions and current content."""

    slug: str
    title: str
    kind: str
    course_id: int
    versions: list[VersionOut]
    spec: dict[str, Any] = Field(description="The current version, as JSON.")


class CourseExerciseList(Out):
    """A course's own exercises."""

    items: list[CourseExerciseOut]


class DryRunOut(Out):
    """A dry run: the worked example's reference and graph, or the problems found."""

    id: int
    status: Literal["queued", "running", "done", "failed"]
    content_hash: str
    problems: list[FieldProblem]
    result: dict[str, Any] | None = Field(
        description="worked_example, reference (autograd), graph, and the learner's view."
    )
    created_at: datetime
    finished_at: datetime | None


class ExerciseSaved(Out):
    """What saving did."""

    exercise: str
    version: int
    outcome: Literal["created", "updated", "unchanged"]
    dry_run: DryRunOut


def dry_run_out(row: ExerciseDryRun) -> DryRunOut:
    """A dry run as the API shows it."""
    return DryRunOut(
        id=row.id,
        status=row.status.value,
        content_hash=row.content_hash,
        problems=[FieldProblem(**p) for p in row.problems or []],
        result=row.result if row.status == JobStatus.DONE else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def exercise_out(exercise: Exercise) -> CourseExerciseOut:
    """A course exercise with its versions."""
    return CourseExerciseOut(
        slug=exercise.slug,
        title=exercise.title,
        kind=exercise.kind,
        course_id=exercise.course_id or 0,
        versions=[
            VersionOut(
                number=v.number,
                content_hash=v.content_hash,
                created_at=v.created_at,
                author_id=v.author_id,
            )
            for v in exercise.versions
        ],
        spec=exercise.current_version.spec,
    )


def _wait_seconds() -> float:
    seconds: float = current_app.config.get("DRY_RUN_WAIT_SECONDS", DEFAULT_WAIT_SECONDS)
    return seconds


def _body_spec() -> ExerciseSpec:
    """The request body as a validated exercise (422 listing every problem)."""
    return validate_exercise(read_exercise_body(request.mimetype, request.get_data(cache=True)))


def _dry_run(course: Course, user: User, spec: ExerciseSpec) -> ExerciseDryRun:
    """The spec's dry run once finished (or as it is after the wait)."""
    db = get_db()
    row = start_dry_run(db, background(), course, user, spec)
    return wait_for(db, row, _wait_seconds())


@bp.get("/courses/<int:course_id>/exercises")
@operation(tags=TAG, resp=CourseExerciseList)
def course_exercise_list(course_id: int) -> CourseExerciseList:
    """The exercises authored in the course (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    return CourseExerciseList(items=[exercise_out(e) for e in course_exercises(db, course)])


@bp.get("/courses/<int:course_id>/exercises/<slug>")
@operation(tags=TAG, resp=CourseExerciseOut)
def course_exercise_detail(course_id: int, slug: str) -> CourseExerciseOut:
    """One of the course's exercises: its versions and current content (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    return exercise_out(course_exercise(db, course, slug))


@bp.post("/courses/<int:course_id>/exercises/dry-run")
@limiter.limit(heavy_limit, key_func=rate_key, override_defaults=False)
@operation(
    tags=TAG,
    resp=DryRunOut,
    ok=200,
    also_ok=(202,),
    request_body=EXERCISE_BODY,
    schemas=(ExerciseSpec,),
    response_headers={202: {"Location": {"$ref": "#/components/headers/Location"}}},
)
def exercise_dry_run(course_id: int) -> tuple[DryRunOut, int, dict[str, str]]:
    """Validate an exercise and dry-run it in a worker; nothing is saved (instructors).

    200 with the worked example's reference and graph (or the problems found) when the
    worker finishes within a few seconds; otherwise 202 with the dry run's Location.
    """
    db, user = get_db(), current_user()
    course, _ = require_course(db, user, course_id, INSTRUCTOR)
    row = _dry_run(course, user, _body_spec())
    location = url_for("api.exercise_dry_run_detail", course_id=course.id, dry_run_id=row.id)
    finished = row.status in (JobStatus.DONE, JobStatus.FAILED)
    return dry_run_out(row), 200 if finished else 202, {"Location": location}


@bp.get("/courses/<int:course_id>/exercise-dry-runs/<int:dry_run_id>")
@operation(tags=TAG, resp=DryRunOut)
def exercise_dry_run_detail(course_id: int, dry_run_id: int) -> DryRunOut:
    """A dry run's status and result (instructors)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    return dry_run_out(get_dry_run(db, course, dry_run_id))


@bp.post("/courses/<int:course_id>/exercises")
@limiter.limit(heavy_limit, key_func=rate_key, override_defaults=False)
@operation(
    tags=TAG,
    ok=201,
    resp=ExerciseSaved,
    creates=True,
    errors=(409, 503),
    request_body=EXERCISE_BODY,
    schemas=(ExerciseSpec,),
)
def course_exercise_create(course_id: int) -> tuple[ExerciseSaved, int, dict[str, str]]:
    """Create an exercise in the course once its dry run passes (instructors).

    A failing dry run is a 422 listing its problems and saves nothing; one still running is
    a 503 with Retry-After (the same request again finds it).
    """
    db, user = get_db(), current_user()
    course, _ = require_course(db, user, course_id, INSTRUCTOR)
    spec = _body_spec()
    check_slug_free(db, course, spec.slug)
    row = _dry_run(course, user, spec)
    require_passed(row)
    version, what = save_version(db, course, user, spec)
    db.commit()
    location = url_for("api.course_exercise_detail", course_id=course.id, slug=spec.slug)
    out = ExerciseSaved(
        exercise=spec.slug,
        version=version.number,
        outcome=what,
        dry_run=dry_run_out(row),
    )
    return out, 201, {"Location": location}


@bp.put("/courses/<int:course_id>/exercises/<slug>")
@limiter.limit(heavy_limit, key_func=rate_key, override_defaults=False)
@operation(
    tags=TAG,
    resp=ExerciseSaved,
    errors=(409, 503),
    request_body=EXERCISE_BODY,
    schemas=(ExerciseSpec,),
)
def course_exercise_update(course_id: int, slug: str) -> ExerciseSaved:
    """Change an exercise of the course: a new version once its dry run passes (instructors).

    Submissions keep the version they answered; content identical to an existing version
    is `unchanged` and answers that version.
    """
    db, user = get_db(), current_user()
    course, _ = require_course(db, user, course_id, INSTRUCTOR)
    course_exercise(db, course, slug)
    spec = _body_spec()
    if spec.slug != slug:
        raise ValidationFailed(
            f"the body's slug {spec.slug!r} is not {slug!r}", errors=[{"field": "slug"}]
        )
    row = _dry_run(course, user, spec)
    require_passed(row)
    version, what = save_version(db, course, user, spec)
    db.commit()
    return ExerciseSaved(
        exercise=spec.slug,
        version=version.number,
        outcome=what,
        dry_run=dry_run_out(row),
    )
