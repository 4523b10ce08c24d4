"""Pydantic models shared by the API's modules, and a validator that answers problem+json."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticError

from service.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=100)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class In(BaseModel):
    """A request body or query: unknown fields are an error that names them."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


class Page(Out):
    """Cursor pagination: pass `next_cursor` as `cursor` for the next page."""

    next_cursor: str | None = None


def validate_model(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 422 naming each field, like spectree's own validation."""
    try:
        return model.model_validate(data)
    except PydanticError as err:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in err.errors()
        ]
        first = errors[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", errors=errors) from None
