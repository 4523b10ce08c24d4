"""Grading submissions in batches: one claim, references from memory, the verdicts, one write.

The status transition is guarded: a submission is claimed with a fresh token and
its verdict is written only while that claim holds, so a duplicate delivery
writes one result and a graded submission is never graded again.

The database work of a batch is a few statements on SQLAlchemy Core connections (no ORM
session), built once per process. On PostgreSQL their SQL text does not depend on the
batch size (the ids travel as one array, the results as one JSON array that a single
UPDATE ... FROM json_to_recordset writes), so each compiles once and psycopg prepares it
on the server; every write is one statement, run in autocommit mode. SQLite takes the ids
as an expanding IN (compiled once too) and the results by a CASE statement built per
batch, in a transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Table,
    Text,
    TextClause,
    Update,
    any_,
    bindparam,
    case,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY as postgresql_array
from sqlalchemy.exc import DBAPIError

from exercises.codejob import CodeRun
from exercises.model import Variant as DomainVariant
from exercises.model import Verdict
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.catalog import spec_of
from service.data.models import (
    ExerciseVersion,
    Submission,
    SubmissionStatus,
    UTCDateTime,
    Variant,
    utcnow,
)
from service.data.session import get_engine
from service.lru import Lru
from service.variants import as_domain
from worker import observability
from worker.sandbox.errors import SandboxError, SandboxUnavailable

log = logging.getLogger(__name__)


def warm_up() -> None:
    """Import torch and run autograd once before the first grading, single-threaded.

    Grading ops are tiny, so one thread is fastest, and a process that forks pool
    children after multi-threaded torch ops could deadlock them.
    """
    import torch

    torch.set_num_threads(1)
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (torch.sigmoid(3 * x + 1) ** 2).backward()
    # torch.autograd.grad imports torch.fx and sympy on first use (about a second): pay it
    # here, not in the first learner's grading.
    out = torch.tanh(x * 2)
    torch.autograd.grad(out, [x], torch.ones_like(out), allow_unused=True)
    import exercises.graph
    import exercises.reference  # noqa: F401


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
    with _connect(database_url) as (conn, statements):
        conn.execute(
            statements.store_reference, {"variant_id": variant.id, "new_reference": reference}
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


_SUBMISSIONS = cast(Table, Submission.__table__)
_VARIANT_ROWS = cast(Table, Variant.__table__)
_VERSION_ROWS = cast(Table, ExerciseVersion.__table__)
_CLAIMED_COLUMNS = (
    _SUBMISSIONS.c.id,
    _SUBMISSIONS.c.exercise_version_id,
    _SUBMISSIONS.c.variant_id,
    _SUBMISSIONS.c.answer,
    _SUBMISSIONS.c.queue,
    _SUBMISSIONS.c.created_at,
)
# Two comparisons, not IN (...): a literal IN list is re-rendered at every execution.
_GRADABLE = or_(
    _SUBMISSIONS.c.status == SubmissionStatus.QUEUED,
    _SUBMISSIONS.c.status == SubmissionStatus.RUNNING,
)
_GAVE_UP = "grading did not complete after repeated attempts; staff have been notified"

# PostgreSQL writes every result of a batch with this one statement, whatever the batch size:
# the results travel as one JSON array (json, not jsonb, so that a verdict is stored as
# written). A result without a verdict or score (a failure) keeps the stored one, which on a
# running submission is NULL: only this write sets them. `status` is a VARCHAR (the enum is
# not native), `verdict` a json column.
_FINISH_POSTGRESQL = text(
    """
    UPDATE submissions AS s
    SET status = v.status,
        verdict = COALESCE(v.verdict, s.verdict),
        score = COALESCE(v.score, s.score),
        error = v.error,
        graded_at = v.graded_at,
        updated_at = :now
    FROM json_to_recordset(CAST(:rows AS json)) AS v(
        id integer,
        status varchar(20),
        verdict json,
        score double precision,
        error text,
        graded_at timestamptz
    )
    WHERE s.id = v.id AND s.claim_token = :token AND s.status = 'running'
    RETURNING s.id
    """
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("rows", type_=Text()),
    bindparam("token", type_=String()),
)


@dataclass(frozen=True)
class _Statements:
    """The batch path's statements for one dialect, built once per process. The ids are one
    array parameter on PostgreSQL (the SQL text is the same for every batch size) and an
    expanding IN elsewhere, so each statement is compiled once and then found in the
    compiled cache."""

    claim: Update
    give_up: Update
    versions: Select[Any]
    variants: Select[Any]
    store_reference: Update
    finish: TextClause | None  # None: a CASE statement per batch (SQLite)


_STATEMENTS: dict[str, _Statements] = {}


def _statements(dialect: str) -> _Statements:
    statements = _STATEMENTS.get(dialect)
    if statements is None:
        statements = _STATEMENTS[dialect] = _build_statements(dialect)
    return statements


def _build_statements(dialect: str) -> _Statements:
    postgresql = dialect == "postgresql"

    def one_of_ids(column: ColumnElement[int]) -> ColumnElement[bool]:
        if postgresql:
            return column == any_(bindparam("ids", type_=postgresql_array(Integer)))
        return column.in_(bindparam("ids", expanding=True))

    t = _SUBMISSIONS
    now = bindparam("now", type_=UTCDateTime())
    claim = (
        update(t)
        .where(one_of_ids(t.c.id), _GRADABLE, t.c.grading_attempts < bindparam("max_attempts"))
        .values(
            status=SubmissionStatus.RUNNING,
            claim_token=bindparam("token", type_=t.c.claim_token.type),
            started_at=now,
            updated_at=now,
            grading_attempts=t.c.grading_attempts + 1,
        )
        .returning(*_CLAIMED_COLUMNS)
    )
    give_up = (
        update(t)
        .where(one_of_ids(t.c.id), _GRADABLE, t.c.grading_attempts >= bindparam("max_attempts"))
        .values(status=SubmissionStatus.FAILED, error=_GAVE_UP, graded_at=now, updated_at=now)
        .returning(t.c.id)
    )
    v, ev = _VARIANT_ROWS, _VERSION_ROWS
    return _Statements(
        claim=claim,
        give_up=give_up,
        versions=select(ev.c.id, ev.c.content_hash, ev.c.spec).where(one_of_ids(ev.c.id)),
        variants=select(v.c.id, v.c.params, v.c.seed, v.c.label, v.c.reference).where(
            one_of_ids(v.c.id)
        ),
        store_reference=update(v)
        .where(v.c.id == bindparam("variant_id"), v.c.reference.is_(None))
        .values(reference=bindparam("new_reference", type_=v.c.reference.type)),
        finish=_FINISH_POSTGRESQL if postgresql else None,
    )


@contextmanager
def _connect(database_url: str) -> Iterator[tuple[Connection, _Statements]]:
    """A connection for the batch path, with the statements of its database.

    Each write of the batch path is one statement, atomic by itself, so on PostgreSQL it runs
    in autocommit mode: no BEGIN and COMMIT round trips around it. Elsewhere (SQLite) the
    block is one transaction, committed at its end.
    """
    engine = get_engine(database_url)
    statements = _statements(engine.dialect.name)
    if statements.finish is None:
        with engine.begin() as conn:
            yield conn, statements
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn, statements


def _claim(database_url: str, submission_ids: list[int]) -> tuple[str, list[Claimed]]:
    """Claim every gradable submission of the batch in one statement, with one fresh token.

    A submission claimed too often without a result (a poison message) is failed instead.
    """
    token = str(uuid.uuid4())
    now = utcnow()
    params = {
        "ids": submission_ids,
        "token": token,
        "now": now,
        "max_attempts": MAX_GRADING_ATTEMPTS,
    }
    with _connect(database_url) as (conn, statements):
        rows = conn.execute(statements.claim, params).all()
        claimed = sorted((Claimed(*row) for row in rows), key=lambda c: c.id)
        if len(claimed) < len(set(submission_ids)):
            gave_up = conn.execute(statements.give_up, params).scalars().all()
            for submission_id in gave_up:
                log.error(
                    "gave up on submission %s after %d claims", submission_id, MAX_GRADING_ATTEMPTS
                )
    return token, claimed


def _finish(database_url: str, token: str, results: dict[int, dict[str, Any]]) -> set[int]:
    """Write every result of the batch in one statement, each only while its claim holds;
    returns the ids written (a re-delivery that re-claimed a submission wins over us).

    A result has a status, an error (None clears it) and graded_at, and a verdict and a score
    when graded; a failure leaves the stored verdict and score (NULL on a running submission).
    """
    if not results:
        return set()
    now = utcnow()
    with _connect(database_url) as (conn, statements):
        if statements.finish is None:
            return set(conn.execute(_finish_by_case(token, results, now)).scalars())
        rows = json.dumps([_record(sid, results[sid]) for sid in sorted(results)])
        params = {"rows": rows, "token": token, "now": now}
        return set(conn.execute(statements.finish, params).scalars())


def _record(submission_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """One result as a JSON object for PostgreSQL's one-statement write (a failure's verdict
    and score are null: the statement keeps the stored ones)."""
    return {
        "id": submission_id,
        "status": values["status"],
        "verdict": values.get("verdict"),
        "score": values.get("score"),
        "error": values["error"],
        "graded_at": values["graded_at"].isoformat(),
    }


def _finish_by_case(token: str, results: dict[int, dict[str, Any]], now: datetime) -> Update:
    """The write on other databases (SQLite): SET col = CASE id WHEN .. THEN .. END, whose
    SQL text depends on the batch."""
    t = _SUBMISSIONS

    def column(name: str) -> Any:
        """CASE id WHEN ... THEN its value END; rows without one keep theirs."""
        current = t.c[name]
        whens = [
            (t.c.id == sid, bindparam(None, values[name], type_=current.type))
            for sid, values in sorted(results.items())
            if name in values
        ]
        return case(*whens, else_=current)

    names = sorted({name for values in results.values() for name in values})
    return (
        update(t)
        .where(
            t.c.id.in_(sorted(results)),
            t.c.claim_token == token,
            t.c.status == SubmissionStatus.RUNNING,
        )
        .values(updated_at=now, **{name: column(name) for name in names})
        .returning(t.c.id)
    )


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
        with _connect(database_url) as (conn, statements):
            if missing_versions:
                for row in conn.execute(statements.versions, {"ids": sorted(missing_versions)}):
                    version = ExerciseVersion(
                        id=row.id, content_hash=row.content_hash, spec=row.spec
                    )
                    specs[row.id] = spec_of(version)  # versions are immutable
                    _VERSIONS.put((database_url, row.id), specs[row.id])
            if missing_variants:
                for row in conn.execute(statements.variants, {"ids": sorted(missing_variants)}):
                    variant = Variant(params=row.params, seed=row.seed, label=row.label)
                    data = _VariantData(row.id, as_domain(variant), row.reference)
                    variants[row.id] = data
                    _VARIANTS.put((database_url, row.id), data)
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
