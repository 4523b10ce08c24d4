"""The exercise page: the learner's numbers, the math, the graph; answers, live grading,
feedback, the attempt history and the worked example."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from exercises.formula import preview
from exercises.kinds.base import Kind
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.catalog import get_exercise, spec_of
from service.coursework import can_see_feedback, submission_view_for, submit_to_assignment
from service.data.models import Assignment, Exercise, ExerciseVersion, Submission
from service.errors import AppError, NotFound
from service.portal.blueprint import bp, current_user, login_required
from service.portal.courses import assignment_for
from service.portal.feedback import feedback
from service.portal.graph import forward_graph
from service.portal.progress import catalog_progress, summary
from service.queueing import dispatcher
from service.security import CSP, limiter
from service.submissions import get_submission, submit
from service.variants import VARIANT_LABELS, as_domain, get_or_create_variant
from service.webdb import get_db, settings

MAX_FORMULA_CHARS = 500


def _history(user_id: int, exercise_id: int) -> list[Submission]:
    return list(
        get_db().scalars(
            select(Submission)
            .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
            .where(Submission.user_id == user_id, ExerciseVersion.exercise_id == exercise_id)
            .order_by(Submission.id.desc())
        )
    )


def _tensor_from_form(name: str, shape: list[int]) -> Any:
    """A nested list from the grid of inputs `part-NAME-i-j` (entries graded as text)."""
    if not shape:
        return request.form.get(f"part-{name}", "")
    if len(shape) == 1:
        return [request.form.get(f"part-{name}-{i}", "") for i in range(shape[0])]
    return [
        [request.form.get(f"part-{name}-{i}-{j}", "") for j in range(shape[1])]
        for i in range(shape[0])
    ]


def _form_answer(kind: Kind, parts: list[dict[str, Any]]) -> dict[str, Any]:
    if kind.answer_type == "code":
        return {"code": request.form.get("code", "")}
    answers: dict[str, Any] = {}
    for part in parts:
        name = part["name"]
        if part.get("input") == "choice" and part.get("multiple"):
            answers[name] = request.form.getlist(f"part-{name}")
        elif part.get("input") == "tensor" and len(part.get("shape", [])) <= 2:
            answers[name] = _tensor_from_form(name, part.get("shape", []))
        else:
            answers[name] = request.form.get(f"part-{name}", "")
    return {"answers": answers}


def _label() -> str:
    label = request.args.get("variant", "seeded")
    return label if label in VARIANT_LABELS else "seeded"


def _worked_example(spec: ExerciseSpec, kind: Kind) -> dict[str, Any] | None:
    """The worked example's numbers, answers and explanation (torch-free, from the file)."""
    if not spec.worked_example and not spec.explanation:
        return None
    variant = kind.worked_example(spec)
    return {
        "params": variant.params if spec.params else {},
        "answers": [
            (p, spec.worked_example[p.name]) for p in spec.parts if p.name in spec.worked_example
        ],
        "explanation": spec.explanation,
    }


def _live_context(
    ex: Exercise,
    spec: ExerciseSpec,
    label: str,
    current: Submission | None,
    assignment: Assignment | None = None,
) -> dict[str, Any]:
    db = get_db()
    user = current_user()
    items = catalog_progress(db, user.id)
    visible = current is not None and can_see_feedback(db, current, user)
    history = _history(user.id, ex.id)
    return {
        "shown_scores": {s.id for s in history if can_see_feedback(db, s, user)},
        "assignment": assignment,
        "exercise": ex,
        "spec": spec,
        "label": label,
        "history": history,
        "current": current,
        "fb": feedback(spec, current, visible) if current is not None else None,
        "solved": any(i.solved for i in items if i.exercise.id == ex.id),
        "totals": summary(items),
    }


def _assignment(slug: str) -> Assignment | None:
    """The assignment this page works in (`?assignment=ID`), checked for membership."""
    wanted = request.args.get("assignment", type=int)
    if wanted is None:
        return None
    return assignment_for(get_db(), current_user(), wanted, slug)


