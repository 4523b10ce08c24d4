"""Grading one submission: claim it, compute (or reuse) the reference, judge, write once.

The status transition is guarded: a submission is claimed with a fresh token and
its verdict is written only while that claim holds, so a duplicate delivery
writes one result and a graded submission is never graded again.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from exercises.codejob import CodeRun
from exercises.model import Variant as DomainVariant
from exercises.model import Verdict
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.catalog import spec_of
from service.data.models import ExerciseVersion, Submission, SubmissionStatus, Variant, utcnow
from service.data.session import session_scope
from service.variants import as_domain
from worker import observability
from worker.sandbox.errors import SandboxError, SandboxUnavailable

log = logging.getLogger(__name__)

# Keyed by (database, variant id): a process may serve more than one database (tests, tools).
_REFERENCES: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
_REFERENCE_CACHE_SIZE = 4096
# Claims of one submission without a result before it is failed: a submission that kills its
# worker every time (a poison message) must not be re-delivered forever.
MAX_GRADING_ATTEMPTS = 10


class GradingFailed(RuntimeError):
    """Grading hit a defect; the submission was marked failed before this was raised."""


def _cached_reference(key: tuple[str, int]) -> dict[str, Any] | None:
    ref = _REFERENCES.get(key)
    if ref is not None:
        _REFERENCES.move_to_end(key)
    return ref


def _remember(key: tuple[str, int], reference: dict[str, Any]) -> None:
    _REFERENCES[key] = reference
    if len(_REFERENCES) > _REFERENCE_CACHE_SIZE:
        _REFERENCES.popitem(last=False)


def reference_for(database_url: str, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
    """The variant's reference: from memory, the database, or autograd (then stored)."""
    key = (database_url, variant.id)
    cached = _cached_reference(key) or variant.reference
    if cached is not None:
        _remember(key, cached)
        return cached
    reference = with_graph(
        spec, as_domain(variant), get_kind(spec.kind).compute_reference(spec, as_domain(variant))
    )
    with session_scope(database_url) as db:
        db.execute(
            update(Variant)
            .where(Variant.id == variant.id, Variant.reference.is_(None))
            .values(reference=reference)
        )
    _remember(key, reference)
    return reference


def with_graph(
    spec: ExerciseSpec, variant: DomainVariant, reference: dict[str, Any]
) -> dict[str, Any]:
    """The reference plus the computational graph (autograd's gradient at every node) that the
    portal draws after grading; only for forward code with a scalar output."""
    if not spec.forward.strip() or not get_kind(spec.kind).scalar_output or "graph" in reference:
        return reference
    from exercises.graph import build_graph

    try:
        graph = build_graph(spec, variant)
    except RuntimeError:
        # The graph is for display only: autograd refusing to draw one must not fail grading.
        log.warning("no graph for %s", spec.slug, exc_info=True)
        return reference
    return {**reference, "graph": graph}


def _claim(database_url: str, submission_id: int) -> str | None:
    token = str(uuid.uuid4())
    now = utcnow()
    with session_scope(database_url) as db:
        result = db.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.status.in_([SubmissionStatus.QUEUED, SubmissionStatus.RUNNING]),
                Submission.grading_attempts < MAX_GRADING_ATTEMPTS,
            )
            .values(
                status=SubmissionStatus.RUNNING,
                claim_token=token,
                started_at=now,
                updated_at=now,
                grading_attempts=Submission.grading_attempts + 1,
            )
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return token
        gave_up = db.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.status.in_([SubmissionStatus.QUEUED, SubmissionStatus.RUNNING]),
                Submission.grading_attempts >= MAX_GRADING_ATTEMPTS,
            )
            .values(
                status=SubmissionStatus.FAILED,
                error="grading did not complete after repeated attempts; staff have been notified",
                graded_at=now,
                updated_at=now,
            )
        )
        if gave_up.rowcount:  # type: ignore[attr-defined]
            log.error(
                "gave up on submission %s after %d claims", submission_id, MAX_GRADING_ATTEMPTS
            )
        return None


def _finish(database_url: str, submission_id: int, token: str, **values: Any) -> bool:
    now = utcnow()
    with session_scope(database_url) as db:
        result = db.execute(
            update(Submission)
            .where(
                Submission.id == submission_id,
                Submission.claim_token == token,
                Submission.status == SubmissionStatus.RUNNING,
            )
            .values(updated_at=now, **values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def _judge(
    database_url: str, submission: Submission, spec: ExerciseSpec, variant: Variant
) -> Verdict:
    kind = get_kind(spec.kind)
    reference = reference_for(database_url, spec, variant)
    domain_variant = as_domain(variant)
    if kind.answer_type == "code":
        job = kind.code_job(spec, domain_variant, submission.answer)
        return kind.grade_run(spec, domain_variant, reference, run_code(job))
    return kind.grade(spec, domain_variant, reference, submission.answer["answers"])


def run_code(job: Any) -> CodeRun:
    """Run a code job in this worker's sandbox (numeric-only workers never start one)."""
    from worker.sandbox import get_sandbox

    try:
        result: CodeRun = get_sandbox().run(job)
    except SandboxError:
        observability.observe_sandbox_error()
        raise
    observability.observe_sandbox_run(result)
    return result


def grade_submission(database_url: str, submission_id: int) -> str:
    """Grade a submission once; returns "graded", "failed" or "skipped"."""
    token = _claim(database_url, submission_id)
    if token is None:
        return "skipped"
    with session_scope(database_url) as db:
        # The submission with its version and variant in one round trip.
        row = db.execute(
            select(Submission, ExerciseVersion, Variant)
            .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
            .join(Variant, Submission.variant_id == Variant.id)
            .where(Submission.id == submission_id)
        ).one_or_none()
        if row is None:
            return "skipped"
        submission, version, variant = row
        spec = spec_of(version)  # parsed once per version and process
    try:
        verdict = _judge(database_url, submission, spec, variant)
    except DBAPIError:
        raise  # infrastructure, not a defect: the task is retried and re-claims the submission
    except SandboxUnavailable as err:
        # This worker cannot isolate code: refuse with the reason, never run it unjailed.
        _finish(
            database_url,
            submission_id,
            token,
            status=SubmissionStatus.FAILED,
            error=f"code answers cannot be graded right now: {err}",
            graded_at=utcnow(),
        )
        log.error("refused code submission %s: %s", submission_id, err)
        observability.observe_grading(submission.queue, "failed", submission.created_at)
        return "failed"
    except SandboxError:
        raise  # the zygote crashed or the jail could not be set up: retried, then re-claimed
    except Exception as err:
        # A defect in grading (not the learner's mistake): record it so the learner is not left
        # waiting, then re-raise so it is logged and counted.
        _finish(
            database_url,
            submission_id,
            token,
            status=SubmissionStatus.FAILED,
            error="grading failed because of an internal error; staff have been notified",
            graded_at=utcnow(),
        )
        log.exception("grading submission %s failed", submission_id)
        observability.observe_grading(submission.queue, "failed", submission.created_at)
        raise GradingFailed(f"grading submission {submission_id} failed: {err}") from err
    wrote = _finish(
        database_url,
        submission_id,
        token,
        status=SubmissionStatus.GRADED,
        verdict=verdict.to_dict(),
        score=verdict.score,
        graded_at=utcnow(),
    )
    observability.observe_grading(
        submission.queue, "graded" if wrote else "skipped", submission.created_at
    )
    return "graded" if wrote else "skipped"
