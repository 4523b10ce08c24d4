"""The API blueprint and its authentication: `Authorization: Bearer <token>`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, request
from sqlalchemy import select

from service.data.models import ApiToken, User
from service.errors import BadRequest, Unauthorized, ValidationFailed
from service.security import hash_token
from service.webdb import get_db

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def authenticate() -> None:
    """Every API call needs a valid, unexpired, unrevoked token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API token as `Authorization: Bearer <token>`")
    db = get_db()
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API token is invalid or revoked")
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        raise Unauthorized("the API token has expired")
    g.user = row.user


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def current_user() -> User:
    """The user the request's token belongs to."""
    user: User = g.user
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
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"field": "body"}])
    return body
