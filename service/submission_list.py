"""Listing submissions with filters and cursor pagination, scoped by the caller's role.

Without a course or assignment, callers list their own submissions (an admin: all).
With one, staff of that course list everybody's, a learner only their own.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from service.access import STAFF, is_admin, require_course
from service.data.models import (
    Assignment,
    Exercise,
    ExerciseVersion,
    Submission,
    SubmissionStatus,
    User,
)
from service.errors import Forbidden, NotFound, ValidationFailed

MAX_LIMIT = 200


@dataclass(frozen=True)
class Filters:
    """What to list."""

    course_id: int | None = None
    assignment_id: int | None = None
    exercise: str | None = None
    learner_id: int | None = None
    status: SubmissionStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that continues after `last_id`."""
    return base64.urlsafe_b64encode(f"s:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after, or ValidationFailed."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "s" or not value.isdigit() or len(value) > 18:
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise ValidationFailed(
            "cursor is not one this API gave out", errors=[{"field": "cursor"}]
        ) from err


def _scope(db: Session, viewer: User, filters: Filters) -> tuple[Select[Submission], bool]:
    query = select(Submission)
    course_id = filters.course_id
    if filters.assignment_id is not None:
        assignment = db.get(Assignment, filters.assignment_id)
        if assignment is None or (course_id is not None and assignment.course_id != course_id):
            raise NotFound(f"no assignment {filters.assignment_id}")
        course_id = assignment.course_id
        query = query.where(Submission.assignment_id == assignment.id)
    if course_id is None:
        if is_admin(viewer):
            return query, True
        if filters.learner_id not in (None, viewer.id):
            raise Forbidden("to list another learner's submissions, give their course")
        return query.where(Submission.user_id == viewer.id), False
    _, role = require_course(db, viewer, course_id)
    query = query.where(
        Submission.assignment_id.in_(select(Assignment.id).where(Assignment.course_id == course_id))
    )
    if is_admin(viewer) or role in STAFF:
        return query, True
    if filters.learner_id not in (None, viewer.id):
        raise Forbidden("learners list only their own submissions")
    return query.where(Submission.user_id == viewer.id), False


def list_submissions(
    db: Session, viewer: User, filters: Filters, cursor: str | None, limit: int
) -> tuple[list[Submission], str | None]:
    """One page of submissions, newest first, and the cursor of the next page (or None)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be 1 to {MAX_LIMIT}", errors=[{"field": "limit"}])
    query, _ = _scope(db, viewer, filters)
    if filters.exercise is not None:
        query = query.where(
            Submission.exercise_version_id.in_(
                select(ExerciseVersion.id)
                .join(Exercise, ExerciseVersion.exercise_id == Exercise.id)
                .where(Exercise.slug == filters.exercise)
            )
        )
    if filters.learner_id is not None:
        query = query.where(Submission.user_id == filters.learner_id)
    if filters.status is not None:
        query = query.where(Submission.status == filters.status)
    if filters.since is not None:
        query = query.where(Submission.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Submission.created_at < filters.until)
    if cursor:
        query = query.where(Submission.id < decode_cursor(cursor))
    rows = list(
        db.scalars(
            query.options(
                selectinload(Submission.exercise_version).selectinload(ExerciseVersion.exercise),
                selectinload(Submission.assignment),
                selectinload(Submission.user),
            )
            .order_by(Submission.id.desc())
            .limit(limit + 1)
        )
    )
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(page[-1].id) if more and page else None
