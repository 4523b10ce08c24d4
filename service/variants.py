"""Each learner's own numbers: seeded, reproducible variants of an exercise version."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exercises.model import Variant as DomainVariant
from exercises.registry import get_kind
from service.catalog import spec_of
from service.data.models import ExerciseVersion, Variant
from service.errors import ValidationFailed

VARIANT_LABELS = ("seeded", "worked-example")


def learner_seed(user_id: int, slug: str) -> int:
    """A stable seed per learner and exercise (the same numbers across versions)."""
    digest = hashlib.sha256(f"gradschool:{user_id}:{slug}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def check_label(label: object) -> str:
    """The variant label, or a 422 naming the labels there are."""
    if not isinstance(label, str) or label not in VARIANT_LABELS:
        raise ValidationFailed(
            f"variant must be one of {', '.join(VARIANT_LABELS)}", errors=[{"field": "variant"}]
        )
    return label


def get_or_create_variant(
    db: Session, user_id: int, version: ExerciseVersion, label: str = "seeded"
) -> Variant:
    """The learner's variant of this version, created on first use."""
    check_label(label)
    query = select(Variant).where(
        Variant.user_id == user_id,
        Variant.exercise_version_id == version.id,
        Variant.label == label,
    )
    existing = db.scalar(query)
    if existing is not None:
        return existing
    spec = spec_of(version)
    kind = get_kind(spec.kind)
    if label == "worked-example":
        made = kind.worked_example(spec)
    else:
        made = kind.make_variant(spec, learner_seed(user_id, spec.slug))
    variant = Variant(
        user_id=user_id,
        exercise_version_id=version.id,
        seed=made.seed,
        label=label,
        params=made.params,
    )
    try:
        with db.begin_nested():
            db.add(variant)
    except IntegrityError:
        # A concurrent request created it first: use theirs.
        found = db.scalar(query)
        if found is None:
            raise
        return found
    return variant


def as_domain(variant: Variant) -> DomainVariant:
    """The exercises package's plain-data view of a stored variant."""
    return DomainVariant(params=dict(variant.params), seed=variant.seed, label=variant.label)
