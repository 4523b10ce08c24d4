"""The REST API under /api/v1: bearer tokens, JSON in and out, problem+json errors."""

from __future__ import annotations

from flask import Flask

from service.api import exercises, submissions
from service.api.blueprint import bp
from service.security import csrf

__all__ = ["exercises", "init_app", "submissions"]


def init_app(app: Flask) -> None:
    """Mount the API; bearer tokens, not cookies, so no CSRF token."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
