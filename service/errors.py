"""One error hierarchy: each carries its HTTP status and a stable code for problem+json."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of errors the service answers as RFC 9457 problem+json."""

    status = 500
    code = "internal-error"
    title = "Internal error"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, detail: str = "", retry_after: int | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        if retry_after is not None:
            self.retry_after = retry_after


class ConfigError(AppError):
    """The process is misconfigured."""

    code = "config-error"
    title = "Configuration error"


class BadRequest(AppError):
    """The request is malformed."""

    status = 400
    code = "bad-request"
    title = "Bad request"


class ValidationFailed(AppError):
    """The request body does not validate; `errors` lists each field's problem."""

    status = 422
    code = "validation-failed"
    title = "Validation failed"


class Unauthorized(AppError):
    """No or bad credentials."""

    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(AppError):
    """Authenticated but not allowed."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    """No such resource (or not yours to see)."""

    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = "Conflict"


class TooManyRequests(AppError):
    """Back off and retry later."""

    status = 429
    code = "too-many-requests"
    title = "Too many requests"
    retry_after = 1


class ServiceUnavailable(AppError):
    """A dependency (database, broker) is unreachable; retry later."""

    status = 503
    code = "service-unavailable"
    title = "Service unavailable"
    retry_after = 5
