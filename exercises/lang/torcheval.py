"""Evaluate the language on torch float64 tensors, optionally with one local derivative mutated.

Imports torch: only the worker side (reference, diagnosis, graph) imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from exercises.lang.ir import Const, Name, Node, Op, Program
from exercises.lang.render import to_source

Tensor = torch.Tensor
DTYPE = torch.float64


@dataclass(frozen=True)
class OpSite:
    """One operation in the forward code: the line's target and its preorder index there."""

    target: str
    index: int
    op: Op

    @cached_property
    def label(self) -> str:
        """How the learner sees this node: the source of the sub-expression."""
        return to_source(self.op)


@dataclass(frozen=True)
class Mutation:
    """Replace the local derivative of a site w.r.t. `operand` by `local(args, out)`.

    With `local` None, every gradient through the site is multiplied by `scale(args, out)`.
    """

    target: str
    index: int
    operand: int
    local: Callable[[list[Tensor], Tensor], Tensor | float] | None
    scale: Callable[[list[Tensor], Tensor], float] | None = None


def op_sites(program: Program) -> Iterator[OpSite]:
    """Every operation of the program, in evaluation order within each line."""
    for assign in program.assigns:
        counter = [0]
        yield from _walk(assign.target, assign.expr, counter)


def _walk(target: str, node: Node, counter: list[int]) -> Iterator[OpSite]:
    if isinstance(node, Op):
        index = counter[0]
        counter[0] += 1
        yield OpSite(target, index, node)
        for arg in node.args:
            yield from _walk(target, arg, counter)


def local_derivative(op: Op, args: list[Tensor], out: Tensor, operand: int) -> Tensor | float:
    """The true elementwise local derivative d out / d args[operand] (detached)."""
    a = [x.detach() for x in args]
    o = out.detach()
    fn = op.fn
    table: dict[str, Callable[[], Tensor | float]] = {
        "add": lambda: 1.0,
        "sub": lambda: 1.0 if operand == 0 else -1.0,
        "mul": lambda: a[1 - operand],
        "div": lambda: 1.0 / a[1] if operand == 0 else -a[0] / a[1] ** 2,
        "pow": lambda: a[1] * a[0] ** (a[1] - 1) if operand == 0 else o * torch.log(a[0]),
        "neg": lambda: -1.0,
        "sigmoid": lambda: o * (1 - o),
        "tanh": lambda: 1 - o**2,
        "exp": lambda: o,
        "log": lambda: 1.0 / a[0],
        "relu": lambda: (a[0] > 0).to(DTYPE),
        "abs": lambda: torch.sign(a[0]),
        "sqrt": lambda: 0.5 / o,
        "sin": lambda: torch.cos(a[0]),
        "cos": lambda: -torch.sin(a[0]),
        "square": lambda: 2 * a[0],
    }
    return table[fn]()


def _apply(op: Op, args: list[Tensor]) -> Tensor:
    fn = op.fn
    dim = op.kwarg("dim")
    if fn == "add":
        return args[0] + args[1]
    if fn == "sub":
        return args[0] - args[1]
    if fn == "mul":
        return args[0] * args[1]
    if fn == "div":
        return args[0] / args[1]
    if fn == "pow":
        return args[0] ** args[1]
    if fn == "matmul":
        return args[0] @ args[1]
    if fn == "neg":
        return -args[0]
    if fn == "transpose":  # like .T; a vector stays as it is
        return args[0].T if args[0].dim() == 2 else args[0]
    if fn == "index":
        return args[0][op.index]
    if fn in ("sum", "mean"):
        reduce = torch.sum if fn == "sum" else torch.mean
        return reduce(args[0]) if dim is None else reduce(args[0], dim=dim)
    if fn in ("softmax", "log_softmax"):
        f = torch.softmax if fn == "softmax" else torch.log_softmax
        return f(args[0], dim=-1 if dim is None else dim)
    func: Callable[[Tensor], Tensor] = getattr(torch, fn)
    return func(args[0])


class _Runner:
    def __init__(
        self,
        env: dict[str, Tensor],
        mutation: Mutation | None,
        record: dict[int, tuple[OpSite, Tensor]] | None,
    ) -> None:
        self.env = env
        self.mutation = mutation
        self.record = record
        self.target = ""
        self.counter = 0

    def eval(self, node: Node) -> Tensor:
        if isinstance(node, Const):
            return torch.tensor(node.value, dtype=DTYPE)
        if isinstance(node, Name):
            return self.env[node.id]
        index = self.counter
        self.counter += 1
        args = [self.eval(a) for a in node.args]
        out = _apply(node, args)
        m = self.mutation
        if m is not None and m.target == self.target and m.index == index:
            if m.local is None:
                factor = m.scale(args, out) if m.scale is not None else 1.0
                return out + (factor - 1.0) * (out - out.detach())
            arg = args[m.operand]
            delta = m.local(args, out) - local_derivative(node, args, out, m.operand)
            out = out + (arg - arg.detach()) * delta
        if self.record is not None:
            self.record[len(self.record)] = (OpSite(self.target, index, node), out)
        return out


def run(
    program: Program,
    env: Mapping[str, Tensor],
    mutation: Mutation | None = None,
    record: dict[int, tuple[OpSite, Tensor]] | None = None,
) -> dict[str, Tensor]:
    """Evaluate forward code on tensors; returns every named node's tensor.

    `record`, if given, receives every operation's site and output tensor.
    """
    values = dict(env)
    runner = _Runner(values, mutation, record)
    for assign in program.assigns:
        runner.target = assign.target
        runner.counter = 0
        values[assign.target] = runner.eval(assign.expr)
    return values


def leaves(params: Mapping[str, Any], requires_grad: Mapping[str, bool]) -> dict[str, Tensor]:
    """Fresh float64 leaf tensors for parameter values."""
    return {
        k: torch.tensor(v, dtype=DTYPE, requires_grad=requires_grad.get(k, False))
        for k, v in params.items()
    }


def gradient(values: Mapping[str, Tensor], of: str, wrt: str) -> Tensor:
    """d(of)/d(wrt) with autograd, zeros where `of` does not depend on `wrt`."""
    target, source = values[of], values[wrt]
    if not source.requires_grad or not target.requires_grad:
        return torch.zeros_like(source)
    (g,) = torch.autograd.grad(target, source, retain_graph=True, allow_unused=True)
    return torch.zeros_like(source) if g is None else g


def gradients(values: Mapping[str, Tensor], of: str, wrts: list[str]) -> dict[str, Tensor]:
    """d(of)/d(w) for every w in `wrts` in one backward pass (zeros where unused)."""
    target = values[of]
    sources = [w for w in wrts if values[w].requires_grad and w != of]
    out = {w: torch.zeros_like(values[w]) for w in wrts}
    if w_of := [w for w in wrts if w == of]:
        out[w_of[0]] = torch.ones_like(target)
    if not sources or not target.requires_grad:
        return out
    found = torch.autograd.grad(
        target, [values[w] for w in sources], retain_graph=True, allow_unused=True
    )
    for w, g in zip(sources, found, strict=True):
        if g is not None:
            out[w] = g.detach()
    return out
