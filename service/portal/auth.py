"""Sign up, log in, log out."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from service.errors import AppError
from service.portal.blueprint import bp
from service.security import limiter
from service.users import authenticate, create_user
from service.webdb import get_db


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so `next` cannot redirect off-site."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("portal.index")


def _start_session(user_id: int) -> None:
    session.clear()
    session["user_id"] = user_id
    session.permanent = True


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def signup() -> str | Response:
    """Create a learner account."""
    if request.method == "POST":
        db = get_db()
        try:
            user = create_user(db, request.form.get("email", ""), request.form.get("password", ""))
            db.commit()
        except AppError as err:
            db.rollback()
            flash(err.detail, "error")
            return render_template("portal/signup.html", email=request.form.get("email", "")), 400  # type: ignore[return-value]
        _start_session(user.id)
        return redirect(url_for("portal.index"))
    return render_template("portal/signup.html", email="")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login() -> str | Response:
    """Log in with email and password."""
    if request.method == "POST":
        email = request.form.get("email", "")
        user = authenticate(get_db(), email, request.form.get("password", ""))
        if user is None:
            flash("Wrong email or password.", "error")
            return render_template("portal/login.html", email=email), 401  # type: ignore[return-value]
        _start_session(user.id)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("portal/login.html", email="")


@bp.post("/logout")
def logout() -> Response:
    """Forget the session."""
    session.clear()
    return redirect(url_for("portal.login"))
