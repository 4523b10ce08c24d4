"""The tree of a parsed program or formula: constants, names and whitelisted operations."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Const:
    """A numeric literal."""

    value: float


@dataclass(frozen=True)
class Name:
    """A reference to a parameter or an earlier assignment."""

    id: str


@dataclass(frozen=True)
class Op:
    """A whitelisted operation (see exercises.lang.ops) applied to argument nodes."""

    fn: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, int], ...] = ()
    index: tuple[int, ...] = ()  # for fn == "index"

    def kwarg(self, key: str, default: int | None = None) -> int | None:
        """The integer keyword argument `key`, or `default`."""
        return dict(self.kwargs).get(key, default)


Node = Const | Name | Op


@dataclass(frozen=True)
class Assign:
    """One line of forward code: `target = expr`."""

    target: str
    expr: Node
    line: int
    source: str


@dataclass(frozen=True)
class Program:
    """Parsed forward code: assignments in order."""

    assigns: tuple[Assign, ...]
    inputs: frozenset[str] = field(default_factory=frozenset)

    @property
    def names(self) -> list[str]:
        """Assigned names in order."""
        return [a.target for a in self.assigns]

    def assign(self, name: str) -> Assign | None:
        """The assignment of `name`, if any."""
        return next((a for a in self.assigns if a.target == name), None)


def names_in(node: Node) -> set[str]:
    """All names a node reads."""
    if isinstance(node, Name):
        return {node.id}
    if isinstance(node, Op):
        out: set[str] = set()
        for arg in node.args:
            out |= names_in(arg)
        return out
    return set()
