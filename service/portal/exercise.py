"""The exercise page: the learner's numbers, the math, the graph; answers, live grading,
feedback, the attempt history and the worked example."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from flask import Response, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from exercises.formula import preview
from exercises.kinds.base import Kind
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from service.assignments import is_open
from service.catalog import get_exercise, spec_of
from service.coursework import hiding_assignment, submission_view_for, submit_to_assignment
from service.data.models import Assignment, Exercise, ExerciseVersion, Submission, Variant, utcnow
from service.errors import AppError, NotFound
from service.exercise_access import require_visible
from service.portal.blueprint import bp, current_user, login_required
from service.portal.courses import assignment_for
from service.portal.feedback import Attempt, attempts_as_seen, feedback
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
    """The result panel and the attempt history, each submission as the feedback policy
    lets the learner see it (`service.portal.feedback.attempts_as_seen`)."""
    db = get_db()
    user = current_user()
    items = catalog_progress(db, user)
    history = attempts_as_seen(db, _history(user.id, ex.id), user)
    shown: Attempt | None = None
    if current is not None:
        same = (a for a in history if a.submission.id == current.id)
        shown = next(same, None) or Attempt(current, submission_view_for(db, current, user))
    return {
        "assignment": assignment,
        "exercise": ex,
        "spec": spec,
        "label": label,
        "history": history,
        "current": current,
        "fb": feedback(spec, shown) if shown is not None else None,
        "solved": any(i.solved for i in items if i.exercise.id == ex.id),
        "totals": summary(items),
    }


def _assignment(slug: str) -> Assignment | None:
    """The assignment this page works in (`?assignment=ID`), checked for membership."""
    wanted = request.args.get("assignment", type=int)
    if wanted is None:
        return None
    return assignment_for(get_db(), current_user(), wanted, slug)


def _visible_exercise(slug: str) -> Exercise:
    """The exercise, if the learner may see it: one authored in a course is its members'
    only, and 404 to anybody else, as in the API."""
    db = get_db()
    return require_visible(db, current_user(), get_exercise(db, slug))


@dataclass(frozen=True)
class _Page:
    """What the exercise page shows whatever the learner did: the exercise and their numbers."""

    ex: Exercise
    spec: ExerciseSpec
    kind: Kind
    variant: Variant
    view: dict[str, Any]
    label: str
    assignment: Assignment | None


def _render_exercise(
    page: _Page,
    current: Submission | None,
    prefill: dict[str, Any],
    refusal: AppError | None = None,
) -> Response:
    """The exercise page; with `refusal`, the answer form shows why it was not accepted
    (the page answers with the refusal's status, the learner's answer still in the form)."""
    db = get_db()
    user = current_user()
    ex, spec, kind = page.ex, page.spec, page.kind
    # The exam (if any) that closes practice on this exercise: the same check that refuses it.
    now = utcnow()
    closed_by = hiding_assignment(db, user.id, ex.id, now)
    closed_url = (
        url_for("portal.exercise", slug=ex.slug, assignment=closed_by.id)
        if closed_by is not None and is_open(closed_by, now)
        else None
    )
    # CodeMirror injects its base styles as a <style> element: allow exactly that one by nonce.
    nonce = secrets.token_urlsafe(18) if kind.answer_type == "code" else None
    html = render_template(
        "portal/exercise.html",
        kind=kind,
        view=page.view,
        graph=forward_graph(spec, page.variant.params),
        worked=_worked_example(spec, kind),
        prefill=prefill.get("answers", {}),
        prefill_code=prefill.get("code"),
        style_nonce=nonce,
        refusal=refusal,
        practice_closed_by=closed_by,
        practice_closed_url=closed_url,
        **_live_context(ex, spec, page.label, current, page.assignment),
    )
    resp = Response(html, status=refusal.status if refusal else 200, mimetype="text/html")
    retry_after = getattr(refusal, "retry_after", None)
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    if nonce is not None:
        resp.headers["Content-Security-Policy"] = CSP.replace(
            "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'"
        )
    return resp


@bp.route("/exercises/<slug>", methods=["GET", "POST"])
@login_required
def exercise(slug: str) -> BaseResponse:
    """The exercise with the learner's numbers; POST submits an answer."""
    db = get_db()
    user = current_user()
    ex = _visible_exercise(slug)
    version = ex.current_version
    spec = spec_of(version)
    kind = get_kind(spec.kind)
    assignment = _assignment(slug)
    label = "seeded" if assignment is not None else _label()
    where = {"assignment": assignment.id} if assignment is not None else {"variant": label}
    variant = get_or_create_variant(db, user.id, version, label)
    db.commit()
    view = kind.learner_view(spec, as_domain(variant))
    page = _Page(ex, spec, kind, variant, view, label, assignment)
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
                submission, _ = submit(
                    db,
                    dispatcher(),
                    user,
                    slug,
                    payload,
                    max_queue_depth=depth,
                    hot_cache_seconds=settings().hot_cache_seconds,
                )
        except AppError as err:
            # Refused (an exam hides this exercise, the assignment is closed, the answer cannot
            # be read, the queue is full): the API's status and words, in the form.
            db.rollback()
            return _render_exercise(page, None, payload, err)
        return redirect(
            url_for("portal.exercise", slug=slug, submission=submission.id, **where) + "#result"
        )
    wanted = request.args.get("submission", type=int)
    current = db.get(Submission, wanted) if wanted is not None else None
    if current is not None and (
        current.user_id != user.id or current.exercise_version.exercise_id != ex.id
    ):
        current = None  # not this learner's attempt at this exercise: show none
    prefill = (current.answer if current is not None else {}) or {}
    return _render_exercise(page, current, prefill)


@bp.get("/exercises/<slug>/preview")
@login_required
@limiter.limit("120 per minute")
def formula_preview(slug: str) -> dict[str, Any]:
    """The formula as LaTeX, parsed by the grader's own safe parser, or why it cannot be read."""
    spec = spec_of(_visible_exercise(slug).current_version)
    text = request.args.get("formula", "")
    if len(text) > MAX_FORMULA_CHARS:
        return {"ok": False, "error": f"a formula has at most {MAX_FORMULA_CHARS} characters"}
    return preview(spec, text)


def _own_submission(submission_id: int) -> Submission:
    """One of the learner's own submissions (the portal shows nobody else's), else 404."""
    submission = get_submission(get_db(), current_user(), submission_id)
    if submission.user_id != current_user().id:
        raise NotFound(f"no submission {submission_id}")
    return submission


@bp.get("/submissions/<int:submission_id>.json")
@login_required
def submission_status(submission_id: int) -> dict[str, Any]:
    """The live status the exercise page polls while grading runs (as the policy allows)."""
    return submission_view_for(get_db(), _own_submission(submission_id), current_user())


@bp.get("/submissions/<int:submission_id>/feedback")
@login_required
def submission_feedback(submission_id: int) -> Response:
    """The result panel and attempt history as HTML, swapped in when grading finishes."""
    submission = _own_submission(submission_id)
    version = submission.exercise_version
    spec = spec_of(version)
    ex = version.exercise
    label = submission.variant.label
    context = _live_context(ex, spec, label, submission, submission.assignment)
    html = render_template("portal/_live.html", **context)
    return Response(html, mimetype="text/html")
