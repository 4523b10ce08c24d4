"""The learner portal: server-rendered pages, enhanced by a small bundle of scripts."""

from __future__ import annotations

from flask import Flask

from service.portal import auth, courses, dashboard, exercise
from service.portal.blueprint import bp
from service.portal.graph import fmt
from service.portal.text import markdown, markdown_inline

__all__ = ["auth", "courses", "dashboard", "exercise", "init_app"]


def init_app(app: Flask) -> None:
    """Mount the portal at the site root, with the filters its templates use."""
    app.add_template_filter(markdown, "markdown")
    app.add_template_filter(markdown_inline, "markdown_inline")
    app.add_template_filter(fmt, "num")
    app.register_blueprint(bp)
