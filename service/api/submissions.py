"""POST /exercises/{slug}/submissions and GET /submissions/{id}."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from service.api.blueprint import bp, current_user, json_body
from service.errors import ValidationFailed
from service.queueing import dispatcher
from service.submissions import get_submission, submission_view, submit
from service.webdb import get_db, settings

MAX_IDEMPOTENCY_KEY = 200


@bp.post("/exercises/<slug>/submissions")
def create_submission(slug: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Accept an answer for grading: 202 with the submission's id and status."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
            errors=[{"field": "Idempotency-Key"}],
        )
    db = get_db()
    submission, created = submit(
        db,
        dispatcher(),
        current_user(),
        slug,
        json_body(),
        idempotency_key=key,
        max_queue_depth=settings().max_queue_depth,
    )
    location = url_for("api.submission_detail", submission_id=submission.id)
    view = submission_view(submission, submission.exercise_version.exercise)
    return view, 202 if created else 200, {"Location": location}


@bp.get("/submissions/<int:submission_id>")
def submission_detail(submission_id: int) -> dict[str, Any]:
    """A submission's status, score and per-part verdict."""
    submission = get_submission(get_db(), current_user(), submission_id)
    return submission_view(submission, submission.exercise_version.exercise)
