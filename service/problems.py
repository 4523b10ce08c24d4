"""One error handler: problem+json (RFC 9457) for API clients, an HTML page for browsers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from service.errors import AppError, ServiceUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    """A problem+json response."""
    body = {"type": f"https://gradschool.dev/problems/{code}", "title": title, "status": status}
    body["detail"] = detail
    body.update(extra)
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = PROBLEM_JSON
    return resp


def _rollback() -> None:
    from flask import g

    db = g.get("db")
    if db is not None:
        db.rollback()


def _render(
    status: int, code: str, title: str, detail: str, headers: dict[str, str], **extra: Any
) -> Response:
    if _wants_json():
        resp = problem(status, code, title, detail, **extra)
    else:
        resp = Response(
            render_template("error.html", status=status, title=title, detail=detail), status=status
        )
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def handle_app_error(err: AppError) -> Response:
    """Render a domain error with its status."""
    _rollback()
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    return _render(err.status, err.code, err.title, err.detail, headers, **err.extra)


def handle_http_error(err: HTTPException) -> Response:
    """Render werkzeug's errors (404 route, 405, 413...) the same way."""
    code = (err.name or "error").lower().replace(" ", "-")
    headers = (
        {"Allow": err.response.headers["Allow"]}
        if err.response and "Allow" in err.response.headers
        else {}
    )
    if err.code == 405 and hasattr(err, "valid_methods") and err.valid_methods:
        headers["Allow"] = ", ".join(err.valid_methods)
    return _render(err.code or 500, code, err.name, err.description or err.name, headers)


def _forget_session() -> None:
    """Drop the request's session without touching the database that just failed.

    A rollback would expire the loaded user, and the error page would then reload it from the
    database that is down; closing discards the session and its connection instead.
    """
    from flask import g

    db = g.pop("db", None)
    if db is not None:
        db.close()
    g.pop("user", None)


def _unavailable() -> Response:
    _forget_session()
    return handle_app_error(ServiceUnavailable("the database is unavailable; retry shortly"))


def handle_db_down(err: DBAPIError) -> Response:
    """A database that cannot be reached answers 503 with Retry-After, not 500."""
    if isinstance(err, OperationalError) or err.connection_invalidated:
        log.warning("database unavailable: %s", err.orig)
        return _unavailable()
    raise err


def handle_pool_timeout(err: PoolTimeout) -> Response:
    """Every pooled connection busy (a database that hangs rather than refuses): 503 too."""
    log.warning("database unavailable: %s", err)
    return _unavailable()


def handle_unexpected(err: Exception) -> Response:
    """Anything else is a bug: log it, roll back, answer 500 without internals."""
    log.exception("unhandled error")
    return _render(500, "internal-error", "Internal error", "an unexpected error occurred", {})


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DBAPIError, handle_db_down)
    app.register_error_handler(PoolTimeout, handle_pool_timeout)
    app.register_error_handler(Exception, handle_unexpected)
