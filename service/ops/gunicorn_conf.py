"""gunicorn settings for deployments: JSON error and access logs, heartbeat files in memory.

Loaded with GUNICORN_CMD_ARGS="--config python:service.ops.gunicorn_conf" (docker-compose.yml
sets it for the web service); the command line of `gradschool web` still wins.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn import glogging

from service.logging_setup import ContextFilter, make_formatter

# Paths that probes and scrapers hit every few seconds: logged only when they fail.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


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
        """method, path, status, bytes, duration and the request id as fields, not a string."""
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        status = int(atoms["s"]) if str(atoms["s"]).isdigit() else 0
        path = atoms["U"]
        if path in QUIET_PATHS and status < 400:
            return
        self.access_log.info(
            "%s %s %s",
            atoms["m"],
            path,
            status,
            extra={
                "method": atoms["m"],
                "path": path,
                "query": atoms["q"] or None,
                "status": status,
                "bytes": atoms["B"],
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "remote_addr": atoms["h"],
                "user_agent": atoms["a"],
                "request_id": atoms.get("{x-request-id}o"),
            },
        )


logger_class = JsonLogger
worker_tmp_dir = "/dev/shm"  # heartbeat files: never on a slow or read-only disk
control_socket_disable = True  # gunicornc's socket: not needed where the orchestrator manages us
