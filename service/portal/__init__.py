"""The learner portal: server-rendered pages with a little JavaScript for live grading."""

from __future__ import annotations

from flask import Flask

from service.portal import auth, pages
from service.portal.blueprint import bp

__all__ = ["auth", "init_app", "pages"]


def init_app(app: Flask) -> None:
    """Mount the portal at the site root."""
    app.register_blueprint(bp)
