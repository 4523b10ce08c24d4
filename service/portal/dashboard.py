"""The learner's dashboard: progress over the catalog, mastery per topic, recent attempts."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from service.data.models import Submission
from service.portal.blueprint import bp, current_user, login_required
from service.portal.courses import course_cards
from service.portal.feedback import attempts_as_seen
from service.portal.progress import catalog_progress, summary, topic_mastery
from service.webdb import get_db


@bp.get("/")
@login_required
def index() -> str:
    """Courses, progress, per-topic mastery and the catalog with solved/attempted marks."""
    db = get_db()
    user = current_user()
    items = catalog_progress(db, user)
    latest = db.scalars(
        select(Submission)
        .where(Submission.user_id == user.id)
        .order_by(Submission.id.desc())
        .limit(5)
    )
    return render_template(
        "portal/index.html",
        items=items,
        totals=summary(items),
        mastery=topic_mastery(items),
        recent=attempts_as_seen(db, latest, user),
        courses=course_cards(db, user),
    )
