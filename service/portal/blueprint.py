"""The portal blueprint and the logged-in user."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, redirect, request, session, url_for

from service.data.models import User
from service.webdb import get_db

bp = Blueprint("portal", __name__)

F = TypeVar("F", bound=Callable[..., Any])


@bp.before_app_request
def load_user() -> None:
    """Put the session's user (or None) on g."""
    user_id = session.get("user_id")
    g.user = get_db().get(User, user_id) if user_id is not None else None


@bp.app_context_processor
def inject_user() -> dict[str, Any]:
    """Templates see `user`."""
    return {"user": g.get("user")}


def login_required(view: F) -> F:
    """Redirect anonymous visitors to the login page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("portal.login", next=request.path))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def current_user() -> User:
    """The logged-in user (views are behind login_required)."""
    user: User = g.user
    return user
