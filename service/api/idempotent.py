"""The view wrapper behind `@operation(creates=True)`: Idempotency-Key replays (see
service/idempotency.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import request
from pydantic import BaseModel

from service.api.blueprint import current_user
from service.idempotency import begin, fingerprint, finish, forget
from service.webdb import get_db

REPLAYED = "Idempotent-Replayed"


def _unpack(result: Any) -> tuple[Any, int, dict[str, str]]:
    if not isinstance(result, tuple):
        return result, 200, {}
    body, status, *rest = (*result, {}) if len(result) == 2 else result
    return body, status, dict(rest[0]) if rest else {}


def _json(body: Any) -> Any:
    return body.model_dump(mode="json") if isinstance(body, BaseModel) else body


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Replay the first answer to a request with the same Idempotency-Key."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        db, user = get_db(), current_user()
        print_ = fingerprint(request.method, request.path, request.get_data(cache=True))
        found = begin(db, user.id, key, print_)
        if found is not None:
            headers = {REPLAYED: "true"}
            if found.location:
                headers["Location"] = found.location
            return found.response, found.status_code, headers
        try:
            result = view(*args, **kwargs)
        except BaseException:
            forget(db, user.id, key)
            raise
        body, status, headers = _unpack(result)
        finish(db, user.id, key, status, _json(body), headers.get("Location"))
        return result

    return wrapped
