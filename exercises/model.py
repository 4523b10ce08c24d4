"""Plain data that crosses the boundary of the exercises package: variants and verdicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
        """Plain data for storage and the API."""
        return asdict(self)
