"""Grading submissions in batches: one claim, references from memory, the verdicts, one write.

The status transition is guarded: a submission is claimed with a fresh token and
its verdict is written only while that claim holds, so a duplicate delivery
writes one result and a graded submission is never graded again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.exc import DBAPIError

from exercises.codejob import CodeRun
from exercises.model import Variant as DomainVariant
from exercises.model import Verdict
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.catalog import spec_of
from service.data.models import ExerciseVersion, Submission, SubmissionStatus, Variant, utcnow
from service.data.session import session_scope
from service.lru import Lru
from service.variants import as_domain
from worker import observability
from worker.sandbox.errors import SandboxError, SandboxUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _VariantData:
    """A variant as grading needs it: its numbers never change once made, and its reference
    (None until first computed) is written once."""

    id: int
    domain: DomainVariant
    reference: dict[str, Any] | None


# Keyed by (database, id): a process may serve more than one database (tests, tools).
_VERSIONS: Lru[tuple[str, int], ExerciseSpec] = Lru(1024)
_VARIANTS: Lru[tuple[str, int], _VariantData] = Lru(16384)
# Claims of one submission without a result before it is failed: a submission that kills its
# worker every time (a poison message) must not be re-delivered forever.
MAX_GRADING_ATTEMPTS = 10


class GradingFailed(RuntimeError):
    """Grading hit a defect; the submission was marked failed before this was raised."""


def reference_for(database_url: str, spec: ExerciseSpec, variant: _VariantData) -> dict[str, Any]:
    """The variant's reference: the one stored (and cached with the variant), or autograd's,
    then stored in the database and in this process's cache."""
    cached = variant if variant.reference is not None else _VARIANTS.get((database_url, variant.id))
    if cached is not None and cached.reference is not None:
        return cached.reference  # stored, or computed for an earlier answer of the batch
    reference = with_graph(
        spec, variant.domain, get_kind(spec.kind).compute_reference(spec, variant.domain)
    )
    with session_scope(database_url) as db:
        db.execute(
            update(Variant)
            .where(Variant.id == variant.id, Variant.reference.is_(None))
            .values(reference=reference)
        )
    _VARIANTS.put((database_url, variant.id), replace(variant, reference=reference))
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


@dataclass(frozen=True)
class Claimed:
    """A submission this worker holds: what grading needs, returned by the claim itself."""

    id: int
    exercise_version_id: int
    variant_id: int
    answer: dict[str, Any]
    queue: str
    created_at: datetime


_CLAIMED_COLUMNS = (
    Submission.id,
    Submission.exercise_version_id,
    Submission.variant_id,
    Submission.answer,
    Submission.queue,
    Submission.created_at,
)
_GRADABLE = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING)


def _claim(database_url: str, submission_ids: list[int]) -> tuple[str, list[Claimed]]:
    """Claim every gradable submission of the batch in one statement, with one fresh token.

    A submission claimed too often without a result (a poison message) is failed instead.
    """
    token = str(uuid.uuid4())
    now = utcnow()
    with session_scope(database_url) as db:
        rows = db.execute(
            update(Submission)
            .where(
                Submission.id.in_(submission_ids),
                Submission.status.in_(_GRADABLE),
                Submission.grading_attempts < MAX_GRADING_ATTEMPTS,
            )
            .values(
                status=SubmissionStatus.RUNNING,
                claim_token=token,
                started_at=now,
                updated_at=now,
                grading_attempts=Submission.grading_attempts + 1,
            )
            .returning(*_CLAIMED_COLUMNS)
            .execution_options(synchronize_session=False)
        ).all()
        claimed = sorted((Claimed(*row) for row in rows), key=lambda c: c.id)
        if len(claimed) < len(set(submission_ids)):
            gave_up = db.execute(
                update(Submission)
                .where(
                    Submission.id.in_(submission_ids),
                    Submission.status.in_(_GRADABLE),
                    Submission.grading_attempts >= MAX_GRADING_ATTEMPTS,
                )
                .values(
                    status=SubmissionStatus.FAILED,
                    error="grading did not complete after repeated attempts;"
                    " staff have been notified",
                    graded_at=now,
                    updated_at=now,
                )
                .returning(Submission.id)
                .execution_options(synchronize_session=False)
            ).scalars()
            for submission_id in gave_up:
                log.error(
                    "gave up on submission %s after %d claims", submission_id, MAX_GRADING_ATTEMPTS
                )
    return token, claimed


def _finish(database_url: str, token: str, results: dict[int, dict[str, Any]]) -> set[int]:
    """Write every result of the batch in one statement, each only while its claim holds;
    returns the ids written (a re-delivery that re-claimed a submission wins over us)."""
    if not results:
        return set()
    now = utcnow()
    ids = sorted(results)

    def column(name: str) -> Any:
        """CASE id WHEN ... THEN its value END; rows without one keep theirs."""
        current = Submission.__table__.c[name]
        whens = [
            (Submission.id == sid, bindparam(None, values[name], type_=current.type))
            for sid, values in sorted(results.items())
            if name in values
        ]
        return case(*whens, else_=current)

    names = sorted({name for values in results.values() for name in values})
    columns = {name: column(name) for name in names}
    with session_scope(database_url) as db:
        written = db.execute(
            update(Submission)
            .where(
                Submission.id.in_(ids),
                Submission.claim_token == token,
                Submission.status == SubmissionStatus.RUNNING,
            )
            .values(updated_at=now, **columns)
            .returning(Submission.id)
            .execution_options(synchronize_session=False)
        ).scalars()
        return set(written)


