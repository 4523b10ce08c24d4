"""/me and personal API tokens: list, create (shown once), revoke."""

from __future__ import annotations

from datetime import datetime

from flask import g, url_for
from pydantic import Field
from sqlalchemy import select

from service.access import is_admin
from service.api.blueprint import bp, current_user
from service.api.models import In, Out
from service.api.openapi import operation
from service.courses import courses_of
from service.data.models import ApiToken, utcnow
from service.errors import NotFound
from service.security import hash_token
from service.users import create_token
from service.webdb import get_db

TAG = ["tokens"]


class MyCourse(Out):
    """A course the caller belongs to."""

    id: int
    code: str
    title: str
    role: str | None


class Me(Out):
    """The caller."""

    id: int
    email: str
    site_role: str
    courses: list[MyCourse]


class TokenOut(Out):
    """A token as listed: its secret is never shown again."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    current: bool = Field(description="The token of this request.")


class TokenList(Out):
    """The caller's tokens."""

    items: list[TokenOut]


class TokenCreate(In):
    """A new token."""

    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int = Field(90, ge=1, le=365)


class TokenCreated(TokenOut):
    """A new token with its secret: shown this once, stored only as a hash."""

    token: str


def _out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        current=row.id == g.get("token_id"),
    )


@bp.get("/me")
@operation(tags=TAG, resp=Me)
def me() -> Me:
    """The caller, their site role and their courses."""
    user = current_user()
    courses = courses_of(get_db(), user)
    return Me(
        id=user.id,
        email=user.email,
        site_role=user.role.value,
        courses=[
            MyCourse(id=c.id, code=c.code, title=c.title, role=r.value if r else None)
            for c, r in courses
            if r is not None or is_admin(user)
        ],
    )


@bp.get("/tokens")
@operation(tags=TAG, resp=TokenList)
def token_list() -> TokenList:
    """The caller's API tokens, newest first."""
    rows = get_db().scalars(
        select(ApiToken).where(ApiToken.user_id == current_user().id).order_by(ApiToken.id.desc())
    )
    return TokenList(items=[_out(r) for r in rows])


@bp.post("/tokens")
@operation(tags=TAG, ok=201, resp=TokenCreated, creates=True)
def token_create(json: TokenCreate) -> tuple[TokenCreated, int, dict[str, str]]:
    """A new API token; its secret is in this answer only."""
    db = get_db()
    secret = create_token(db, current_user(), name=json.name, days=json.expires_in_days)
    row = db.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(secret))).one()
    db.commit()
    out = TokenCreated(**_out(row).model_dump(), token=secret)
    return out, 201, {"Location": url_for("api.token_list")}


@bp.delete("/tokens/<int:token_id>")
@operation(tags=TAG, ok=204)
def token_revoke(token_id: int) -> tuple[str, int]:
    """Revoke one of the caller's tokens (it stops working at once)."""
    db = get_db()
    row = db.get(ApiToken, token_id)
    if row is None or row.user_id != current_user().id or row.revoked_at is not None:
        raise NotFound(f"no active token {token_id}")
    row.revoked_at = utcnow()
    db.commit()
    return "", 204
