"""Exercise list, exercise page with the learner's own numbers, answers and live results."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from exercises.registry import get_kind
from service.catalog import get_exercise, list_exercises, spec_of
from service.data.models import ExerciseVersion, Submission
from service.errors import AppError
from service.portal.blueprint import bp, current_user, login_required
from service.queueing import dispatcher
from service.submissions import get_submission, submission_view, submit
from service.variants import as_domain, get_or_create_variant
from service.webdb import get_db, settings


@bp.get("/")
@login_required
def index() -> str:
    """The catalog with solved/attempted marks."""
    db = get_db()
    user = current_user()
    rows = db.execute(
        select(ExerciseVersion.exercise_id, Submission.score, Submission.status)
        .join(Submission, Submission.exercise_version_id == ExerciseVersion.id)
        .where(Submission.user_id == user.id)
    ).all()
    marks: dict[int, str] = {}
    for exercise_id, score, _status in rows:
        if score is not None and score >= 1.0:
            marks[exercise_id] = "solved"
        else:
            marks.setdefault(exercise_id, "attempted")
    items = [
        {"exercise": e, "spec": spec_of(e.current_version), "mark": marks.get(e.id, "")}
        for e in list_exercises(db)
    ]
    solved = sum(1 for i in items if i["mark"] == "solved")
    return render_template("portal/index.html", items=items, solved=solved)


def _history(user_id: int, exercise_id: int) -> list[Submission]:
    return list(
        get_db().scalars(
            select(Submission)
            .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
            .where(Submission.user_id == user_id, ExerciseVersion.exercise_id == exercise_id)
            .order_by(Submission.id.desc())
        )
    )


def _form_answer(kind_answer_type: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    if kind_answer_type == "code":
        return {"code": request.form.get("code", "")}
    answers: dict[str, Any] = {}
    for part in parts:
        name = part["name"]
        if part.get("input") == "choice" and part.get("multiple"):
            answers[name] = request.form.getlist(f"part-{name}")
        else:
            answers[name] = request.form.get(f"part-{name}", "")
    return {"answers": answers}


@bp.route("/exercises/<slug>", methods=["GET", "POST"])
@login_required
def exercise(slug: str) -> str | Response:
    """The exercise with the learner's numbers; POST submits an answer."""
    db = get_db()
    user = current_user()
    ex = get_exercise(db, slug)
    version = ex.current_version
    spec = spec_of(version)
    kind = get_kind(spec.kind)
    label = request.args.get("variant", "seeded")
    if label not in ("seeded", "worked-example"):
        label = "seeded"
    variant = get_or_create_variant(db, user.id, version, label)
    db.commit()
    view = kind.learner_view(spec, as_domain(variant))
    if request.method == "POST":
        payload = _form_answer(kind.answer_type, view["parts"])
        if label != "seeded":
            payload["variant"] = label
        try:
            submission, _ = submit(
                db, dispatcher(), user, slug, payload, max_queue_depth=settings().max_queue_depth
            )
        except AppError as err:
            db.rollback()
            flash(err.detail, "error")
            return redirect(url_for("portal.exercise", slug=slug, variant=label))
        return redirect(
            url_for("portal.exercise", slug=slug, variant=label, submission=submission.id)
        )
    history = _history(user.id, ex.id)
    current = None
    wanted = request.args.get("submission", type=int)
    if wanted is not None:
        current = next((s for s in history if s.id == wanted), None)
    return render_template(
        "portal/exercise.html",
        exercise=ex,
        spec=spec,
        kind=kind,
        view=view,
        label=label,
        history=history,
        current=current,
        current_view=submission_view(current) if current else None,
    )


@bp.get("/submissions/<int:submission_id>.json")
@login_required
def submission_status(submission_id: int) -> dict[str, Any]:
    """The live status the exercise page polls while grading runs."""
    submission = get_submission(get_db(), current_user(), submission_id)
    return submission_view(submission)
