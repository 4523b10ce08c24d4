"""Passwords, API tokens, CSRF, rate limits and security headers."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

# argon2id with the library's RFC 9106 "low memory" defaults: a modern KDF that
# stays cheap enough for a login page on 2 cores.
_hasher = PasswordHasher()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])

TOKEN_PREFIX = "gs_"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when `password` matches the stored hash."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_api_token() -> tuple[str, str, str]:
    """A new token: (the secret shown once, its display prefix, its SHA-256 to store)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[:10], hash_token(secret)


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return resp


def only_decorated_limits(app: Flask, extension: Limiter) -> None:
    """Drop flask-limiter's per-request hooks when every limit is a decorator.

    flask-limiter checks default, application and blueprint limits in a before_request hook
    and clears its per-request state in a teardown, on every request. Ours are all decorators
    (`@limiter.limit` on a few views, which check inside the decorated view; the API-wide limit
    is service/api/blueprint.py's own), so those hooks only cost: about a quarter of the CPU of
    a bare request in Flask (py-spy, docs/PERFORMANCE.md). Its state lives on the request
    context, which ends with the request anyway. Kept when limits that need them are set
    (default, application, blueprint, meta or fallback limits).
    """
    manager = extension.limit_manager
    needed = (
        manager._default_limits,
        manager._application_limits,
        manager._blueprint_limits,
        extension._meta_limits,
        extension._in_memory_fallback,  # limits of their own while the storage is down
    )
    if any(needed):
        return
    check = extension._check_request_limit
    release = getattr(extension, "_Limiter__release_context", None)
    before = app.before_request_funcs.get(None, [])
    teardown = app.teardown_request_funcs.get(None, [])
    if check in before and release in teardown:
        before.remove(check)
        teardown.remove(release)


def init_app(app: Flask) -> None:
    """CSRF on forms, rate limits, security headers on every response."""
    csrf.init_app(app)
    limiter.init_app(app)
    only_decorated_limits(app, limiter)
    app.after_request(_headers)
