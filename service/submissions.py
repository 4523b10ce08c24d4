"""Accepting answers and showing their grading; the row is committed before it is enqueued."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exercises.errors import AnswerFormatError
from exercises.registry import get_kind
from service.catalog import get_exercise, spec_of
from service.data.models import (
    Exercise,
    ExerciseVersion,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)
from service.errors import NotFound, TooManyRequests, ValidationFailed
from service.queueing import QUEUES, Dispatcher
from service.variants import get_or_create_variant

DEPTH_TTL_SECONDS = 0.5
_full_since: dict[tuple[str, int], float] = {}


def _queue_depth(db: Session, limit: int) -> int:
    """Queued submissions, counted only up to `limit`: the cost of the check on every POST
    stays bounded however deep the queue (an index-only scan of (status, updated_at)).

    A full queue is remembered for half a second per process: under a burst, the refusals
    (most of its POSTs) skip the query. An acceptance is always counted afresh, so a stale
    count never lets the queue grow past the limit (beyond the POSTs in flight); a refusal
    may come up to half a second after the queue fell below it, well within its Retry-After.
    """
    key = (str(db.get_bind().engine.url), limit)
    now = time.monotonic()
    full_since = _full_since.get(key)
    if full_since is not None and now - full_since < DEPTH_TTL_SECONDS:
        return limit
    queued = (
        select(Submission.id)
        .where(Submission.status == SubmissionStatus.QUEUED)
        .limit(limit)
        .subquery()
    )
    depth = db.scalar(select(func.count()).select_from(queued)) or 0
    if depth >= limit:
        _full_since[key] = now
    else:
        _full_since.pop(key, None)
    return depth


ENVELOPE = {"data": "answers", "code": "code"}


def _answer_of(answer_type: str, payload: dict[str, Any], validate: Any) -> dict[str, Any]:
    """Check the body's envelope: {"answers": {...}} for data kinds, {"code": "..."} for code."""
    key = ENVELOPE[answer_type]
    unknown = sorted(set(payload) - {key, "variant"})
    if unknown:
        raise ValidationFailed(
            f"unknown field `{unknown[0]}` (expected `{key}` and optionally `variant`)",
            errors=[{"field": name, "message": "unknown field"} for name in unknown],
        )
    if key not in payload:
        raise ValidationFailed(
            f"the body needs `{key}`", errors=[{"field": key, "message": "required"}]
        )
    body = payload[key] if answer_type == "data" else {"code": payload[key]}
    try:
        answer: dict[str, Any] = validate(body)
    except AnswerFormatError as err:
        field = f"{key}.{err.field}" if answer_type == "data" and err.field != "answers" else key
        raise ValidationFailed(str(err), errors=[{"field": field, "message": str(err)}]) from err
    return answer if answer_type == "code" else {"answers": answer}


class KeyReused(ValidationFailed):
    """An Idempotency-Key sent again with a different request (RFC draft: 422)."""

    code = "idempotency-key-reused"
    title = "Idempotency-Key reused"


def _same_request(prior: Submission, slug: str, payload: Any) -> bool:
    """True when a repeated POST asks for what the first one asked: same exercise, variant
    and answer (so a retry is answered with the first submission, a new answer is not)."""
    if not isinstance(payload, dict) or prior.exercise_version.exercise.slug != slug:
        return False
    if payload.get("variant", "seeded") != prior.variant.label:
        return False
    if "code" in prior.answer:
        return bool(payload.get("code") == prior.answer["code"])
    return bool(payload.get("answers") == prior.answer.get("answers"))


