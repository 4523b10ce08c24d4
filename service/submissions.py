"""Accepting answers and showing their grading; the row is committed before it is enqueued."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from exercises.errors import AnswerFormatError
from exercises.registry import get_kind
from service import hotcache
from service.catalog import get_exercise, spec_of
from service.data.models import (
    Exercise,
    ExerciseVersion,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)
from service.data.session import alone_options
from service.errors import NotFound, TooManyRequests, ValidationFailed
from service.hotcache import TtlCache
from service.queueing import QUEUES, Dispatcher
from service.variants import check_label, get_or_create_variant

DEPTH_TTL_SECONDS = 0.5
RECOUNT_FROM = 0.5  # of the limit: from there on, the depth is counted on every POST
_SUBMISSIONS = cast(Table, Submission.__table__)


def _param(name: str) -> Any:
    return bindparam(name, type_=_SUBMISSIONS.c[name].type)


# One INSERT ... RETURNING, built once: the row comes back whole, with its attempt number
# counted inside the INSERT (one round trip, not two). Core, not the ORM's bulk INSERT, and
# one statement object reused: building and caching a statement per request cost more CPU
# than the round trip itself.
_INSERT = (
    insert(_SUBMISSIONS)
    .values(
        {
            name: _param(name)
            for name in (
                "user_id",
                "exercise_version_id",
                "variant_id",
                "status",
                "queue",
                "answer",
                "idempotency_key",
                "assignment_id",
                "submitted_by_id",
            )
        }
        | {
            "attempt": (
                select(func.count(Submission.id) + 1)
                .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
                .where(
                    Submission.user_id == bindparam("user_id"),
                    ExerciseVersion.exercise_id == bindparam("exercise_id"),
                )
                .scalar_subquery()
            )
        }
    )
    .returning(*_SUBMISSIONS.c)
)


class _DepthCount:
    """The last count of the queue in this process, and what this process added since."""

    def __init__(self) -> None:
        self.counted_at = -1e9
        self.depth = 0
        self.added = 0


_depths: dict[tuple[str, int], _DepthCount] = {}
_depth_lock = threading.Lock()


def _database(db: Session) -> str:
    """The session's database: the caches and counts of this module are per database."""
    return str(db.get_bind().engine.url)


def _queue_depth(db: Session, where: str, limit: int) -> int:
    """Queued submissions, counted only up to `limit` (an index-only scan of (status,
    updated_at), so its cost stays bounded however deep the queue).

    A count is reused for half a second per process, plus the submissions this process
    accepted since, while that estimate is below RECOUNT_FROM of the limit: under a burst
    most POSTs skip the query. Other processes' acceptances in that half second are not in
    the estimate, so from there on every POST counts: the queue passes the limit by at most
    the POSTs in flight at once.
    """
    key = (where, limit)
    now = time.monotonic()
    with _depth_lock:
        count = _depths.setdefault(key, _DepthCount())
        estimate = count.depth + count.added
        # Near the limit every POST counts afresh: the other processes' acceptances since
        # the last count are not in the estimate, and a fast web accepts many in 0.5 s.
        if now - count.counted_at < DEPTH_TTL_SECONDS and estimate < limit * RECOUNT_FROM:
            return estimate
    queued = (
        select(Submission.id)
        .where(Submission.status == SubmissionStatus.QUEUED)
        .limit(limit)
        .subquery()
    )
    depth = db.scalar(select(func.count()).select_from(queued)) or 0
    with _depth_lock:
        count.counted_at, count.depth, count.added = now, depth, 0
    return depth


def _accepted(where: str, limit: int) -> None:
    with _depth_lock:
        count = _depths.get((where, limit))
        if count is not None:
            count.added += 1


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


# (database, slug) -> the exercise and its current version, as detached snapshots
# (hotcache.snapshot) merged into each request's session; shared by every learner.
_EXERCISES: TtlCache[tuple[str, str], tuple[Exercise, ExerciseVersion]] = TtlCache(4096)
# (database, user id, slug, variant label) -> (version id, variant id): the learner may
# practise this version with that variant; see service/hotcache.py.
_PRACTICE: TtlCache[tuple[str, int, str, str], tuple[int, int]] = TtlCache()


def _current(
    db: Session, where: str, slug: str, cache_seconds: float
) -> tuple[Exercise, ExerciseVersion]:
    """The exercise with `slug` and its current version, both in `db`, or NotFound."""
    key = (where, slug)
    found = _EXERCISES.get(key, cache_seconds)
    if found is None:
        gen = hotcache.generation()
        exercise = get_exercise(db, slug)
        version = exercise.current_version
        _EXERCISES.put(key, (hotcache.snapshot(exercise), hotcache.snapshot(version)), gen)
        return exercise, version
    exercise = db.merge(found[0], load=False)
    version = db.merge(found[1], load=False)
    set_committed_value(version, "exercise", exercise)
    return exercise, version