@bp.route("/exercises/<slug>", methods=["GET", "POST"])
@login_required
def exercise(slug: str) -> BaseResponse:
    """The exercise with the learner's numbers; POST submits an answer."""
    db = get_db()
    user = current_user()
    ex = get_exercise(db, slug)
    version = ex.current_version
    spec = spec_of(version)
    kind = get_kind(spec.kind)
    assignment = _assignment(slug)
    label = "seeded" if assignment is not None else _label()
    where = {"assignment": assignment.id} if assignment is not None else {"variant": label}
    variant = get_or_create_variant(db, user.id, version, label)
    db.commit()
    view = kind.learner_view(spec, as_domain(variant))
    if request.method == "POST":
        payload = _form_answer(kind, view["parts"])
        if label != "seeded":
            payload["variant"] = label
        depth = settings().max_queue_depth
        try:
            if assignment is not None:
                submission = submit_to_assignment(
                    db, dispatcher(), user, assignment, slug, payload, max_queue_depth=depth
                )
            else:
                submission, _ = submit(db, dispatcher(), user, slug, payload, max_queue_depth=depth)
        except AppError as err:
            db.rollback()
            flash(err.detail, "error")
            return redirect(url_for("portal.exercise", slug=slug, **where))
        return redirect(
            url_for("portal.exercise", slug=slug, submission=submission.id, **where) + "#result"
        )
    wanted = request.args.get("submission", type=int)
    live = _live_context(ex, spec, label, None, assignment)
    current = next((s for s in live["history"] if s.id == wanted), None) if wanted else None
    if current is not None:
        live = _live_context(ex, spec, label, current, assignment)
    prefill = (current.answer if current is not None else {}) or {}
    # CodeMirror injects its base styles as a <style> element: allow exactly that one by nonce.
    nonce = secrets.token_urlsafe(18) if kind.answer_type == "code" else None
    html = render_template(
        "portal/exercise.html",
        kind=kind,
        view=view,
        graph=forward_graph(spec, variant.params),
        worked=_worked_example(spec, kind),
        prefill=prefill.get("answers", {}),
        prefill_code=prefill.get("code"),
        style_nonce=nonce,
        **live,
    )
    resp = Response(html, mimetype="text/html")
    if nonce is not None:
        resp.headers["Content-Security-Policy"] = CSP.replace(
            "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'"
        )
    return resp


@bp.get("/exercises/<slug>/preview")
@login_required
@limiter.limit("120 per minute")
def formula_preview(slug: str) -> dict[str, Any]:
    """The formula as LaTeX, parsed by the grader's own safe parser, or why it cannot be read."""
    spec = spec_of(get_exercise(get_db(), slug).current_version)
    text = request.args.get("formula", "")
    if len(text) > MAX_FORMULA_CHARS:
        return {"ok": False, "error": f"a formula has at most {MAX_FORMULA_CHARS} characters"}
    return preview(spec, text)


@bp.get("/submissions/<int:submission_id>.json")
@login_required
def submission_status(submission_id: int) -> dict[str, Any]:
    """The live status the exercise page polls while grading runs."""
    db = get_db()
    submission = get_submission(db, current_user(), submission_id)
    return submission_view_for(db, submission, current_user())


@bp.get("/submissions/<int:submission_id>/feedback")
@login_required
def submission_feedback(submission_id: int) -> Response:
    """The result panel and attempt history as HTML, swapped in when grading finishes."""
    db = get_db()
    submission = get_submission(db, current_user(), submission_id)
    if submission.user_id != current_user().id:
        raise NotFound(f"no submission {submission_id}")
    version = submission.exercise_version
    spec = spec_of(version)
    ex = version.exercise
    label = submission.variant.label
    context = _live_context(ex, spec, label, submission, submission.assignment)
    html = render_template("portal/_live.html", **context)
    return Response(html, mimetype="text/html")