def submit(
    db: Session,
    dispatcher: Dispatcher,
    user: User,
    slug: str,
    payload: Any,
    *,
    idempotency_key: str | None = None,
    max_queue_depth: int | None = None,
    assignment_id: int | None = None,
    submitted_by_id: int | None = None,
) -> tuple[Submission, bool]:
    """Validate, store and enqueue an answer; returns (submission, created)."""
    if idempotency_key is not None:
        prior = db.scalar(
            select(Submission).where(
                Submission.user_id == user.id, Submission.idempotency_key == idempotency_key
            )
        )
        if prior is not None:
            if not _same_request(prior, slug, payload):
                raise KeyReused(
                    "this Idempotency-Key was already used for a different answer or exercise;"
                    " use a new key for a new answer",
                    errors=[{"field": "Idempotency-Key", "message": "reused"}],
                )
            return prior, False
    # Before any other work, so that refusing a burst costs the web as little as possible.
    if max_queue_depth is not None and _queue_depth(db, max_queue_depth) >= max_queue_depth:
        raise TooManyRequests("the grading queue is full; retry shortly", retry_after=5)
    exercise = get_exercise(db, slug)
    version = exercise.current_version
    spec = spec_of(version)
    kind = get_kind(spec.kind)
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"field": "body"}])
    label = payload.get("variant", "seeded")
    answer = _answer_of(kind.answer_type, payload, lambda body: kind.validate_answer(spec, body))
    if assignment_id is None:
        # Practice: on exercises the user may see, and never revealing what an exam of theirs
        # hides (their numbers are the same there).
        from service.coursework import refuse_if_hidden_elsewhere
        from service.exercise_access import require_visible

        require_visible(db, user, exercise)
        refuse_if_hidden_elsewhere(db, user.id, exercise.id, utcnow())
    variant = get_or_create_variant(db, user.id, version, str(label))
    # The attempt number is counted inside the INSERT: one round trip, not two.
    attempt = (
        select(func.count(Submission.id) + 1)
        .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
        .where(Submission.user_id == user.id, ExerciseVersion.exercise_id == exercise.id)
        .scalar_subquery()
    )
    submission = Submission(
        user_id=user.id,
        exercise_version=version,
        variant_id=variant.id,
        attempt=attempt,
        status=SubmissionStatus.QUEUED,
        queue=QUEUES[kind.answer_type],
        answer=answer,
        idempotency_key=idempotency_key,
        assignment_id=assignment_id,
        submitted_by_id=submitted_by_id,
    )
    db.add(submission)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        if idempotency_key is None:
            raise
        prior = db.scalar(
            select(Submission).where(
                Submission.user_id == user.id, Submission.idempotency_key == idempotency_key
            )
        )
        if prior is None:
            raise
        return prior, False
    dispatcher.enqueue(submission.id, submission.queue)
    return submission, True


def get_submission(db: Session, user: User, submission_id: int) -> Submission:
    """A submission the user may see (learners: only their own; others' ids are 404)."""
    submission = db.get(Submission, submission_id)
    if submission is None or (submission.user_id != user.id and user.role.value == "learner"):
        raise NotFound(f"no submission {submission_id}")
    return submission


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def submission_view(submission: Submission, exercise: Exercise | None = None) -> dict[str, Any]:
    """The API's view of a submission: status, score, and each part's verdict."""
    verdict = submission.verdict or {}
    parts = {
        p["part"]: {
            "correct": p["correct"],
            "score": p.get("score", 1.0 if p["correct"] else 0.0),
            "message": p["message"],
            "diagnosis": p.get("diagnosis"),
        }
        for p in verdict.get("parts", [])
    }
    view: dict[str, Any] = {
        "id": submission.id,
        "status": submission.status.value,
        "attempt": submission.attempt,
        "score": submission.score,
        "correct": bool(verdict) and all(p["correct"] for p in parts.values()),
        "parts": parts,
        "message": verdict.get("message") or submission.error or "",
        "created_at": _iso(submission.created_at),
        "started_at": _iso(submission.started_at),
        "graded_at": _iso(submission.graded_at),
    }
    if exercise is not None:
        view["exercise"] = exercise.slug
    details = verdict.get("details") or {}
    if details:
        view["details"] = details
    return view
