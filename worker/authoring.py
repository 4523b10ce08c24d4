"""The dry run of an authored exercise: autograd on the worked example, its graph, and checks
that the file's own expectations hold, all before anything is saved.

The forward code is a restricted DSL that exercises/ interprets without exec; a code
exercise's model solution runs in the sandbox like any learner's code.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import update

from exercises.graph import build_graph
from exercises.kinds.base import Kind
from exercises.model import Variant
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.data.models import ExerciseDryRun, JobStatus, utcnow
from service.data.session import session_scope
from worker.grading import run_code

log = logging.getLogger(__name__)

Problem = tuple[str, str]
CHECK_SEEDS = (1, 2, 3)


def dry_run(database_url: str, dry_run_id: int) -> str:
    """Run one queued dry run and store its result; returns its final status."""
    with session_scope(database_url) as db:
        claimed = db.execute(
            update(ExerciseDryRun)
            .where(ExerciseDryRun.id == dry_run_id, ExerciseDryRun.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return "skipped"
        row = db.get(ExerciseDryRun, dry_run_id)
        data = dict(row.spec) if row is not None else {}
    try:
        result, problems = check_exercise(ExerciseSpec.model_validate(data))
    except Exception:
        # A defect, not the author's mistake: record it so the author is not left waiting,
        # then re-raise so it is logged and counted.
        internal = [("(dry run)", "the dry run hit an internal error; staff have been notified")]
        _store(database_url, dry_run_id, {}, internal)
        log.exception("dry run %s failed", dry_run_id)
        raise
    _store(database_url, dry_run_id, result, problems)
    return "failed" if problems else "done"


def _store(
    database_url: str, dry_run_id: int, result: dict[str, Any], problems: list[Problem]
) -> None:
    with session_scope(database_url) as db:
        db.execute(
            update(ExerciseDryRun)
            .where(ExerciseDryRun.id == dry_run_id)
            .values(
                status=JobStatus.FAILED if problems else JobStatus.DONE,
                result=json_safe(result),
                problems=[{"field": f, "message": m} for f, m in problems],
                finished_at=utcnow(),
            )
        )


def check_exercise(spec: ExerciseSpec) -> tuple[dict[str, Any], list[Problem]]:
    """The worked example's reference, graph and learner view, and every problem found."""
    kind = get_kind(spec.kind)
    worked = kind.worked_example(spec)
    try:
        reference = kind.compute_reference(spec, worked)
    # The author's forward code failing under autograd is the finding a dry run exists to
    # report, whatever the exception; nothing else runs after it.
    except Exception as err:
        return {}, [("forward", f"autograd failed on the worked example: {err}")]
    result: dict[str, Any] = {
        "worked_example": worked.params,
        "reference": reference,
        "graph": build_graph(spec, worked) if spec.forward.strip() else None,
        "view": kind.learner_view(spec, worked),
    }
    problems = _worked_example_problems(kind, spec, worked, reference)
    problems += _variant_problems(kind, spec)
    problems += _solution_problems(kind, spec, worked, reference)
    return result, problems


def _worked_example_problems(
    kind: Kind, spec: ExerciseSpec, worked: Variant, reference: dict[str, Any]
) -> list[Problem]:
    """The file's worked-example answers must be right by autograd."""
    if not spec.worked_example or kind.answer_type != "data":
        return []
    verdict = kind.grade(spec, worked, reference, dict(spec.worked_example))
    truth = reference.get("values", {})
    return [
        (
            f"worked_example.{p.part}",
            f"autograd gives {truth.get(p.part, p.expected)!r}, the file says "
            f"{spec.worked_example[p.part]!r}: {p.message}",
        )
        for p in verdict.parts
        if p.part in spec.worked_example and not p.correct
    ]


def _variant_problems(kind: Kind, spec: ExerciseSpec) -> list[Problem]:
    """Learners' variants must be drawable and gradable."""
    problems: list[Problem] = []
    for seed in CHECK_SEEDS:
        variant = kind.make_variant(spec, seed)
        if variant.label == "worked-example-fallback":
            problems.append(("params", f"no usable variant could be drawn for seed {seed}"))
            break
        try:
            kind.compute_reference(spec, variant)
        except Exception as err:
            problems.append(("params", f"autograd failed on the variant of seed {seed}: {err}"))
            break
    return problems


def _solution_problems(
    kind: Kind, spec: ExerciseSpec, worked: Variant, reference: dict[str, Any]
) -> list[Problem]:
    """A code exercise's model solution must pass its own grading, in the sandbox."""
    if kind.answer_type != "code" or spec.code is None or not spec.code.solution.strip():
        return []
    job = kind.code_job(spec, worked, {"code": spec.code.solution})
    verdict = kind.grade_run(spec, worked, reference, run_code(job))
    if verdict.correct:
        return []
    return [("code.solution", f"the model solution does not pass: {verdict.message}")]


def json_safe(value: Any) -> Any:
    """Data with non-finite floats written as strings, so every database stores it as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
