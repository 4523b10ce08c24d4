"""The registry of exercise kinds: a dict from a spec's `kind` to a Kind class."""

from __future__ import annotations

from typing import TypeVar

from exercises.errors import UnknownKindError
from exercises.kinds.base import Kind

K = TypeVar("K", bound=type[Kind])

_CLASSES: dict[str, type[Kind]] = {}
_INSTANCES: dict[str, Kind] = {}


def register(cls: K) -> K:
    """Class decorator: make a kind available under `cls.name`."""
    _CLASSES[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import exercises.kinds.builtin  # noqa: F401  (registers the built-in kinds)


def get_kind(name: str) -> Kind:
    """The Kind instance registered as `name`; UnknownKindError otherwise."""
    _load_builtin()
    if name not in _INSTANCES:
        if name not in _CLASSES:
            known = ", ".join(sorted(_CLASSES))
            raise UnknownKindError(f"unknown exercise kind `{name}` (known: {known})")
        _INSTANCES[name] = _CLASSES[name]()
    return _INSTANCES[name]


def kind_names() -> list[str]:
    """Names of all registered kinds."""
    _load_builtin()
    return sorted(_CLASSES)
