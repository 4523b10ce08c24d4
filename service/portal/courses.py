"""Courses in the portal: joining by code, and each course's assignments with due dates and
the learner's progress (scores only where the assignment's feedback policy shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from service.access import require_course
from service.assignments import (
    effective_due,
    extension_for,
    feedback_visible,
    get_assignment,
    list_assignments,
)
from service.courses import courses_of, get_enrollment, join_by_code
from service.data.models import Assignment, Course, CourseRole, User, utcnow
from service.errors import AppError, NotFound
from service.gradebook import assignment_rows
from service.portal.blueprint import bp, current_user, login_required
from service.security import limiter
from service.webdb import get_db


@dataclass(frozen=True)
class AssignmentItem:
    """One exercise of an assignment as this learner stands with it."""

    slug: str
    title: str
    attempts: int
    score: float | None  # None when not graded yet, or when feedback is hidden


@dataclass(frozen=True)
class AssignmentCard:
    """An assignment on the dashboard."""

    assignment: Assignment
    due: datetime | None
    overdue: bool
    feedback_shown: bool
    items: list[AssignmentItem]
    score: float | None

    @property
    def done(self) -> int:
        """Exercises solved (feedback shown) or attempted (feedback hidden)."""
        if self.feedback_shown:
            return sum(1 for i in self.items if i.score is not None and i.score >= 1.0)
        return sum(1 for i in self.items if i.attempts)


@dataclass(frozen=True)
class CourseCard:
    """A course the learner is in, with its open assignments."""

    course: Course
    role: CourseRole | None
    assignments: list[AssignmentCard]


def _card(db: Session, user: User, assignment: Assignment, now: datetime) -> AssignmentCard:
    due = effective_due(assignment, extension_for(db, assignment, user.id))
    shown = feedback_visible(assignment, now, due)
    enrollment = get_enrollment(db, assignment.course, user.id)
    row = assignment_rows(db, assignment, [enrollment])[0]
    items = [
        AssignmentItem(
            i.exercise.slug,
            i.exercise.title,
            row.cells[i.exercise.slug].attempts,
            row.cells[i.exercise.slug].score if shown else None,
        )
        for i in assignment.items
    ]
    return AssignmentCard(
        assignment,
        due,
        due is not None and now > due,
        shown,
        items,
        row.score if shown else None,
    )


def course_cards(db: Session, user: User) -> list[CourseCard]:
    """The learner's courses with their open assignments, soonest due first."""
    now = utcnow()
    cards = []
    for course, role in courses_of(db, user):
        if role != CourseRole.LEARNER:
            cards.append(CourseCard(course, role, []))
            continue
        assignments = [
            _card(db, user, a, now) for a in list_assignments(db, course, opened_only=True, now=now)
        ]
        assignments.sort(key=lambda c: (c.due is None, c.due or now))
        cards.append(CourseCard(course, role, assignments))
    return cards


def assignment_for(db: Session, user: User, assignment_id: int, slug: str) -> Assignment:
    """An assignment the learner is in that contains `slug` (NotFound otherwise)."""
    assignment = get_assignment(db, assignment_id)
    require_course(db, user, assignment.course_id)
    if all(i.exercise.slug != slug for i in assignment.items):
        raise NotFound(f"exercise {slug!r} is not part of assignment {assignment_id}")
    return assignment


@bp.route("/join", methods=["GET", "POST"])
@login_required
@limiter.limit("20 per minute", methods=["POST"])
def join_course() -> str | Response:
    """Join a course with the code the instructor gave out."""
    code = ""
    if request.method == "POST":
        db = get_db()
        code = request.form.get("code", "")
        try:
            enrollment, created = join_by_code(db, current_user(), code)
            db.commit()
        except AppError as err:
            db.rollback()
            flash(f"{err.detail}. Check the code with your instructor.", "error")
            return render_template("portal/join.html", code=code), 404  # type: ignore[return-value]
        title = enrollment.course.title
        flash(f"You joined {title}." if created else f"You are already in {title}.", "info")
        return redirect(url_for("portal.index"))
    return render_template("portal/join.html", code=code)
