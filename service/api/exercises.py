"""GET /exercises and /exercises/{slug}: the catalog and the caller's own variant."""

from __future__ import annotations

from typing import Any

from flask import request

from exercises.registry import get_kind
from service.api.blueprint import bp, current_user
from service.catalog import get_exercise, list_exercises, spec_of
from service.data.models import Exercise
from service.variants import as_domain, get_or_create_variant
from service.webdb import get_db


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
    }


@bp.get("/exercises")
def exercise_list() -> dict[str, Any]:
    """Every exercise in the catalog."""
    return {"items": [_summary(e) for e in list_exercises(get_db())]}


@bp.get("/exercises/<slug>")
def exercise_detail(slug: str) -> dict[str, Any]:
    """One exercise with the caller's variant: its values and the parts to answer."""
    db = get_db()
    exercise = get_exercise(db, slug)
    version = exercise.current_version
    spec = spec_of(version)
    label = request.args.get("variant", "seeded")
    variant = get_or_create_variant(db, current_user().id, version, label)
    db.commit()
    view = get_kind(spec.kind).learner_view(spec, as_domain(variant))
    return {**_summary(exercise), "variant": {"label": variant.label, **view}}
