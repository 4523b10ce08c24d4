"""Assignments: exercises with dates, attempt limits, late and feedback policies; extensions;
and submitting to an assignment (by the learner, or by staff on a learner's behalf)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import url_for
from pydantic import AwareDatetime, Field

from service.access import INSTRUCTOR, MEMBERS, STAFF, is_staff, require_course
from service.api.blueprint import bp, current_user
from service.api.models import Id, In, Out, Slug, Title
from service.api.openapi import operation
from service.api.submissions import SubmissionOut
from service.assignments import (
    ItemSpec,
    create_assignment,
    delete_assignment,
    extension_for,
    extensions,
    get_assignment,
    grant_extension,
    is_open,
    list_assignments,
    revoke_extension,
    update_assignment,
)
from service.courses import get_enrollment
from service.coursework import submission_view_for, submit_to_assignment
from service.data.models import Assignment, CourseRole, Extension, User, utcnow
from service.errors import Forbidden, NotFound, ValidationFailed
from service.queueing import dispatcher
from service.webdb import get_db, settings

TAG = ["assignments"]
LateName = Literal["reject", "accept", "penalty"]
FeedbackName = Literal["immediate", "after_due", "never"]


class ItemIn(In):
    """An exercise of the assignment."""

    slug: Slug
    weight: float = Field(1.0, gt=0, le=1000)


class AssignmentFields(In):
    """Fields of an assignment (all optional when updating)."""

    opens_at: AwareDatetime | None = Field(None, description="Closed to learners before this.")
    due_at: AwareDatetime | None = None
    max_attempts: int | None = Field(None, ge=1, le=1000, description="Per exercise.")
    late_policy: LateName = Field(
        "reject", description="After due_at: refuse, accept, or accept with late_penalty."
    )
    late_penalty: float = Field(0.0, ge=0, le=1, description="Fraction taken off a late score.")
    late_until: AwareDatetime | None = Field(None, description="No submissions at all after.")
    feedback: FeedbackName = Field(
        "immediate", description="When learners see correctness, diagnosis and score."
    )


class AssignmentCreate(AssignmentFields):
    """A new assignment."""

    title: Title
    exercises: list[ItemIn] = Field(min_length=1, max_length=100)


class AssignmentUpdate(In):
    """Changes: only the fields given are changed (null clears a date or limit)."""

    title: Title | None = None
    exercises: list[ItemIn] | None = Field(None, min_length=1, max_length=100)
    opens_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    max_attempts: int | None = Field(None, ge=1, le=1000)
    late_policy: LateName | None = None
    late_penalty: float | None = Field(None, ge=0, le=1)
    late_until: AwareDatetime | None = None
    feedback: FeedbackName | None = None


class ItemOut(Out):
    """An exercise of an assignment."""

    slug: str
    title: str
    weight: float


class ExtensionOut(Out):
    """A learner's own due date and extra attempts."""

    user_id: int
    email: str
    due_at: datetime | None
    extra_attempts: int
    reason: str
    granted_by_id: int | None
    created_at: datetime


class AssignmentOut(Out):
    """An assignment; a learner also sees their own extension."""

    id: int
    course_id: int
    title: str
    exercises: list[ItemOut]
    opens_at: datetime | None
    due_at: datetime | None
    max_attempts: int | None
    late_policy: LateName
    late_penalty: float
    late_until: datetime | None
    feedback: FeedbackName
    created_at: datetime
    updated_at: datetime
    your_extension: ExtensionOut | None = None


class AssignmentList(Out):
    """A course's assignments."""

    items: list[AssignmentOut]


class ExtensionIn(In):
    """An extension: a later due date and/or extra attempts."""

    due_at: AwareDatetime | None = None
    extra_attempts: int = Field(0, ge=0, le=1000)
    reason: str = Field("", max_length=500)


class ExtensionList(Out):
    """Every extension on an assignment."""

    items: list[ExtensionOut]


