"""Logs as one JSON object per line, each carrying the request id or submission id it belongs to.

Web, workers and the sweeper call `configure_logging()` once per process. The ids
live in context variables, so any logger anywhere (SQLAlchemy, Celery, ours)
gets them without being passed around: the web sets `request_id` per request
(from `X-Request-ID` or generated, echoed in the response); the worker sets
`submission_id` and `task_id` per task (worker/observability.py).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TextIO

from celery.signals import before_task_publish
from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
TASK_REQUEST_ID_HEADER = "gradschool_request_id"  # on task messages; the worker logs it
# What we accept from a client: short and log-safe (no spaces, quotes or newlines).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_CONTEXT: dict[str, ContextVar[str | int | None]] = {
    name: ContextVar(name, default=None) for name in ("request_id", "submission_id", "task_id")
}
_HANDLER_NAME = "gradschool"
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def log_fields() -> dict[str, str | int]:
    """The ids bound to the current context (only those that are set)."""
    fields = {name: var.get() for name, var in _CONTEXT.items()}
    return {k: v for k, v in fields.items() if v is not None}


def bind(**fields: str | int | None) -> dict[str, Token[str | int | None]]:
    """Bind ids to the current context; returns the tokens that `unbind` takes."""
    return {name: _CONTEXT[name].set(value) for name, value in fields.items()}


def unbind(tokens: Mapping[str, Token[str | int | None]]) -> None:
    """Restore the ids that `bind` replaced."""
    for name, token in tokens.items():
        _CONTEXT[name].reset(token)


@contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Every record logged inside the block carries `fields`."""
    tokens = bind(**fields)
    try:
        yield
    finally:
        unbind(tokens)


class ContextFilter(logging.Filter):
    """Copy the bound ids onto each record (as attributes the formatters print)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate; never drops a record."""
        for name, value in log_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """A human-readable line for development, with the ids appended."""

    def format(self, record: logging.LogRecord) -> str:
        """The usual line plus ` [request_id=... submission_id=...]`."""
        line = super().format(record)
        ids = " ".join(
            f"{k}={getattr(record, k)}" for k in _CONTEXT if getattr(record, k, None) is not None
        )
        return f"{line} [{ids}]" if ids else line


def json_formatter() -> logging.Formatter:
    """One JSON object per record: time, level, logger, message, ids, exception."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """LOG_FORMAT (`json` or `text`); text by default only under `gradschool dev`."""
    env = os.environ if environ is None else environ
    default = "text" if env.get("GRADSCHOOL_DEV") == "1" else "json"
    fmt = (env.get("LOG_FORMAT") or default).lower()
    return fmt if fmt in ("json", "text") else "json"


def make_formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter for `fmt` (default: from the environment)."""
    return json_formatter() if (fmt or log_format()) == "json" else TextFormatter(TEXT_FORMAT)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (it may be replaced after set-up)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        """The current sys.stderr."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: str | int | None = None, fmt: str | None = None) -> None:
    """Install one stderr handler on the root logger (idempotent: replaces our previous one)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO").upper())
    logging.captureWarnings(True)  # runtime warnings become log records (JSON) too


def _incoming_request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _start_request() -> None:
    g.request_id = _incoming_request_id()
    g.log_tokens = bind(request_id=g.request_id)


def _echo_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _end_request(_exc: BaseException | None) -> None:
    tokens = g.pop("log_tokens", None)
    if tokens:
        unbind(tokens)


def current_request_id() -> str | None:
    """The request id bound to this context (web request), if any."""
    value = _CONTEXT["request_id"].get()
    return None if value is None else str(value)


def _tag_task(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task sent while serving a request carries the request's id to the worker's logs."""
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


def init_app(app: Flask, **_: Any) -> None:
    """JSON logs for the web process, and a request id on every request and response."""
    if not app.testing and not app.config.get("GRADSCHOOL_KEEP_LOGGING"):
        configure_logging()
    app.before_request(_start_request)
    app.after_request(_echo_request_id)
    app.teardown_request(_end_request)
    before_task_publish.connect(_tag_task, weak=False, dispatch_uid="gradschool.request_id")
