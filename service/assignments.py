"""Assignments: exercises with dates, attempt limits, a late policy, extensions and a
feedback policy; and the policy decisions every view of a learner's work goes through.

`feedback_visible` is the one place that decides whether a learner sees per-part
correctness, diagnosis and score: the API and the portal both ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from service.data.models import (
    Assignment,
    AssignmentExercise,
    Course,
    Exercise,
    ExerciseVersion,
    Extension,
    FeedbackPolicy,
    LatePolicy,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)
from service.errors import Conflict, NotFound, ValidationFailed

MAX_EXERCISES = 100


class SubmissionRefused(Conflict):
    """The assignment does not take this submission now (closed, not open, out of attempts)."""

    code = "submission-refused"
    title = "Submission refused"


@dataclass(frozen=True)
class ItemSpec:
    """An exercise to put in an assignment, by slug, with its weight."""

    slug: str
    weight: float = 1.0


# ---- reading -----------------------------------------------------------------------------


def get_assignment(db: Session, assignment_id: int) -> Assignment:
    """The assignment with its exercises, or NotFound."""
    assignment = db.scalar(
        select(Assignment)
        .where(Assignment.id == assignment_id)
        .options(selectinload(Assignment.items).selectinload(AssignmentExercise.exercise))
    )
    if assignment is None:
        raise NotFound(f"no assignment {assignment_id}")
    return assignment


def list_assignments(
    db: Session, course: Course, *, opened_only: bool = False, now: datetime | None = None
) -> list[Assignment]:
    """The course's assignments by id; learners see only those already open."""
    query = (
        select(Assignment)
        .where(Assignment.course_id == course.id)
        .options(selectinload(Assignment.items).selectinload(AssignmentExercise.exercise))
        .order_by(Assignment.id)
    )
    items = list(db.scalars(query))
    if opened_only:
        items = [a for a in items if is_open(a, now or utcnow())]
    return items


def is_open(assignment: Assignment, now: datetime) -> bool:
    """True once the assignment has opened (it may be past due)."""
    return assignment.opens_at is None or assignment.opens_at <= now


def extension_for(db: Session, assignment: Assignment, user_id: int) -> Extension | None:
    """The learner's extension on this assignment, if any."""
    return db.scalar(
        select(Extension).where(
            Extension.assignment_id == assignment.id, Extension.user_id == user_id
        )
    )


def effective_due(assignment: Assignment, extension: Extension | None) -> datetime | None:
    """The due date that applies to one learner: their extension's, else the assignment's."""
    if extension is not None and extension.due_at is not None:
        return extension.due_at
    return assignment.due_at


def is_late(assignment: Assignment, at: datetime, extension: Extension | None) -> bool:
    """True when `at` is after the learner's due date."""
    due = effective_due(assignment, extension)
    return due is not None and at > due


def feedback_visible(
    assignment: Assignment | None, now: datetime, due: datetime | None = None
) -> bool:
    """May the learner see correctness, diagnosis and score of work on this assignment now?

    `due` is the learner's own due date (with an extension); by default the assignment's.
    Work outside any assignment (practice) always shows its feedback; staff always see it.
    """
    if assignment is None or assignment.feedback == FeedbackPolicy.IMMEDIATE:
        return True
    if assignment.feedback == FeedbackPolicy.NEVER:
        return False
    due = due or assignment.due_at
    return due is None or now >= due


def feedback_available_at(assignment: Assignment, due: datetime | None) -> datetime | None:
    """When hidden feedback will appear (None: never)."""
    if assignment.feedback == FeedbackPolicy.AFTER_DUE:
        return due or assignment.due_at
    return None


def late_factor(assignment: Assignment, late: bool) -> float:
    """What a score is multiplied by: 1, or 1 - penalty for late work under the penalty policy."""
    if late and assignment.late_policy == LatePolicy.PENALTY:
        return max(0.0, 1.0 - assignment.late_penalty)
    return 1.0


def attempts_used(db: Session, assignment: Assignment, user_id: int, exercise_id: int) -> int:
    """Submissions that count against the attempt limit (an internal grading failure does not)."""
    return (
        db.scalar(
            select(func.count(Submission.id))
            .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
            .where(
                Submission.assignment_id == assignment.id,
                Submission.user_id == user_id,
                ExerciseVersion.exercise_id == exercise_id,
                Submission.status != SubmissionStatus.FAILED,
            )
        )
        or 0
    )


def item_for(assignment: Assignment, slug: str) -> AssignmentExercise:
    """The assignment's item for the exercise `slug`, or NotFound."""
    for item in assignment.items:
        if item.exercise.slug == slug:
            return item
    raise NotFound(f"exercise {slug!r} is not part of assignment {assignment.id}")


def check_can_submit(
    db: Session, assignment: Assignment, user_id: int, exercise: Exercise, now: datetime
) -> bool:
    """Refuse what the assignment does not take now; returns whether the submission is late."""
    if not is_open(assignment, now):
        raise SubmissionRefused(f"assignment {assignment.id} opens at {_iso(assignment.opens_at)}")
    extension = extension_for(db, assignment, user_id)
    late = is_late(assignment, now, extension)
    if late and assignment.late_policy == LatePolicy.REJECT:
        due = effective_due(assignment, extension)
        raise SubmissionRefused(f"assignment {assignment.id} was due at {_iso(due)}")
    if late and assignment.late_until is not None and now > assignment.late_until:
        raise SubmissionRefused(
            f"assignment {assignment.id} closed at {_iso(assignment.late_until)}"
        )
    if assignment.max_attempts is not None:
        limit = assignment.max_attempts + (extension.extra_attempts if extension else 0)
        if attempts_used(db, assignment, user_id, exercise.id) >= limit:
            raise SubmissionRefused(
                f"all {limit} attempts at {exercise.slug} in assignment {assignment.id} are used"
            )
    return late


