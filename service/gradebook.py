"""Gradebooks: per learner per assignment, from the learners' graded assignment submissions.

An exercise's score is the learner's best graded attempt on the assignment, a late one
multiplied by the late policy's factor; an assignment's score is the weighted mean over
its exercises (0 for one not attempted).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.assignments import effective_due, extensions, late_factor, list_assignments
from service.courses import members
from service.data.models import (
    Assignment,
    Course,
    CourseRole,
    Enrollment,
    ExerciseVersion,
    Submission,
    SubmissionStatus,
)


@dataclass
class Cell:
    """One learner's result on one exercise of an assignment."""

    score: float | None = None  # None: no graded attempt
    attempts: int = 0
    pending: int = 0
    late: bool = False
    submission_id: int | None = None


@dataclass
class Row:
    """One learner's results on one assignment."""

    user_id: int
    email: str
    cells: dict[str, Cell] = field(default_factory=dict)
    score: float = 0.0


def assignment_rows(db: Session, assignment: Assignment, learners: list[Enrollment]) -> list[Row]:
    """Each learner's row for the assignment, in the order of `learners`."""
    due_of = {e.user_id: effective_due(assignment, e) for e in extensions(db, assignment)}
    weights = {i.exercise_id: i.weight for i in assignment.items}
    slug_of = {i.exercise_id: i.exercise.slug for i in assignment.items}
    found = db.execute(
        select(
            Submission.id,
            Submission.user_id,
            Submission.status,
            Submission.score,
            Submission.created_at,
            ExerciseVersion.exercise_id,
        )
        .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
        .where(Submission.assignment_id == assignment.id)
        .order_by(Submission.id)
    ).all()
    rows = {e.user_id: Row(e.user_id, e.user.email) for e in learners}
    for row in rows.values():
        row.cells = {slug: Cell() for slug in slug_of.values()}
    for sub in found:
        row_of = rows.get(sub.user_id)
        slug = slug_of.get(sub.exercise_id)
        if row_of is None or slug is None:
            continue  # not a learner any more, or the exercise left the assignment
        cell = row_of.cells[slug]
        if sub.status in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING):
            cell.pending += 1
            cell.attempts += 1
            continue
        if sub.status != SubmissionStatus.GRADED or sub.score is None:
            continue
        cell.attempts += 1
        due = due_of.get(sub.user_id, assignment.due_at)
        late = due is not None and sub.created_at > due
        score = sub.score * late_factor(assignment, late)
        if cell.score is None or score > cell.score:
            cell.score, cell.late, cell.submission_id = score, late, sub.id
    total_weight = sum(weights.values()) or 1.0
    for row in rows.values():
        row.score = (
            sum(weights[eid] * (row.cells[slug].score or 0.0) for eid, slug in slug_of.items())
            / total_weight
        )
    return list(rows.values())


def learners_of(db: Session, course: Course) -> list[Enrollment]:
    """The course's learners (staff have no row in a gradebook)."""
    return members(db, course, CourseRole.LEARNER)


@dataclass
class CourseBook:
    """Every learner's score on every assignment of a course."""

    assignments: list[Assignment]
    rows: list[tuple[Enrollment, dict[int, float]]]


def course_book(db: Session, course: Course) -> CourseBook:
    """Scores per learner per assignment, and nothing a learner should not have (staff only)."""
    learners = learners_of(db, course)
    assignments = list_assignments(db, course)
    scores: dict[int, dict[int, float]] = defaultdict(dict)
    for assignment in assignments:
        for row in assignment_rows(db, assignment, learners):
            scores[row.user_id][assignment.id] = row.score
    return CourseBook(assignments, [(e, scores[e.user_id]) for e in learners])


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def course_csv(book: CourseBook) -> str:
    """The course gradebook as CSV: one row per learner, one column per assignment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user_id", "email", *[_safe(f"{a.id}: {a.title}") for a in book.assignments]])
    for enrollment, scores in book.rows:
        writer.writerow(
            [
                enrollment.user_id,
                _safe(enrollment.user.email),
                *[_fmt(scores.get(a.id)) for a in book.assignments],
            ]
        )
    return out.getvalue()


def assignment_csv(assignment: Assignment, rows: list[Row]) -> str:
    """An assignment's gradebook as CSV: per exercise score and attempts, then the total."""
    slugs = [i.exercise.slug for i in assignment.items]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["user_id", "email"]
    for slug in slugs:
        header += [f"{slug}:score", f"{slug}:attempts", f"{slug}:late"]
    writer.writerow([*header, "score"])
    for row in rows:
        line: list[object] = [row.user_id, _safe(row.email)]
        for slug in slugs:
            cell = row.cells[slug]
            line += [_fmt(cell.score), cell.attempts, "yes" if cell.late else ""]
        writer.writerow([*line, _fmt(row.score)])
    return out.getvalue()
