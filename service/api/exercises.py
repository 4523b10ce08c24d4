"""GET /exercises and /exercises/{slug}: the catalog and the caller's own variant."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from exercises.registry import get_kind
from service.api.blueprint import bp, current_user
from service.api.models import In, Out
from service.api.openapi import operation
from service.catalog import get_exercise, spec_of
from service.data.models import Exercise
from service.exercise_access import require_visible, visible_exercises
from service.variants import as_domain, get_or_create_variant
from service.webdb import get_db

TAG = ["exercises"]


class ExerciseSummary(Out):
    """An exercise of the catalog (or of one of the caller's courses)."""

    slug: str
    title: str
    kind: str
    version: int
    topics: list[str]
    difficulty: int
    course_id: int | None = Field(None, description="Set for an exercise authored in a course.")


class ExerciseList(Out):
    """Exercises."""

    items: list[ExerciseSummary]


class ExerciseDetail(ExerciseSummary):
    """An exercise with the caller's variant: their numbers and the parts to answer."""

    variant: dict[str, Any]


class VariantQuery(In):
    """Which variant to show."""

    variant: Literal["seeded", "worked-example"] = "seeded"


def _summary(exercise: Exercise) -> dict[str, Any]:
    version = exercise.current_version
    spec = spec_of(version)
    return {
        "slug": exercise.slug,
        "title": spec.title,
        "kind": spec.kind,
        "version": version.number,
        "topics": list(spec.topics),
        "difficulty": spec.difficulty,
        "course_id": exercise.course_id,
    }


@bp.get("/exercises")
@operation(tags=TAG, resp=ExerciseList)
def exercise_list() -> ExerciseList:
    """Every exercise the caller may answer."""
    items = [_summary(e) for e in visible_exercises(get_db(), current_user())]
    return ExerciseList.model_validate({"items": items})


@bp.get("/exercises/<slug>")
@operation(tags=TAG, resp=ExerciseDetail)
def exercise_detail(slug: str, query: VariantQuery) -> ExerciseDetail:
    """One exercise with the caller's variant: its values and the parts to answer."""
    db = get_db()
    exercise = require_visible(db, current_user(), get_exercise(db, slug))
    version = exercise.current_version
    spec = spec_of(version)
    variant = get_or_create_variant(db, current_user().id, version, query.variant)
    db.commit()
    view = get_kind(spec.kind).learner_view(spec, as_domain(variant))
    return ExerciseDetail.model_validate(
        {**_summary(exercise), "variant": {"label": variant.label, **view}}
    )
