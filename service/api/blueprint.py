"""The API blueprint and its authentication: `Authorization: Bearer <token>`; rate limits."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from service import hotcache
from service.data.models import ApiToken, User
from service.errors import BadRequest, NotFound, TooManyRequests, Unauthorized, ValidationFailed
from service.hotcache import TtlCache
from service.problems import handle_http_error
from service.security import hash_token, limiter
from service.webdb import get_db, settings

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Readable without a token: the API's description and its docs page.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_json", "api.docs", "api.docs_init", "api.docs_asset"})
# last_used_at is written at most this often per token (a write per request would cost more).
LAST_USED_EVERY = timedelta(minutes=5)
DEFAULT_RATE_LIMIT = "600 per minute"
DEFAULT_HEAVY_RATE_LIMIT = "30 per minute"


def rate_key() -> str:
    """Limits count per token (per address for calls without one)."""
    header = request.headers.get("Authorization", "")
    if header:
        return "t:" + hashlib.sha256(header.encode()).hexdigest()[:24]
    return "a:" + (get_remote_address() or "")


def _api_limit() -> str:
    limit: str = current_app.config.get("API_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    return limit


def heavy_limit() -> str:
    """The tighter limit of expensive calls (dry runs, regrades, bulk enrolment)."""
    limit: str = current_app.config.get("API_HEAVY_RATE_LIMIT", DEFAULT_HEAVY_RATE_LIMIT)
    return limit


_LIMIT_ITEMS: dict[str, RateLimitItem] = {}
_STRATEGIES: dict[int, FixedWindowRateLimiter] = {}


@bp.before_request
def api_rate_limit() -> None:
    """`API_RATE_LIMIT` on every API call, per token (per address without one), before the
    token is even looked at.

    The `limits` library directly, on flask-limiter's storage (counts shared through Redis:
    service/ratelimit.py): flask-limiter's per-request machinery cost the web more than the
    counting itself on the submission hot path. The tighter `API_HEAVY_RATE_LIMIT` on a few
    expensive calls stays a flask-limiter decorator.
    """
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    text = _api_limit()
    item = _LIMIT_ITEMS.get(text)
    if item is None:
        item = _LIMIT_ITEMS[text] = parse(text)
    storage = limiter.storage
    strategy = _STRATEGIES.get(id(storage))
    if strategy is None or strategy.storage is not storage:
        strategy = _STRATEGIES[id(storage)] = FixedWindowRateLimiter(storage)
    # The deployment's prefix first, as flask-limiter's keys have it (deployments may share
    # one Redis).
    ids = (current_app.config.get("RATELIMIT_KEY_PREFIX", ""), "api", rate_key())
    if not strategy.hit(item, *ids):
        reset = strategy.get_window_stats(item, *ids).reset_time
        raise TooManyRequests(
            f"rate limit exceeded ({text}); retry after the window resets",
            retry_after=max(1, int(reset - time.time())),
        )


def handle_rate_limited(err: RateLimitExceeded) -> Response:
    """429 as problem+json with Retry-After, in seconds until the window resets."""
    resp = handle_http_error(err)
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current is not None else 1
    resp.headers["Retry-After"] = str(wait)
    return resp


MAX_ID = 2**31 - 1


@bp.url_value_preprocessor
def ids_in_range(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """An id beyond any the database holds is a 404 (not a database overflow, a 500)."""
    for name, value in (values or {}).items():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound(f"no {name.removesuffix('_id')} {value}")


# token hash -> (its user, detached; token id; expiry): see service/hotcache.py.
_TOKENS: TtlCache[str, tuple[User, int, datetime | None]] = TtlCache()


def _lookup_token(token_hash: str) -> tuple[User, int, datetime | None]:
    """The token's user, id and expiry from the database (refreshing its last use)."""
    gen = hotcache.generation()
    db = get_db()
    row = db.scalar(
        select(ApiToken)
        .where(ApiToken.token_hash == token_hash)
        .options(joinedload(ApiToken.user))  # one round trip for the token and its user
    )
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API token is invalid or revoked")
    if row.last_used_at is None or _aware(row.last_used_at) < now - LAST_USED_EVERY:
        db.execute(
            update(ApiToken)
            .where(ApiToken.id == row.id)
            .values(last_used_at=now)
            .execution_options(**{hotcache.NEUTRAL: True})
        )
        db.commit()
    found = (hotcache.snapshot(row.user), row.id, row.expires_at)
    _TOKENS.put(token_hash, found, gen)
    return found


@bp.before_request
def authenticate() -> None:
    """Every API call but the public ones needs a valid, unexpired, unrevoked token."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API token as `Authorization: Bearer <token>`")
    token_hash = hash_token(token.strip())
    found = _TOKENS.get(token_hash, settings().hot_cache_seconds)
    if found is None:
        found = _lookup_token(token_hash)
    user, token_id, expires_at = found
    if expires_at is not None and _aware(expires_at) <= datetime.now(UTC):
        _TOKENS.discard(token_hash)
        raise Unauthorized("the API token has expired")
    g.token_user = user
    g.token_id = token_id
    g.pop("api_user", None)  # current_user() merges this token's user, not an earlier one


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def current_user() -> User:
    """The user the request's token belongs to, in this request's session (merged from the
    token cache's copy on first use, without a query)."""
    if "api_user" not in g:
        g.api_user = get_db().merge(g.token_user, load=False)
    user: User = g.api_user
    return user


def token_user() -> User:
    """The token's user as the token cache holds it: a detached copy of its columns, to read
    (id, role) without the session; `current_user()` for anything that loads or changes."""
    user: User = g.token_user
    return user


def _no_constants(name: str) -> Any:
    raise ValueError(f'{name} is not JSON; send it as a string, e.g. "{name}"')


def json_body() -> Any:
    """The parsed JSON body, or a 400/422 problem that names what is wrong."""
    if not request.is_json:
        raise BadRequest("send a JSON body with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=True), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"the body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise BadRequest("the body's JSON is nested too deeply") from err
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"field": "body"}])
    return body
