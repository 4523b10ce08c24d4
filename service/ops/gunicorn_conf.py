"""gunicorn settings for deployments: JSON error and access logs, heartbeat files in memory.

Loaded with GUNICORN_CMD_ARGS="--config python:service.ops.gunicorn_conf" (docker-compose.yml
sets it for the web service); the command line of `gradschool web` still wins.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn import glogging

from service.logging_setup import REQUEST_ID_HEADER, ContextFilter, make_formatter

# Paths that probes and scrapers hit every few seconds: logged only when they fail.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REQUEST_ID = REQUEST_ID_HEADER.lower()


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with our formatter; one structured record per request."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's handlers, formatted like every other log line of the process."""
        super().setup(cfg)
        formatter = make_formatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
                handler.addFilter(ContextFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        """method, path, status, bytes, duration and the request id as fields, not a string.

        Read straight from the environ and the response: gunicorn's `atoms()` builds a dict
        of every request header, response header and environ entry for each request, which
        was most of this line's cost (≈ 3 % of the web's CPU per answer; py-spy,
        docs/PERFORMANCE.md)."""
        if not self.access_log_enabled:
            return
        raw_status = resp.status
        if isinstance(raw_status, str):
            raw_status = raw_status.split(None, 1)[0]
        status = int(raw_status) if str(raw_status).isdigit() else 0
        path = environ.get("PATH_INFO")
        if path in QUIET_PATHS and status < 400:
            return
        method = environ.get("REQUEST_METHOD")
        request_id = None
        headers = resp.headers
        for name, value in headers.items() if hasattr(headers, "items") else headers:
            if name.lower() == REQUEST_ID:
                request_id = value
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "query": environ.get("QUERY_STRING") or None,
                "status": status,
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR", "-"),
                "user_agent": environ.get("HTTP_USER_AGENT", "-"),
                "request_id": request_id,
            },
        )


logger_class = JsonLogger
worker_tmp_dir = "/dev/shm"  # heartbeat files: never on a slow or read-only disk
control_socket_disable = True  # gunicornc's socket: not needed where the orchestrator manages us