class AssignmentSubmissionIn(In):
    """An answer to one exercise of the assignment: `answers` or `code`, as for practice."""

    exercise: Slug
    answers: dict[str, Any] | None = None
    code: str | None = Field(None, max_length=100_000)
    variant: Literal["seeded", "worked-example"] | None = None
    learner_id: Id | None = Field(None, description="Staff only: submit on this learner's behalf.")


def extension_out(e: Extension) -> ExtensionOut:
    """An extension as listed."""
    return ExtensionOut(
        user_id=e.user_id,
        email=e.user.email,
        due_at=e.due_at,
        extra_attempts=e.extra_attempts,
        reason=e.reason,
        granted_by_id=e.granted_by_id,
        created_at=e.created_at,
    )


def assignment_out(a: Assignment, mine: Extension | None = None) -> AssignmentOut:
    """An assignment as the API shows it."""
    return AssignmentOut(
        id=a.id,
        course_id=a.course_id,
        title=a.title,
        exercises=[
            ItemOut(slug=i.exercise.slug, title=i.exercise.title, weight=i.weight) for i in a.items
        ],
        opens_at=a.opens_at,
        due_at=a.due_at,
        max_attempts=a.max_attempts,
        late_policy=a.late_policy.value,
        late_penalty=a.late_penalty,
        late_until=a.late_until,
        feedback=a.feedback.value,
        created_at=a.created_at,
        updated_at=a.updated_at,
        your_extension=extension_out(mine) if mine is not None else None,
    )


def load(
    assignment_id: int, allowed: tuple[CourseRole, ...] = MEMBERS
) -> tuple[Assignment, CourseRole | None, User]:
    """The assignment if the caller may see it: staff always, learners once it is open."""
    db, user = get_db(), current_user()
    assignment = get_assignment(db, assignment_id)
    _, role = require_course(db, user, assignment.course_id, allowed)
    if not is_staff(role, user) and not is_open(assignment, utcnow()):
        raise NotFound(f"no assignment {assignment_id}")
    return assignment, role, user


@bp.get("/courses/<int:course_id>/assignments")
@operation(tags=TAG, resp=AssignmentList)
def assignment_list(course_id: int) -> AssignmentList:
    """The course's assignments (learners: those already open)."""
    db, user = get_db(), current_user()
    course, role = require_course(db, user, course_id)
    staff = is_staff(role, user)
    items = list_assignments(db, course, opened_only=not staff)
    return AssignmentList(
        items=[assignment_out(a, None if staff else extension_for(db, a, user.id)) for a in items]
    )


