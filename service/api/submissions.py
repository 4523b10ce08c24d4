"""Submissions: practice answers, listing with filters and cursors, detail, grading history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import request, url_for
from pydantic import AwareDatetime, Field
from sqlalchemy.orm import joinedload

from service.access import STAFF, course_role, is_admin
from service.api.blueprint import bp, current_user, token_user
from service.api.models import Id, In, Out, Page, Slug
from service.api.openapi import operation
from service.coursework import submission_view_for
from service.data.models import ExerciseVersion, Submission, SubmissionStatus, User
from service.errors import NotFound
from service.idempotency import check_key
from service.queueing import dispatcher
from service.regrade import history, version_number
from service.submission_list import Filters, list_submissions
from service.submissions import own_practice_view, submit
from service.webdb import get_db, settings

TAG = ["submissions"]
StatusName = Literal["queued", "running", "graded", "failed"]


class PartOut(Out):
    """The verdict on one part."""

    correct: bool
    score: float
    message: str
    diagnosis: dict[str, Any] | None = None


class SubmissionOut(Out):
    """A submission, its status and (when the viewer may see it) its verdict."""

    id: int
    status: StatusName
    attempt: int
    score: float | None = Field(description="0 to 1; null until graded or while hidden.")
    correct: bool | None
    parts: dict[str, PartOut]
    message: str
    created_at: str | None
    started_at: str | None
    graded_at: str | None
    exercise: str
    exercise_version: int
    details: dict[str, Any] | None = None
    assignment_id: int | None
    learner_id: int
    submitted_by_id: int | None
    late: bool
    feedback: Literal["shown", "hidden"]
    feedback_available_at: str | None = None


class SubmissionPage(Page):
    """One page of submissions, newest first."""

    items: list[SubmissionOut]


class SubmissionQuery(In):
    """Filters of the submission list."""

    course: Id | None = Field(None, description="Submissions to the course's assignments.")
    assignment: Id | None = None
    exercise: Slug | None = None
    learner: Id | None = Field(None, description="A learner's user id.")
    status: StatusName | None = None
    since: AwareDatetime | None = Field(None, description="Created at or after.")
    until: AwareDatetime | None = Field(None, description="Created before.")
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(50, ge=1, le=200)


class PracticeIn(In):
    """An answer: `answers` for data exercises, `code` for code exercises."""

    answers: dict[str, Any] | None = None
    code: str | None = Field(None, max_length=100_000)
    variant: Literal["seeded", "worked-example"] | None = None


class VerdictOut(Out):
    """One grading of a submission."""

    number: int
    current: bool
    status: StatusName
    score: float | None
    verdict: dict[str, Any] | None
    error: str | None
    graded_at: datetime | None
    exercise_version: int
    regrade_job_id: int | None


class VerdictHistory(Out):
    """Every grading of a submission, oldest first: the original, then each regrade."""

    submission_id: int
    items: list[VerdictOut]


def visible_submission(user: User, submission_id: int) -> Submission:
    """A submission the caller may see: their own; staff: their courses'; admin: any."""
    db = get_db()
    # With its version, exercise and assignment: the view needs all three (one round trip).
    submission = db.get(
        Submission,
        submission_id,
        options=[
            joinedload(Submission.exercise_version).joinedload(ExerciseVersion.exercise),
            joinedload(Submission.assignment),
        ],
    )
    if submission is None:
        raise NotFound(f"no submission {submission_id}")
    if submission.user_id == user.id or is_admin(user):
        return submission
    assignment = submission.assignment
    if assignment is not None and course_role(db, user, assignment.course_id) in STAFF:
        return submission
    raise NotFound(f"no submission {submission_id}")


@bp.post("/exercises/<slug>/submissions")
@operation(tags=TAG, ok=202, also_ok=(200,), resp=SubmissionOut, key_header=True, errors=(503,))
def create_submission(slug: str, json: PracticeIn) -> tuple[SubmissionOut, int, dict[str, str]]:
    """Answer an exercise for practice: 202 with the submission's id and status.

    An `Idempotency-Key` makes retries safe: the same key answers the same submission (200).
    """
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        check_key(key)
    # The token's cached user, not merged into the session: practice reads only its columns.
    db, user = get_db(), token_user()
    submission, created = submit(
        db,
        dispatcher(),
        user,
        slug,
        json.model_dump(exclude_unset=True),
        idempotency_key=key,
        max_queue_depth=settings().max_queue_depth,
        hot_cache_seconds=settings().hot_cache_seconds,
    )
    location = url_for("api.submission_detail", submission_id=submission.id)
    view = SubmissionOut.model_validate(submission_view_for(db, submission, user))
    return view, 202 if created else 200, {"Location": location}


@bp.get("/submissions")
@operation(tags=TAG, resp=SubmissionPage)
def submission_list(query: SubmissionQuery) -> SubmissionPage:
    """Submissions, newest first, filtered; learners see their own, staff their course's."""
    db, user = get_db(), current_user()
    filters = Filters(
        course_id=query.course,
        assignment_id=query.assignment,
        exercise=query.exercise,
        learner_id=query.learner,
        status=SubmissionStatus(query.status) if query.status else None,
        since=query.since,
        until=query.until,
    )
    page, cursor = list_submissions(db, user, filters, query.cursor, query.limit)
    items = [SubmissionOut.model_validate(submission_view_for(db, s, user)) for s in page]
    return SubmissionPage(items=items, next_cursor=cursor)


@bp.get("/submissions/<int:submission_id>")
@operation(tags=TAG, resp=SubmissionOut)
def submission_detail(submission_id: int) -> SubmissionOut:
    """A submission's status, score and per-part verdict (hidden while its assignment says so)."""
    view = own_practice_view(get_db(), token_user().id, submission_id, settings().hot_cache_seconds)
    if view is None:  # an assignment's or someone else's: feedback policy and access rules
        user = current_user()
        view = submission_view_for(get_db(), visible_submission(user, submission_id), user)
    return SubmissionOut.model_validate(view)


@bp.get("/submissions/<int:submission_id>/verdicts")
@operation(tags=TAG, resp=VerdictHistory)
def submission_verdicts(submission_id: int) -> VerdictHistory:
    """Every grading of a submission, the original first (staff of its course)."""
    db, user = get_db(), current_user()
    submission = visible_submission(user, submission_id)
    assignment = submission.assignment
    staff = is_admin(user) or (
        assignment is not None and course_role(db, user, assignment.course_id) in STAFF
    )
    if not staff:
        raise NotFound(f"no grading history of submission {submission_id}")
    rows = history(db, submission)
    items = [
        VerdictOut(
            number=r.number,
            current=False,
            status=r.status.value,
            score=r.score,
            verdict=r.verdict,
            error=r.error,
            graded_at=r.graded_at,
            exercise_version=version_number(db, r.exercise_version_id),
            regrade_job_id=r.regrade_job_id,
        )
        for r in rows
    ]
    if not items:
        items.append(
            VerdictOut(
                number=1,
                current=True,
                status=submission.status.value,
                score=submission.score,
                verdict=submission.verdict,
                error=submission.error,
                graded_at=submission.graded_at,
                exercise_version=submission.exercise_version.number,
                regrade_job_id=None,
            )
        )
    else:
        # A failed regrade leaves the verdict before it in force.
        live = next(i for i in reversed(items) if i.status == "graded" or i.regrade_job_id is None)
        live.current = True
    return VerdictHistory(submission_id=submission.id, items=items)
