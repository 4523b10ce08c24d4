"""Plain data that crosses the boundary of the exercises package: variants and verdicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Values that copy.deepcopy returns as they are, and so dataclasses.asdict too.
_ATOMS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True)
class _Box:
    value: Any


def plain(value: Any) -> Any:
    """`value` as dataclasses.asdict copies a field's value (dataclasses as dicts, new dicts
    and lists, anything else deep-copied), without its generic machinery for the plain
    numbers, strings, dicts, lists and dataclasses that verdicts hold."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {plain(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    names = _FIELD_NAMES.get(kind)
    if names is None and hasattr(kind, "__dataclass_fields__"):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    return asdict(_Box(value))["value"]  # tuples, subclasses, numpy values...: as asdict does


@dataclass(frozen=True)
class Variant:
    """One learner's numbers for an exercise: parameter values drawn from a seed."""

    params: dict[str, Any]
    seed: int | None = None  # None for the worked example
    label: str = "seeded"  # "seeded" or "worked-example"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Variant:
        """Rebuild from stored data."""
        return cls(
            params=dict(data["params"]), seed=data.get("seed"), label=data.get("label", "seeded")
        )


@dataclass(frozen=True)
class PartVerdict:
    """The verdict on one part of an answer, with a message the learner reads."""

    part: str
    correct: bool
    message: str
    score: float = 0.0  # 0..1 for this part
    expected: Any = None  # revealed only where feedback policy allows
    given: Any = None
    diagnosis: dict[str, Any] | None = None  # {"code", "node", "rule", "message"} when found


@dataclass(frozen=True)
class Verdict:
    """The verdict on a whole answer: score 0..1 and one PartVerdict per part."""

    score: float
    parts: list[PartVerdict]
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # e.g. captured output of code

    @property
    def correct(self) -> bool:
        """True when every part is right."""
        return all(p.correct for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage and the API (what dataclasses.asdict gives, faster)."""
        return plain(self)  # type: ignore[no-any-return]