def _practice(
    db: Session, where: str, user: User, slug: str, label: str, cache_seconds: float
) -> tuple[Exercise, ExerciseVersion, int]:
    """The exercise, its current version (both in `db`) and the learner's variant id, for
    practice; refused as `submit` documents. From the hot cache when it has them."""
    exercise, version = _current(db, where, slug, cache_seconds)
    key = (where, user.id, slug, label)
    found = _PRACTICE.get(key, cache_seconds)
    if found is not None and found[0] == version.id:
        return exercise, version, found[1]
    gen = hotcache.generation()
    # Practice: on exercises the user may see, and never revealing what an exam of theirs
    # hides (their numbers are the same there).
    from service.coursework import refuse_if_hidden_elsewhere
    from service.exercise_access import require_visible

    require_visible(db, user, exercise)
    refuse_if_hidden_elsewhere(db, user.id, exercise.id, utcnow())
    variant = get_or_create_variant(db, user.id, version, label)
    _PRACTICE.put(key, (version.id, variant.id), gen)
    return exercise, version, variant.id


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
    hot_cache_seconds: float = 0.0,
) -> tuple[Submission, bool]:
    """Validate, store and enqueue an answer; returns (submission, created).

    Only the columns of `user` are read: it may be a detached copy (the API's token cache)."""
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
    where = _database(db)
    if max_queue_depth is not None and _queue_depth(db, where, max_queue_depth) >= max_queue_depth:
        raise TooManyRequests("the grading queue is full; retry shortly", retry_after=5)
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"field": "body"}])
    label = check_label(payload.get("variant", "seeded"))
    if assignment_id is None:
        exercise, version, variant_id = _practice(db, where, user, slug, label, hot_cache_seconds)
    else:
        exercise = get_exercise(db, slug)
        version = exercise.current_version
        variant_id = get_or_create_variant(db, user.id, version, label).id
    spec = spec_of(version)
    kind = get_kind(spec.kind)
    answer = _answer_of(kind.answer_type, payload, lambda body: kind.validate_answer(spec, body))
    params = {
        "user_id": user.id,
        "exercise_id": exercise.id,
        "exercise_version_id": version.id,
        "variant_id": variant_id,
        "status": SubmissionStatus.QUEUED,
        "queue": QUEUES[kind.answer_type],
        "answer": answer,
        "idempotency_key": idempotency_key,
        "assignment_id": assignment_id,
        "submitted_by_id": submitted_by_id,
    }
    # When nothing came before it in this transaction (the hot path: everything else from
    # the caches), the INSERT is its own transaction, committed by the database as it runs.
    try:
        row = db.connection(execution_options=alone_options(db)).execute(_INSERT, params).one()
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
    # The row as a persistent object of the session, as loaded: its relationships load lazily.
    submission = Submission(**row._asdict())
    make_transient_to_detached(submission)
    db.add(submission)
    set_committed_value(submission, "exercise_version", version)
    if max_queue_depth is not None:
        _accepted(where, max_queue_depth)
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


class ViewColumns(Protocol):
    """What a submission's view reads: a Submission, or a row of `_VIEW`."""

    id: int
    status: SubmissionStatus
    attempt: int
    score: float | None
    verdict: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    graded_at: datetime | None


def submission_view(submission: ViewColumns, exercise: Exercise | None = None) -> dict[str, Any]:
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


# The columns of a submission's view, by id: one statement, no answer (a view never shows
# it), no joined version (its spec is large JSON the view does not need).
_VIEW = select(
    Submission.id,
    Submission.user_id,
    Submission.status,
    Submission.attempt,
    Submission.score,
    Submission.verdict,
    Submission.error,
    Submission.created_at,
    Submission.started_at,
    Submission.graded_at,
    Submission.exercise_version_id,
    Submission.assignment_id,
    Submission.submitted_by_id,
).where(Submission.id == bindparam("id"))
# (database, version id) -> (exercise slug, version number).
_VERSION_NAMES: TtlCache[tuple[str, int], tuple[str, int]] = TtlCache(4096)


def _version_names(
    db: Session, where: str, version_id: int, cache_seconds: float
) -> tuple[str, int]:
    key = (where, version_id)
    found = _VERSION_NAMES.get(key, cache_seconds)
    if found is None:
        gen = hotcache.generation()
        row = db.execute(
            select(Exercise.slug, ExerciseVersion.number)
            .join(ExerciseVersion.exercise)
            .where(ExerciseVersion.id == version_id)
        ).one()
        found = (row.slug, row.number)
        _VERSION_NAMES.put(key, found, gen)
    return found


def own_practice_view(
    db: Session, viewer_id: int, submission_id: int, cache_seconds: float = 0.0
) -> dict[str, Any] | None:
    """The view of one of the viewer's own practice submissions, from one statement (its
    exercise's names from the hot cache): API clients' status poll.
    None for any other submission (an assignment's, whose feedback policy applies, or someone
    else's): the caller then takes the general path; NotFound for no such submission.

    The SELECT runs in autocommit when it is the request's first statement (one round trip,
    not BEGIN + SELECT + ROLLBACK)."""
    alone = alone_options(db)
    row = db.connection(execution_options=alone).execute(_VIEW, {"id": submission_id}).one_or_none()
    if row is None:
        raise NotFound(f"no submission {submission_id}")
    if row.assignment_id is not None or row.user_id != viewer_id:
        if alone:
            db.rollback()  # the general path runs in a transaction again, not in autocommit
        return None
    where = _database(db)
    slug, number = _version_names(db, where, row.exercise_version_id, cache_seconds)
    view = submission_view(cast(ViewColumns, row))
    view["exercise"] = slug
    view["assignment_id"] = None
    view["learner_id"] = row.user_id
    view["submitted_by_id"] = row.submitted_by_id
    view["exercise_version"] = number
    view["late"] = False
    view["feedback"] = "shown"
    return view
