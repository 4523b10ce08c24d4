"""Which exercises a user may see: the built-in catalog, and those authored in their courses."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from service.access import is_admin
from service.data.models import Enrollment, Exercise, User
from service.errors import NotFound


def visible_exercises(db: Session, user: User) -> list[Exercise]:
    """The catalog plus the exercises of the user's courses (an admin: all), by id."""
    query = select(Exercise).options(selectinload(Exercise.versions)).order_by(Exercise.id)
    if not is_admin(user):
        mine = select(Enrollment.course_id).where(Enrollment.user_id == user.id)
        query = query.where(or_(Exercise.course_id.is_(None), Exercise.course_id.in_(mine)))
    return [e for e in db.scalars(query) if e.versions]


def require_visible(db: Session, user: User, exercise: Exercise) -> Exercise:
    """The exercise if the user may see it; a course's exercise is 404 to outsiders."""
    if exercise.course_id is None or is_admin(user):
        return exercise
    member = db.scalar(
        select(Enrollment.id).where(
            Enrollment.course_id == exercise.course_id, Enrollment.user_id == user.id
        )
    )
    if member is None:
        raise NotFound(f"no exercise with slug {exercise.slug!r}")
    return exercise
