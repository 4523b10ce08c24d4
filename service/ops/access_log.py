"""The web's access log: one structured record per request, written by a WSGI middleware.

Fields: method, path, query, status, bytes, duration_ms (until the last byte was handed to the
server), remote_addr, user_agent and the request id the app echoed. In the app rather than in
the HTTP server, so that it is the same whichever server runs the app (granian in
`gradschool web`, a test client in tests). Successful probes and scrapes are not logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from service.logging_setup import REQUEST_ID_HEADER

ACCESS_LOGGER = "gradschool.access"
# Paths that probes and scrapers hit every few seconds: logged only when they fail.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REQUEST_ID = REQUEST_ID_HEADER.lower()
BUFFER_LIMIT = 1 << 20  # bodies of a declared length up to this are passed on as one buffer

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

log = logging.getLogger(ACCESS_LOGGER)


class AccessLog:
    """Wraps a WSGI app; logs each request once its response has been sent (or failed)."""

    def __init__(self, app: WSGIApp, logger: logging.Logger = log) -> None:
        self.app = app
        self.logger = logger

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Call the app, remembering the status and request id it answers with."""
        started = time.perf_counter()
        seen: list[Any] = [0, None, None]  # status, request id, content length

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            code = status.split(None, 1)[0]
            # Called again (with exc_info) to replace the answer: only the last one counts.
            seen[0], seen[1], seen[2] = (int(code) if code.isdigit() else 0), None, None
            for name, value in headers:
                lower = name.lower()
                if lower == REQUEST_ID:
                    seen[1] = value
                elif lower == "content-length":
                    seen[2] = value
            return start_response(status, headers, *exc)

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            self._log(environ, 500, None, None, started)
            raise
        length = seen[2]
        if length is not None and length.isdigit() and int(length) <= BUFFER_LIMIT:
            # A body of known, small size (every JSON answer and page): handed over as one
            # buffer, which the server writes in one go instead of iterating it from Rust
            # (30 % of the web's GIL time under load went to that iteration; PERFORMANCE.md).
            sent, status = None, 500  # what the server answers if the body cannot be read
            try:
                data = b"".join(body)
                sent, status = len(data), seen[0]
            finally:
                close = getattr(body, "close", None)
                try:
                    if close is not None:
                        close()
                finally:
                    self._log(environ, status, seen[1], sent, started)
            return [data]
        return _Counted(body, lambda sent: self._log(environ, seen[0], seen[1], sent, started))

    def _log(
        self,
        environ: dict[str, Any],
        status: int,
        request_id: str | None,
        sent: int | None,
        started: float,
    ) -> None:
        path = environ.get("PATH_INFO")
        if (path in QUIET_PATHS and 0 < status < 400) or not self.logger.isEnabledFor(logging.INFO):
            return
        method = environ.get("REQUEST_METHOD")
        self.logger.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "query": environ.get("QUERY_STRING") or None,
                "status": status,
                "bytes": sent,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR", "-"),
                "user_agent": environ.get("HTTP_USER_AGENT", "-"),
                "request_id": request_id,
            },
        )


class _Counted:
    """The app's response body, counting bytes; `done(bytes)` is called once, at close()."""

    __slots__ = ("_body", "_closed", "_done", "_sent")

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self._sent = 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        """Close the app's body (PEP 3333), then log."""
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if not self._closed:
                self._closed = True
                self._done(self._sent)
