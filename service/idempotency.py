"""Idempotency-Key on POSTs that create: a retry with the same key replays the first answer.

The key is remembered per user with a fingerprint of the request (method, path, body).
The same key with a different request is refused (422); a key whose first request is
still running answers 409 with Retry-After; a key whose request failed is forgotten,
so the client may retry with it.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.data.models import IdempotencyKey, utcnow
from service.errors import Conflict, ValidationFailed

MAX_KEY = 200
KEEP_FOR = timedelta(hours=24)
IN_PROGRESS_FOR = timedelta(minutes=5)  # after this a stuck first request is given up on


class KeyInUse(Conflict):
    """The first request with this key has not finished."""

    code = "idempotency-key-in-use"
    title = "Idempotency-Key in use"
    retry_after = 1


def fingerprint(method: str, path: str, body: bytes) -> str:
    """sha256 of what makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> None:
    """1 to 200 printable characters."""
    if not (0 < len(key) <= MAX_KEY) or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY} printable characters",
            errors=[{"field": "Idempotency-Key", "message": "invalid"}],
        )


def begin(db: Session, user_id: int, key: str, print_: str) -> IdempotencyKey | None:
    """The finished record to replay, or None after reserving the key for this request."""
    check_key(key)
    now = utcnow()
    db.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            (IdempotencyKey.created_at < now - KEEP_FOR)
            | (
                IdempotencyKey.status_code.is_(None)
                & (IdempotencyKey.created_at < now - IN_PROGRESS_FOR)
            ),
        )
    )
    found = db.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if found is None:
        try:
            db.add(IdempotencyKey(user_id=user_id, key=key, fingerprint=print_))
            db.commit()
        except IntegrityError:
            db.rollback()
            raise KeyInUse("a request with this Idempotency-Key is in progress") from None
        return None
    if found.fingerprint != print_:
        raise ValidationFailed(
            "this Idempotency-Key was used for a different request",
            errors=[{"field": "Idempotency-Key", "message": "reused with a different request"}],
        )
    if found.status_code is None:
        raise KeyInUse("a request with this Idempotency-Key is in progress")
    return found


def finish(
    db: Session, user_id: int, key: str, status: int, body: Any, location: str | None
) -> None:
    """Remember the answer to replay."""
    record = db.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if record is not None:
        record.status_code = status
        record.response = body
        record.location = location
        db.commit()


def forget(db: Session, user_id: int, key: str) -> None:
    """Release the key after a failed request, so a retry runs afresh."""
    db.rollback()
    db.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.status_code.is_(None),
        )
    )
    db.commit()