@bp.post("/courses/<int:course_id>/assignments")
@operation(tags=TAG, ok=201, resp=AssignmentOut, creates=True)
def assignment_create(
    course_id: int, json: AssignmentCreate
) -> tuple[AssignmentOut, int, dict[str, str]]:
    """Create an assignment (instructors)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    fields = json.model_dump(exclude={"exercises"})
    items = [ItemSpec(i.slug, i.weight) for i in json.exercises]
    assignment = create_assignment(db, course, items, **fields)
    db.commit()
    location = url_for("api.assignment_detail", assignment_id=assignment.id)
    return assignment_out(assignment), 201, {"Location": location}


@bp.get("/assignments/<int:assignment_id>")
@operation(tags=TAG, resp=AssignmentOut)
def assignment_detail(assignment_id: int) -> AssignmentOut:
    """One assignment (learners: once open, with their own extension)."""
    assignment, role, user = load(assignment_id)
    mine = None if is_staff(role, user) else extension_for(get_db(), assignment, user.id)
    return assignment_out(assignment, mine)


@bp.patch("/assignments/<int:assignment_id>")
@operation(tags=TAG, resp=AssignmentOut)
def assignment_update(assignment_id: int, json: AssignmentUpdate) -> AssignmentOut:
    """Change an assignment (instructors); only the fields given change."""
    assignment, _, _ = load(assignment_id, INSTRUCTOR)
    given = json.model_dump(exclude_unset=True)
    items = given.pop("exercises", None)
    for required in ("title", "late_policy", "late_penalty", "feedback"):
        if required in given and given[required] is None:
            raise ValidationFailed(f"{required} cannot be null", errors=[{"field": required}])
    db = get_db()
    update_assignment(
        db,
        assignment,
        [ItemSpec(i["slug"], i["weight"]) for i in items] if items is not None else None,
        **given,
    )
    db.commit()
    return assignment_out(assignment)


@bp.delete("/assignments/<int:assignment_id>")
@operation(tags=TAG, ok=204, errors=(409,))
def assignment_delete(assignment_id: int) -> tuple[str, int]:
    """Delete an assignment nobody has submitted to (instructors)."""
    assignment, _, _ = load(assignment_id, INSTRUCTOR)
    db = get_db()
    delete_assignment(db, assignment)
    db.commit()
    return "", 204


@bp.get("/assignments/<int:assignment_id>/extensions")
@operation(tags=TAG, resp=ExtensionList)
def extension_list(assignment_id: int) -> ExtensionList:
    """Every extension on the assignment (staff)."""
    assignment, _, _ = load(assignment_id, STAFF)
    return ExtensionList(items=[extension_out(e) for e in extensions(get_db(), assignment)])


@bp.put("/assignments/<int:assignment_id>/extensions/<int:user_id>")
@operation(tags=TAG, resp=ExtensionOut, also_ok=(201,))
def extension_put(assignment_id: int, user_id: int, json: ExtensionIn) -> tuple[ExtensionOut, int]:
    """Give a learner a later due date and/or extra attempts (staff); 201 when new."""
    assignment, _, staff = load(assignment_id, STAFF)
    db = get_db()
    enrollment = get_enrollment(db, assignment.course, user_id)
    if enrollment.role != CourseRole.LEARNER:
        raise ValidationFailed(
            f"user {user_id} is not a learner of this course", errors=[{"field": "user_id"}]
        )
    extension, created = grant_extension(
        db,
        assignment,
        enrollment.user,
        due_at=json.due_at,
        extra_attempts=json.extra_attempts,
        reason=json.reason,
        granted_by=staff,
    )
    db.commit()
    return extension_out(extension), 201 if created else 200


@bp.delete("/assignments/<int:assignment_id>/extensions/<int:user_id>")
@operation(tags=TAG, ok=204)
def extension_delete(assignment_id: int, user_id: int) -> tuple[str, int]:
    """Remove a learner's extension (staff)."""
    assignment, _, _ = load(assignment_id, STAFF)
    db = get_db()
    revoke_extension(db, assignment, user_id)
    db.commit()
    return "", 204


@bp.post("/assignments/<int:assignment_id>/submissions")
@operation(tags=TAG, ok=202, resp=SubmissionOut, creates=True, errors=(409, 503))
def assignment_submit(
    assignment_id: int, json: AssignmentSubmissionIn
) -> tuple[SubmissionOut, int, dict[str, str]]:
    """Answer an exercise of the assignment: a learner for themselves, staff with `learner_id`.

    Refused (409) before the assignment opens, after it closes under its late policy, or
    when the attempts are used up; staff submitting on a learner's behalf are not bound
    by dates or attempt limits.
    """
    assignment, role, user = load(assignment_id)
    db = get_db()
    learner = None
    if json.learner_id not in (None, user.id) and not is_staff(role, user):
        raise Forbidden("only staff submit on a learner's behalf")
    if json.learner_id is not None:
        learner = get_enrollment(db, assignment.course, json.learner_id).user
    payload = json.model_dump(exclude_unset=True, exclude={"exercise", "learner_id"})
    submission = submit_to_assignment(
        db,
        dispatcher(),
        user,
        assignment,
        json.exercise,
        payload,
        learner=learner,
        max_queue_depth=settings().max_queue_depth,
    )
    view = submission_view_for(db, submission, user)
    location = url_for("api.submission_detail", submission_id=submission.id)
    return SubmissionOut.model_validate(view), 202, {"Location": location}