def _iso(ts: datetime | None) -> str:
    return ts.isoformat() if ts else "(no date)"


# ---- writing -----------------------------------------------------------------------------

FIELDS = (
    "title",
    "opens_at",
    "due_at",
    "max_attempts",
    "late_policy",
    "late_penalty",
    "late_until",
    "feedback",
)


def create_assignment(
    db: Session, course: Course, items: list[ItemSpec], **fields: Any
) -> Assignment:
    """A new assignment in the course (its exercises must be visible to the course)."""
    assignment = Assignment(course_id=course.id, title="")
    _apply(assignment, fields)
    _check_dates(assignment)
    assignment.items = _items(db, course, items)
    db.add(assignment)
    db.flush()
    return assignment


def update_assignment(
    db: Session, assignment: Assignment, items: list[ItemSpec] | None, **fields: Any
) -> Assignment:
    """Change the given fields (and the exercise list when `items` is not None)."""
    _apply(assignment, fields)
    _check_dates(assignment)
    if items is not None:
        wanted = _items(db, assignment.course, items)
        current = {i.exercise_id: i for i in assignment.items}
        kept: list[AssignmentExercise] = []
        for item in wanted:
            old = current.get(item.exercise_id)
            if old is not None:
                old.position, old.weight = item.position, item.weight
                kept.append(old)
            else:
                kept.append(item)
        assignment.items = kept
    assignment.updated_at = utcnow()
    db.flush()
    return assignment


def delete_assignment(db: Session, assignment: Assignment) -> None:
    """Delete an assignment nobody has submitted to (otherwise Conflict)."""
    used = db.scalar(
        select(func.count(Submission.id)).where(Submission.assignment_id == assignment.id)
    )
    if used:
        raise Conflict(f"assignment {assignment.id} has {used} submissions and cannot be deleted")
    db.delete(assignment)
    db.flush()


def _apply(assignment: Assignment, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name not in FIELDS:
            raise ValueError(f"not an assignment field: {name}")
        if name == "late_policy" and value is not None:
            value = LatePolicy(value)
        if name == "feedback" and value is not None:
            value = FeedbackPolicy(value)
        setattr(assignment, name, value)


def _check_dates(assignment: Assignment) -> None:
    problems: list[dict[str, str]] = []
    opens, due, until = assignment.opens_at, assignment.due_at, assignment.late_until
    if opens is not None and due is not None and due <= opens:
        problems.append({"field": "due_at", "message": "must be after opens_at"})
    if until is not None and (due is None or until < due):
        problems.append(
            {"field": "late_until", "message": "needs a due_at and must not be before it"}
        )
    if assignment.feedback == FeedbackPolicy.AFTER_DUE and due is None:
        problems.append({"field": "feedback", "message": "after_due needs a due_at"})
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", errors=problems)


def _items(db: Session, course: Course, items: list[ItemSpec]) -> list[AssignmentExercise]:
    if len(items) > MAX_EXERCISES:
        raise ValidationFailed(
            f"at most {MAX_EXERCISES} exercises", errors=[{"field": "exercises"}]
        )
    slugs = [i.slug for i in items]
    found = {
        e.slug: e
        for e in db.scalars(select(Exercise).where(Exercise.slug.in_(slugs)))
        if e.course_id in (None, course.id)
    }
    problems = []
    for n, item in enumerate(items):
        if item.slug not in found:
            problems.append(
                {"field": f"exercises.{n}.slug", "message": f"no exercise {item.slug!r}"}
            )
        elif item.slug in slugs[:n]:
            problems.append({"field": f"exercises.{n}.slug", "message": "listed twice"})
    if problems:
        raise ValidationFailed(problems[0]["message"], errors=problems)
    return [
        AssignmentExercise(
            exercise=found[i.slug], exercise_id=found[i.slug].id, position=n, weight=i.weight
        )
        for n, i in enumerate(items)
    ]


def grant_extension(
    db: Session,
    assignment: Assignment,
    user: User,
    *,
    due_at: datetime | None,
    extra_attempts: int,
    reason: str,
    granted_by: User,
) -> tuple[Extension, bool]:
    """Give (or change) a learner's extension; returns (extension, created)."""
    existing = extension_for(db, assignment, user.id)
    created = existing is None
    extension = existing or Extension(assignment_id=assignment.id, user_id=user.id)
    extension.due_at = due_at
    extension.extra_attempts = extra_attempts
    extension.reason = reason
    extension.granted_by_id = granted_by.id
    if due_at is not None and assignment.opens_at is not None and due_at <= assignment.opens_at:
        raise ValidationFailed(
            "due_at must be after the assignment opens", errors=[{"field": "due_at"}]
        )
    db.add(extension)
    db.flush()
    return extension, created


def revoke_extension(db: Session, assignment: Assignment, user_id: int) -> None:
    """Remove a learner's extension, or NotFound."""
    extension = extension_for(db, assignment, user_id)
    if extension is None:
        raise NotFound(f"user {user_id} has no extension on assignment {assignment.id}")
    db.delete(extension)
    db.flush()


def extensions(db: Session, assignment: Assignment) -> list[Extension]:
    """Every extension on the assignment, by user."""
    return list(
        db.scalars(
            select(Extension)
            .where(Extension.assignment_id == assignment.id)
            .options(selectinload(Extension.user))
            .order_by(Extension.user_id)
        )
    )
