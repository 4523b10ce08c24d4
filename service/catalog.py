"""Exercises in the database: loading the catalog as versions, and looking them up."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from exercises.spec import ExerciseSpec
from service.data.models import Exercise, ExerciseVersion
from service.errors import NotFound
from service.lru import Lru


@dataclass(frozen=True)
class SyncReport:
    """What a catalog load did, slug by slug."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]


def upsert_exercise(db: Session, spec: ExerciseSpec) -> tuple[ExerciseVersion, str]:
    """Store `spec` as a new version when its content changed; returns (version, what happened)."""
    content_hash = spec.content_hash()
    exercise = db.scalar(select(Exercise).where(Exercise.slug == spec.slug))
    if exercise is None:
        exercise = Exercise(slug=spec.slug, kind=spec.kind, title=spec.title)
        db.add(exercise)
        db.flush()
        what = "created"
    else:
        for version in exercise.versions:
            if version.content_hash == content_hash:
                return version, "unchanged"
        what = "updated"
    number = len(exercise.versions) + 1
    version = ExerciseVersion(
        exercise=exercise,
        number=number,
        content_hash=content_hash,
        spec=spec.model_dump(mode="json"),
    )
    exercise.kind, exercise.title = spec.kind, spec.title
    db.add(version)
    db.flush()
    db.refresh(exercise)
    return version, what


def sync_catalog(db: Session, specs: list[ExerciseSpec]) -> SyncReport:
    """Load every spec; a changed one becomes a new version, old submissions keep theirs."""
    report = SyncReport([], [], [])
    for spec in specs:
        _, what = upsert_exercise(db, spec)
        getattr(report, what).append(spec.slug)
    return report


def list_exercises(db: Session) -> list[Exercise]:
    """The built-in catalog with its versions, by id.

    Exercises authored in a course are its members' only: see service.exercise_access.
    """
    return list(
        db.scalars(
            select(Exercise)
            .where(Exercise.course_id.is_(None))
            .options(selectinload(Exercise.versions))
            .order_by(Exercise.id)
        )
    )


def get_exercise(db: Session, slug: str) -> Exercise:
    """The exercise with `slug`, or NotFound."""
    exercise = (
        db.execute(
            select(Exercise).where(Exercise.slug == slug).options(joinedload(Exercise.versions))
        )
        .unique()
        .scalar_one_or_none()
    )
    if exercise is None or not exercise.versions:
        raise NotFound(f"no exercise with slug {slug!r}")
    for version in exercise.versions:  # the reverse side, so no query asks for it again
        set_committed_value(version, "exercise", exercise)
    return exercise


_SPECS: Lru[str, ExerciseSpec] = Lru(512)


def spec_of(version: ExerciseVersion) -> ExerciseSpec:
    """The validated spec stored with a version.

    Versions are immutable and named by their content hash, so the parsed, validated spec
    (about a millisecond of pydantic and cross-field checks) is cached by that hash.
    """
    spec = _SPECS.get(version.content_hash)
    if spec is None:
        spec = ExerciseSpec.model_validate(version.spec)
        _SPECS.put(version.content_hash, spec)
    return spec
