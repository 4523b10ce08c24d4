"""A learner's work in a course: submitting to an assignment, and what each viewer may see of it.

The portal and the API show a submission through `submission_view_for`, which asks
`service.assignments.feedback_visible` whether a learner may see its verdict yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.access import STAFF, course_role, is_admin
from service.assignments import (
    SubmissionRefused,
    check_can_submit,
    effective_due,
    extension_for,
    feedback_available_at,
    feedback_visible,
    is_late,
    item_for,
)
from service.data.models import (
    Assignment,
    AssignmentExercise,
    CourseRole,
    Enrollment,
    FeedbackPolicy,
    Submission,
    User,
    utcnow,
)
from service.errors import NotFound, ValidationFailed
from service.queueing import Dispatcher
from service.submissions import submission_view, submit

HIDDEN_MESSAGE = {
    "after_due": "Feedback on this assignment appears after the due date.",
    "never": "Feedback on this assignment is not shown.",
}


def submit_to_assignment(
    db: Session,
    dispatcher: Dispatcher,
    caller: User,
    assignment: Assignment,
    slug: str,
    payload: dict[str, Any],
    *,
    learner: User | None = None,
    now: datetime | None = None,
    max_queue_depth: int | None = None,
) -> Submission:
    """Accept an answer to one of the assignment's exercises, by the learner or on their behalf.

    The caller must be a learner of the course (for themselves) or staff (for `learner`).
    """
    now = now or utcnow()
    role = course_role(db, caller, assignment.course_id)
    on_behalf = learner is not None and learner.id != caller.id
    if learner is not None and on_behalf:
        if not (is_admin(caller) or role in STAFF):
            raise NotFound(f"no assignment {assignment.id}")
        if course_role(db, learner, assignment.course_id) != CourseRole.LEARNER:
            raise ValidationFailed(
                f"user {learner.id} is not a learner of this course",
                errors=[{"field": "learner_id", "message": "not a learner of this course"}],
            )
    elif role != CourseRole.LEARNER:
        raise ValidationFailed(
            "only learners submit to an assignment; staff submit on a learner's behalf "
            "with `learner_id`",
            errors=[{"field": "learner_id", "message": "required for staff"}],
        )
    who = learner if learner is not None and on_behalf else caller
    item = item_for(assignment, slug)
    # Staff on a learner's behalf are not bound by the dates (e.g. a paper exam typed in later).
    if not on_behalf:
        check_can_submit(db, assignment, who.id, item.exercise, now)
    if feedback_visible(
        assignment, now, effective_due(assignment, extension_for(db, assignment, who.id))
    ):
        refuse_if_hidden_elsewhere(db, who.id, item.exercise_id, now, except_id=assignment.id)
    submission, _ = submit(
        db,
        dispatcher,
        who,
        slug,
        payload,
        max_queue_depth=max_queue_depth,
        assignment_id=assignment.id,
        submitted_by_id=caller.id if on_behalf else None,
    )
    return submission


def hiding_assignment(
    db: Session, user_id: int, exercise_id: int, now: datetime, except_id: int | None = None
) -> Assignment | None:
    """An assignment of the learner's that hides feedback on this exercise now (or will)."""
    query = (
        select(Assignment)
        .join(AssignmentExercise, AssignmentExercise.assignment_id == Assignment.id)
        .join(Enrollment, Enrollment.course_id == Assignment.course_id)
        .where(
            AssignmentExercise.exercise_id == exercise_id,
            Enrollment.user_id == user_id,
            Enrollment.role == CourseRole.LEARNER,
            Assignment.feedback != FeedbackPolicy.IMMEDIATE,
        )
    )
    for assignment in db.scalars(query):
        if assignment.id == except_id:
            continue
        due = effective_due(assignment, extension_for(db, assignment, user_id))
        if not feedback_visible(assignment, now, due):
            return assignment
    return None


def refuse_if_hidden_elsewhere(
    db: Session, user_id: int, exercise_id: int, now: datetime, except_id: int | None = None
) -> None:
    """Refuse work whose feedback would show what an exam of the learner's hides.

    A learner's numbers for an exercise are the same everywhere, so practice (or another
    assignment with immediate feedback) would tell them whether their exam answer is right.
    """
    hiding = hiding_assignment(db, user_id, exercise_id, now, except_id)
    if hiding is not None:
        raise SubmissionRefused(
            f"this exercise is part of assignment {hiding.id}, whose feedback is hidden; "
            "answer it there"
        )


def submission_view_for(
    db: Session, submission: Submission, viewer: User, now: datetime | None = None
) -> dict[str, Any]:
    """The submission as `viewer` may see it: staff see all; a learner sees its feedback
    only when the assignment's feedback policy allows it now."""
    view = submission_view(submission, submission.exercise_version.exercise)
    assignment = submission.assignment
    view["assignment_id"] = submission.assignment_id
    view["learner_id"] = submission.user_id
    view["submitted_by_id"] = submission.submitted_by_id
    view["exercise_version"] = submission.exercise_version.number
    if assignment is None:
        view["late"] = False
        view["feedback"] = "shown"
        return view
    extension = extension_for(db, assignment, submission.user_id)
    view["late"] = is_late(assignment, submission.created_at, extension)
    if can_see_feedback(db, submission, viewer, now):
        view["feedback"] = "shown"
        return view
    return redact(view, assignment, effective_due(assignment, extension))


def can_see_feedback(
    db: Session, submission: Submission, viewer: User, now: datetime | None = None
) -> bool:
    """True for staff of the submission's course, or when its feedback policy allows it now."""
    assignment = submission.assignment
    if assignment is None or is_admin(viewer):
        return True
    if course_role(db, viewer, assignment.course_id) in STAFF:
        return True
    due = effective_due(assignment, extension_for(db, assignment, submission.user_id))
    return feedback_visible(assignment, now or utcnow(), due)


def redact(view: dict[str, Any], assignment: Assignment, due: datetime | None) -> dict[str, Any]:
    """The view without correctness, score, diagnosis or grader output."""
    available = feedback_available_at(assignment, due)
    hidden = {
        **view,
        "score": None,
        "correct": None,
        "parts": {},
        "message": HIDDEN_MESSAGE[assignment.feedback.value],
        "feedback": "hidden",
        "feedback_available_at": available.isoformat() if available else None,
    }
    hidden.pop("details", None)
    return hidden
