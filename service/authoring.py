"""Exercise authoring over the API: the same format as the built-in files (YAML or its JSON
form), validated here without torch, dry-run by a worker, and saved only after that passes.
Each change is a new version; submissions keep the version they answered."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any, Literal

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from exercises.catalog import parse_exercise
from exercises.errors import ExerciseFormatError
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.background import DRY_RUN_TASK, Background
from service.catalog import upsert_exercise
from service.data.models import (
    Course,
    Exercise,
    ExerciseDryRun,
    ExerciseVersion,
    JobStatus,
    User,
    utcnow,
)
from service.errors import AppError, BadRequest, Conflict, NotFound, ValidationFailed

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
JSON_TYPES = frozenset({"application/json"})
REUSE_DRY_RUN_FOR = timedelta(hours=24)
POLL_SECONDS = 0.05


class UnsupportedMediaType(AppError):
    """The body is in a format this endpoint does not read."""

    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class DryRunPending(AppError):
    """The worker has not finished the dry run yet; the same request later will find it."""

    status = 503
    code = "dry-run-pending"
    title = "Dry run still running"
    retry_after = 2


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: a file of nested aliases expands exponentially."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse an alias where a node is expected."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else 0
            raise yaml.YAMLError(f"line {line}: YAML aliases (*name) are not allowed")
        return super().compose_node(parent, index)


def read_exercise_body(mimetype: str, data: bytes) -> dict[str, Any]:
    """The exercise data of a request body: YAML (as in the built-in files) or JSON."""
    if mimetype in YAML_TYPES:
        try:
            loaded = yaml.load(data.decode("utf-8"), Loader=_NoAliases)
        except UnicodeDecodeError as err:
            raise BadRequest(f"the YAML is not UTF-8 text (byte {err.start})") from err
        except yaml.YAMLError as err:
            raise BadRequest(f"the body is not valid YAML: {err}") from err
        except RecursionError as err:
            raise BadRequest("the body's YAML is nested too deeply") from err
    elif mimetype in JSON_TYPES:
        try:
            loaded = json.loads(data, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as err:
            raise BadRequest(f"the body is not valid JSON: {err}") from err
        except RecursionError as err:
            raise BadRequest("the body's JSON is nested too deeply") from err
    else:
        raise UnsupportedMediaType(
            "send the exercise as application/yaml (the built-in file format) or application/json"
        )
    if not isinstance(loaded, dict):
        raise ValidationFailed(
            "an exercise must be a mapping of fields", errors=[{"field": "(file)"}]
        )
    return loaded


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def validate_exercise(data: dict[str, Any]) -> ExerciseSpec:
    """The spec, or ValidationFailed listing every problem with its field (torch-free)."""
    try:
        return parse_exercise(data)
    except ExerciseFormatError as err:
        problems = [{"field": f, "message": m} for f, m in err.problems]
        first = problems[0] if problems else {"field": "(file)", "message": "invalid"}
        raise ValidationFailed(
            f"the exercise has {len(problems)} problem(s); first: {first['field']}: "
            f"{first['message']}",
            errors=problems,
        ) from err


def start_dry_run(
    db: Session, runner: Background, course: Course, user: User, spec: ExerciseSpec
) -> ExerciseDryRun:
    """A dry run of this exact content: a recent successful one, else a new one for a worker."""
    content_hash = spec.content_hash()
    recent = db.scalar(
        select(ExerciseDryRun)
        .where(
            ExerciseDryRun.course_id == course.id,
            ExerciseDryRun.content_hash == content_hash,
            ExerciseDryRun.status.in_([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE]),
            ExerciseDryRun.created_at > utcnow() - REUSE_DRY_RUN_FOR,
        )
        .order_by(ExerciseDryRun.id.desc())
        .limit(1)
    )
    if recent is not None:
        return recent
    row = ExerciseDryRun(
        course_id=course.id,
        requested_by_id=user.id,
        content_hash=content_hash,
        spec=spec.model_dump(mode="json"),
    )
    db.add(row)
    db.commit()
    queue = "code" if get_kind(spec.kind).answer_type == "code" else "numeric"
    runner.send(DRY_RUN_TASK, [row.id], queue)
    return row


def wait_for(db: Session, row: ExerciseDryRun, seconds: float) -> ExerciseDryRun:
    """The dry run once finished, or as it is after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        db.refresh(row)
        if row.status in (JobStatus.DONE, JobStatus.FAILED) or time.monotonic() >= deadline:
            return row
        db.rollback()  # end the read transaction so the next look sees the worker's commit
        time.sleep(POLL_SECONDS)


def get_dry_run(db: Session, course: Course, dry_run_id: int) -> ExerciseDryRun:
    """A dry run of this course, or NotFound."""
    row = db.get(ExerciseDryRun, dry_run_id)
    if row is None or row.course_id != course.id:
        raise NotFound(f"no dry run {dry_run_id} in course {course.code}")
    return row


def require_passed(row: ExerciseDryRun) -> None:
    """Raise unless the dry run finished without problems."""
    if row.status == JobStatus.FAILED:
        problems = row.problems or []
        first = problems[0] if problems else {"field": "(dry run)", "message": "failed"}
        raise ValidationFailed(
            f"the dry run found {len(problems)} problem(s); first: {first['field']}: "
            f"{first['message']}",
            errors=problems,
            dry_run_id=row.id,
        )
    if row.status != JobStatus.DONE:
        raise DryRunPending(
            f"dry run {row.id} has not finished; send the same request again shortly",
            dry_run_id=row.id,
        )


def course_exercise(db: Session, course: Course, slug: str) -> Exercise:
    """An exercise authored in this course, or NotFound."""
    exercise = db.scalar(select(Exercise).where(Exercise.slug == slug))
    if exercise is None or exercise.course_id != course.id:
        raise NotFound(f"course {course.code} has no exercise {slug!r}")
    return exercise


def course_exercises(db: Session, course: Course) -> list[Exercise]:
    """The exercises authored in this course, by slug."""
    return list(
        db.scalars(select(Exercise).where(Exercise.course_id == course.id).order_by(Exercise.slug))
    )


def check_slug_free(db: Session, course: Course, slug: str) -> None:
    """Conflict when the slug is taken (by the catalog, another course, or this one)."""
    exercise = db.scalar(select(Exercise).where(Exercise.slug == slug))
    if exercise is not None:
        owner = "this course" if exercise.course_id == course.id else "another exercise"
        raise Conflict(f"the slug {slug!r} is already used by {owner}; PUT to change it")


Outcome = Literal["created", "updated", "unchanged"]


def save_version(
    db: Session, course: Course, user: User, spec: ExerciseSpec
) -> tuple[ExerciseVersion, Outcome]:
    """Store the spec as the exercise's new version: (version, created|updated|unchanged)."""
    existing = db.scalar(select(Exercise).where(Exercise.slug == spec.slug))
    if existing is not None and existing.course_id != course.id:
        raise Conflict(f"the slug {spec.slug!r} belongs to another exercise")
    version, what = upsert_exercise(db, spec)
    if what == "created":
        version.exercise.course_id = course.id
    if what != "unchanged":
        version.author_id = user.id
    db.flush()
    outcome: Outcome = "created" if what == "created" else "updated"
    return version, "unchanged" if what == "unchanged" else outcome
