"""Gradebooks (JSON and CSV) and analytics per exercise and part (staff)."""

from __future__ import annotations

from datetime import datetime

from flask import Response
from pydantic import Field

from service.access import STAFF, require_course
from service.analytics import as_dict, course_analytics
from service.api.blueprint import bp, current_user
from service.api.models import Id, In, Out, Slug
from service.api.openapi import operation
from service.assignments import get_assignment
from service.data.models import Assignment
from service.gradebook import (
    Row,
    assignment_csv,
    assignment_rows,
    course_book,
    course_csv,
    learners_of,
)
from service.webdb import get_db

TAG = ["gradebook"]
CSV = {"text/csv": {"schema": {"type": "string"}}}


class CellOut(Out):
    """A learner's result on one exercise: the best graded attempt (late factor applied)."""

    score: float | None
    attempts: int
    pending: int
    late: bool
    submission_id: int | None


class LearnerRow(Out):
    """A learner's results on an assignment."""

    user_id: int
    email: str
    score: float = Field(description="Weighted mean over the exercises, 0 to 1.")
    exercises: dict[str, CellOut]


class ExerciseColumn(Out):
    """An exercise of the assignment."""

    slug: str
    weight: float


class AssignmentGradebook(Out):
    """Per learner per exercise of one assignment."""

    assignment_id: int
    title: str
    due_at: datetime | None
    exercises: list[ExerciseColumn]
    rows: list[LearnerRow]


class AssignmentColumn(Out):
    """An assignment of the course."""

    id: int
    title: str
    due_at: datetime | None


class CourseRow(Out):
    """A learner's score on each assignment (keys are assignment ids)."""

    user_id: int
    email: str
    scores: dict[str, float]
    average: float | None


class CourseGradebook(Out):
    """Per learner per assignment of a course."""

    course_id: int
    assignments: list[AssignmentColumn]
    rows: list[CourseRow]


class AnalyticsQuery(In):
    """Narrow the statistics."""

    assignment: Id | None = None
    exercise: Slug | None = None


class WrongAnswer(Out):
    """A wrong answer and how often it was given."""

    answer: str
    count: int


class DiagnosisCount(Out):
    """A diagnosed misconception and how often it was found."""

    code: str
    count: int
    message: str


class PartStatsOut(Out):
    """How one part was answered."""

    part: str
    answered: int
    correct: int
    correct_rate: float | None
    common_wrong_answers: list[WrongAnswer]
    diagnoses: list[DiagnosisCount]


class ExerciseStatsOut(Out):
    """How one exercise went."""

    exercise: str
    title: str
    attempts: int
    learners: int
    solved: int
    solve_rate: float | None
    median_attempts_to_solve: float | None
    parts: list[PartStatsOut]


class Analytics(Out):
    """Statistics per exercise over the course's assignment submissions."""

    course_id: int
    exercises: list[ExerciseStatsOut]


def _assignment_book(assignment_id: int) -> tuple[Assignment, list[Row]]:
    db = get_db()
    assignment = get_assignment(db, assignment_id)
    course, _ = require_course(db, current_user(), assignment.course_id, STAFF)
    return assignment, assignment_rows(db, assignment, learners_of(db, course))


def _csv(text: str, name: str) -> Response:
    resp = Response(text, mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@bp.get("/assignments/<int:assignment_id>/gradebook")
@operation(tags=TAG, resp=AssignmentGradebook)
def assignment_gradebook(assignment_id: int) -> AssignmentGradebook:
    """Each learner's best score per exercise and the assignment's score (staff)."""
    assignment, rows = _assignment_book(assignment_id)
    return AssignmentGradebook(
        assignment_id=assignment.id,
        title=assignment.title,
        due_at=assignment.due_at,
        exercises=[ExerciseColumn(slug=i.exercise.slug, weight=i.weight) for i in assignment.items],
        rows=[
            LearnerRow(
                user_id=r.user_id,
                email=r.email,
                score=r.score,
                exercises={k: CellOut.model_validate(c) for k, c in r.cells.items()},
            )
            for r in rows
        ],
    )


@bp.get("/assignments/<int:assignment_id>/gradebook.csv")
@operation(tags=TAG, response_content=CSV)
def assignment_gradebook_csv(assignment_id: int) -> Response:
    """The assignment's gradebook as CSV (staff)."""
    assignment, rows = _assignment_book(assignment_id)
    return _csv(assignment_csv(assignment, rows), f"assignment-{assignment.id}.csv")


def _course_book(course_id: int) -> CourseGradebook:
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    book = course_book(db, course)
    rows = []
    for enrollment, scores in book.rows:
        values = [scores.get(a.id, 0.0) for a in book.assignments]
        rows.append(
            CourseRow(
                user_id=enrollment.user_id,
                email=enrollment.user.email,
                scores={str(k): v for k, v in scores.items()},
                average=sum(values) / len(values) if values else None,
            )
        )
    return CourseGradebook(
        course_id=course.id,
        assignments=[
            AssignmentColumn(id=a.id, title=a.title, due_at=a.due_at) for a in book.assignments
        ],
        rows=rows,
    )


@bp.get("/courses/<int:course_id>/gradebook")
@operation(tags=TAG, resp=CourseGradebook)
def course_gradebook(course_id: int) -> CourseGradebook:
    """Each learner's score on each assignment of the course (staff)."""
    return _course_book(course_id)


@bp.get("/courses/<int:course_id>/gradebook.csv")
@operation(tags=TAG, response_content=CSV)
def course_gradebook_csv(course_id: int) -> Response:
    """The course's gradebook as CSV: a row per learner, a column per assignment (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    return _csv(course_csv(course_book(db, course)), f"{course.code}-gradebook.csv")


@bp.get("/courses/<int:course_id>/analytics")
@operation(tags=TAG, resp=Analytics)
def course_analytics_view(course_id: int, query: AnalyticsQuery) -> Analytics:
    """Per exercise and part: attempts, solve rate, median attempts to solve, the most
    common wrong answers and diagnoses (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    stats = course_analytics(db, course, assignment_id=query.assignment, exercise=query.exercise)
    return Analytics.model_validate(
        {"course_id": course.id, "exercises": [as_dict(s) for s in stats]}
    )
