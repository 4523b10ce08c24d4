"""The Flask application factory: a short list of init_app calls, one per subsystem."""

from __future__ import annotations

from typing import Any

from flask import Flask

from service import api, ops, portal, problems, queueing, security, webdb
from service.config import Settings, load_settings


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the web app (portal + API) from settings and test overrides."""
    settings = settings or load_settings()
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        GRADSCHOOL=settings,
        MAX_CONTENT_LENGTH=256 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.dev,
        WTF_CSRF_TIME_LIMIT=None,
        RATELIMIT_STORAGE_URI="memory://",
    )
    app.config.from_prefixed_env("GRADSCHOOL_FLASK")
    app.config.update(overrides)

    ops.init_app(app)
    webdb.init_app(app)
    problems.init_app(app)
    security.init_app(app)
    queueing.init_app(app)
    api.init_app(app)
    portal.init_app(app)
    return app
