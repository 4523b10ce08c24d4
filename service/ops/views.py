"""The endpoints: /healthz (alive), /readyz (dependencies and a worker answer), /metrics.

Operator knobs (app config, settable as GRADSCHOOL_FLASK_<NAME> like any Flask setting):
OPS_CHECK_TIMEOUT (seconds per dependency check, default 2), OPS_PING_TIMEOUT (seconds
to wait for a worker's answer, default 1), OPS_READY_CACHE_SECONDS
(default 2: a flood of /readyz cannot become a flood of pings to the workers),
OPS_METRICS_CACHE_SECONDS (default 5). METRICS_TOKEN in the environment, when set,
makes /metrics require `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import logging_setup
from service.config import Settings
from service.ops import fsbroker
from service.ops.health import Check, readiness
from service.ops.metrics import state_registry

bp = Blueprint("ops", __name__)
_ready_lock = threading.Lock()


def _settings() -> Settings:
    s: Settings = current_app.config["GRADSCHOOL"]
    return s


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the process serves requests (no dependency is consulted)."""
    return jsonify(status="ok")


def _readiness() -> dict[str, Check]:
    cache: dict[str, Any] = current_app.extensions["gradschool.ops"]
    ttl = float(current_app.config["OPS_READY_CACHE_SECONDS"])
    with _ready_lock:
        cached = cache.get("ready")
        if cached is not None and time.monotonic() - cached[0] < ttl:
            checks: dict[str, Check] = cached[1]
            return checks
        checks = readiness(
            current_app.extensions["celery"],
            _settings(),
            float(current_app.config["OPS_CHECK_TIMEOUT"]),
            float(current_app.config["OPS_PING_TIMEOUT"]),
        )
        cache["ready"] = (time.monotonic(), checks)
        return checks


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: the database and broker answer and at least one worker answers a ping; else 503."""
    checks = _readiness()
    ready = all(c.ok for c in checks.values())
    body = {
        "status": "ready" if ready else "unready",
        "checks": {name: c.as_dict() for name, c in checks.items()},
    }
    resp = jsonify(body)
    resp.status_code = 200 if ready else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: submissions by status, queue depth, broker backlog."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response("unauthorized\n", 401, {"WWW-Authenticate": "Bearer"})
    registry = current_app.extensions["gradschool.ops"]["registry"]
    return Response(generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app: Flask) -> None:
    """JSON logs with request ids, and the /healthz, /readyz and /metrics endpoints."""
    logging_setup.init_app(app)
    fsbroker.install()
    app.config.setdefault("OPS_CHECK_TIMEOUT", 2.0)
    app.config.setdefault("OPS_PING_TIMEOUT", 1.0)
    app.config.setdefault("OPS_READY_CACHE_SECONDS", 2.0)
    app.config.setdefault("OPS_METRICS_CACHE_SECONDS", 5.0)
    app.config.setdefault("METRICS_TOKEN", os.environ.get("METRICS_TOKEN") or None)
    settings: Settings = app.config["GRADSCHOOL"]
    app.extensions["gradschool.ops"] = {
        "registry": state_registry(
            settings,
            float(app.config["OPS_CHECK_TIMEOUT"]),
            float(app.config["OPS_METRICS_CACHE_SECONDS"]),
        )
    }
    app.register_blueprint(bp)
