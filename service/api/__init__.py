"""The REST API under /api/v1: bearer tokens, JSON in and out, problem+json errors, and an
OpenAPI document generated from the views (service/api/openapi.py)."""

from __future__ import annotations

from flask import Flask
from flask_limiter.errors import RateLimitExceeded

from service import background
from service.api import (
    assignments,
    authoring,
    courses,
    exercises,
    gradebook,
    openapi,
    regrades,
    submissions,
    tokens,
)
from service.api.blueprint import bp, handle_rate_limited
from service.security import csrf

__all__ = [
    "assignments",
    "authoring",
    "courses",
    "exercises",
    "gradebook",
    "init_app",
    "openapi",
    "regrades",
    "submissions",
    "tokens",
]


def init_app(app: Flask) -> None:
    """Mount the API; bearer tokens, not cookies, so no CSRF token."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_error_handler(RateLimitExceeded, handle_rate_limited)
    background.init_app(app)