def _judge(database_url: str, c: Claimed, spec: ExerciseSpec, variant: _VariantData) -> Verdict:
    reference = reference_for(database_url, spec, variant)
    return judge(spec, variant.domain, reference, c.answer)


def judge(
    spec: ExerciseSpec, variant: DomainVariant, reference: dict[str, Any], answer: dict[str, Any]
) -> Verdict:
    """The verdict on a stored answer against a reference: code runs in the sandbox first."""
    kind = get_kind(spec.kind)
    if kind.answer_type == "code":
        job = kind.code_job(spec, variant, answer)
        return kind.grade_run(spec, variant, reference, run_code(job))
    return kind.grade(spec, variant, reference, answer["answers"])


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
    return grade_batch(database_url, [submission_id]).get(submission_id, "skipped")


def _sources(
    database_url: str, claimed: list[Claimed]
) -> tuple[dict[int, ExerciseSpec], dict[int, _VariantData]]:
    """The specs and variants of a batch: from this process's caches, else one query each."""
    specs: dict[int, ExerciseSpec] = {}
    variants: dict[int, _VariantData] = {}
    missing_versions = set()
    missing_variants = set()
    for c in claimed:
        spec = _VERSIONS.get((database_url, c.exercise_version_id))
        if spec is None:
            missing_versions.add(c.exercise_version_id)
        else:
            specs[c.exercise_version_id] = spec
        data = _VARIANTS.get((database_url, c.variant_id))
        if data is None:
            missing_variants.add(c.variant_id)
        else:
            variants[c.variant_id] = data
    if missing_versions or missing_variants:
        with session_scope(database_url) as db:
            if missing_versions:
                for version in db.scalars(
                    select(ExerciseVersion).where(ExerciseVersion.id.in_(missing_versions))
                ):
                    specs[version.id] = spec_of(version)  # versions are immutable
                    _VERSIONS.put((database_url, version.id), specs[version.id])
            if missing_variants:
                for variant in db.scalars(select(Variant).where(Variant.id.in_(missing_variants))):
                    data = _VariantData(variant.id, as_domain(variant), variant.reference)
                    variants[variant.id] = data
                    _VARIANTS.put((database_url, variant.id), data)
    return specs, variants


def _grade_one(
    database_url: str, c: Claimed, spec: ExerciseSpec, variant: _VariantData
) -> dict[str, Any]:
    """The values to write for one claimed submission (a verdict, or a failure with its reason).

    Raises DBAPIError and SandboxError (infrastructure: the batch is retried and re-claims).
    """
    try:
        verdict = _judge(database_url, c, spec, variant)
    except (DBAPIError, SandboxError) as err:
        if isinstance(err, SandboxUnavailable):
            # This worker cannot isolate code: refuse with the reason, never run it unjailed.
            log.error("refused code submission %s: %s", c.id, err)
            return {
                "status": SubmissionStatus.FAILED,
                "error": f"code answers cannot be graded right now: {err}",
                "graded_at": utcnow(),
            }
        raise
    except Exception:
        # A defect in grading (not the learner's mistake): record it so the learner is not
        # left waiting, and log it with its traceback.
        log.exception("grading submission %s failed", c.id)
        return {
            "status": SubmissionStatus.FAILED,
            "error": "grading failed because of an internal error; staff have been notified",
            "graded_at": utcnow(),
            "defect": True,
        }
    return {
        "status": SubmissionStatus.GRADED,
        "verdict": verdict.to_dict(),
        "score": verdict.score,
        "error": None,
        "graded_at": utcnow(),
    }


def grade_batch(database_url: str, submission_ids: list[int]) -> dict[int, str]:
    """Grade a batch: one claim, the grading in memory, one write; each id -> "graded",
    "failed" or "skipped" (not gradable now, or a re-delivery took it over).

    A database or sandbox fault is raised after writing the results already made, so that a
    retry re-claims (and regrades) only the rest. Raises GradingFailed after writing when a
    grading defect failed a submission of the batch.
    """
    token, claimed = _claim(database_url, submission_ids)
    outcomes = {sid: "skipped" for sid in submission_ids}
    if not claimed:
        return outcomes
    specs, variants = _sources(database_url, claimed)
    results: dict[int, dict[str, Any]] = {}
    fault: BaseException | None = None
    for c in claimed:
        try:
            results[c.id] = _grade_one(
                database_url, c, specs[c.exercise_version_id], variants[c.variant_id]
            )
        except (DBAPIError, SandboxError) as err:
            fault = err
            break
    defects = [sid for sid, values in results.items() if values.pop("defect", False)]
    written = _finish(database_url, token, results)
    for c in claimed:
        if c.id in results:
            outcome = results[c.id]["status"].value if c.id in written else "skipped"
            outcomes[c.id] = outcome
            observability.observe_grading(c.queue, outcome, c.created_at)
    if fault is not None:
        raise fault
    if defects:
        raise GradingFailed(f"grading submissions {defects} failed")
    return outcomes
