"""Creating users and API tokens (CLI, sign-up, tests)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.data.models import ApiToken, Role, User
from service.errors import Conflict, NotFound, ValidationFailed
from service.security import hash_password, new_api_token, verify_password

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return email.strip().lower()


def create_user(db: Session, email: str, password: str, role: Role | str = Role.LEARNER) -> User:
    """A new user; the email must be unused and the password at least 8 characters."""
    email = normalise_email(email)
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationFailed("enter a valid email address", errors=[{"field": "email"}])
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            f"the password must have at least {MIN_PASSWORD} characters",
            errors=[{"field": "password"}],
        )
    try:
        role = Role(role)
    except ValueError as err:
        roles = ", ".join(r.value for r in Role)
        raise ValidationFailed(f"role must be one of {roles}", errors=[{"field": "role"}]) from err
    if db.scalar(select(User).where(func.lower(User.email) == email)) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role)
    db.add(user)
    db.flush()
    return user


def find_user(db: Session, email: str) -> User:
    """The user with this email, or NotFound."""
    user = db.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no user with email {normalise_email(email)}")
    return user


def authenticate(db: Session, email: str, password: str) -> User | None:
    """The user when email and password match, else None."""
    user = db.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not verify_password(user.password_hash, password):
        return None
    return user


def create_token(db: Session, user: User, name: str = "", days: int | None = 90) -> str:
    """A new API token for `user`; the secret is returned once and only its hash is stored."""
    secret, prefix, digest = new_api_token()
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    db.add(
        ApiToken(user_id=user.id, name=name, prefix=prefix, token_hash=digest, expires_at=expires)
    )
    db.flush()
    return secret
