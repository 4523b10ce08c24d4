"""Per operation: the ways its local derivative is commonly got wrong (torch)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch

from exercises.lang import torcheval as te
from exercises.lang.ir import Const, Op, Program
from exercises.lang.ops import OPS
from exercises.lang.render import to_source

Local = Callable[[list[torch.Tensor], torch.Tensor], "torch.Tensor | float"]


@dataclass(frozen=True)
class Rule:
    """A wrong local derivative: `local(args, out)` replaces the true one."""

    code: str
    local: Local
    message: str


def _one(a: list[torch.Tensor], o: torch.Tensor) -> float:
    return 1.0


def _unary(fn: str) -> list[Rule]:
    dropped = f"the local derivative of ${fn}$ is missing"
    if fn == "sigmoid":
        return [
            Rule(
                "dropped_local_derivative",
                _one,
                r"the sigmoid's local derivative $\sigma(u)(1-\sigma(u))$ is missing",
            ),
            Rule(
                "sigmoid_derivative_as_sigmoid",
                lambda a, o: o.detach(),
                r"$\sigma'(u)$ was taken as $\sigma(u)$; it is $\sigma(u)(1-\sigma(u))$",
            ),
        ]
    if fn == "tanh":
        return [
            Rule(
                "dropped_local_derivative",
                _one,
                r"tanh's local derivative $1-\tanh^2 u$ is missing",
            ),
            Rule(
                "tanh_derivative_unsquared",
                lambda a, o: 1 - o.detach(),
                r"$\tanh'(u)$ was taken as $1-\tanh u$; it is $1-\tanh^2 u$",
            ),
        ]
    if fn == "relu":
        return [
            Rule(
                "relu_kink",
                lambda a, o: (a[0].detach() >= 0).to(te.DTYPE),
                "at ReLU's kink $u = 0$ the derivative was taken as 1; PyTorch uses 0",
            ),
            Rule(
                "dropped_local_derivative",
                _one,
                "ReLU's derivative was taken as 1 everywhere; it is 0 where its input is negative",
            ),
        ]
    if fn == "log":
        return [
            Rule(
                "dropped_local_derivative",
                _one,
                r"the local derivative $1/u$ of $\ln u$ is missing",
            )
        ]
    if fn == "neg":
        return [Rule("sign_dropped", _one, "the minus sign (local derivative $-1$) is missing")]
    if fn in ("exp", "sqrt", "sin", "cos"):
        return [Rule("dropped_local_derivative", _one, dropped)]
    if fn == "square":
        return [
            Rule(
                "power_factor_lost",
                lambda a, o: a[0].detach(),
                "power rule: the factor 2 in $2u$ is missing",
            )
        ]
    return []


def _binary(op: Op, operand: int) -> list[Rule]:
    fn = op.fn
    mine, theirs = to_source(op.args[operand]), to_source(op.args[1 - operand])
    if fn == "sub" and operand == 1:
        return [
            Rule(
                "sign_dropped",
                _one,
                f"the minus sign of $\\partial(a-b)/\\partial b = -1$ for `{mine}` is missing",
            )
        ]
    if fn == "mul":
        other = op.args[1 - operand]
        if isinstance(other, Const) and other.value in (1.0, -1.0):
            return []
        return [
            Rule(
                "dropped_local_derivative",
                _one,
                f"the factor `{theirs}` (the local derivative with respect to `{mine}`) is missing",
            ),
            Rule(
                "wrong_factor",
                lambda a, o: a[operand].detach(),
                f"the local derivative with respect to `{mine}` was taken as `{mine}`; "
                f"it is the other factor, `{theirs}`",
            ),
        ]
    if fn == "div" and operand == 1:
        return [
            Rule(
                "quotient_sign",
                lambda a, o: a[0].detach() / a[1].detach() ** 2,
                r"$\partial(a/b)/\partial b = -a/b^2$ lost its minus sign",
            )
        ]
    if fn == "div":
        return [Rule("dropped_local_derivative", _one, f"the factor `1 / {theirs}` is missing")]
    if fn == "pow" and operand == 0 and isinstance(op.args[1], Const) and op.args[1].value != 1:
        n = op.args[1].value
        return [
            Rule(
                "power_factor_lost",
                lambda a, o: a[0].detach() ** (n - 1),
                f"power rule: the factor {n:g} in ${n:g}u^{{{n - 1:g}}}$ is missing",
            ),
            Rule(
                "power_not_reduced",
                lambda a, o: n * a[0].detach() ** n,
                f"power rule: the exponent was not lowered to {n - 1:g}",
            ),
        ]
    return []


def rules_for(op: Op, operand: int) -> list[Rule]:
    """The known wrong local derivatives of `op` with respect to argument `operand`."""
    if isinstance(op.args[operand], Const) or not OPS[op.fn].elementwise:
        return []
    return _unary(op.fn) if len(op.args) == 1 else _binary(op, operand)


@lru_cache(maxsize=256)
def mutations(program: Program) -> list[tuple[te.Mutation, te.OpSite, Rule]]:
    """Every (mutation, site, rule) of a program, in evaluation order (cached per program)."""
    return list(_mutations(program))


def _mutations(program: Program) -> Iterator[tuple[te.Mutation, te.OpSite, Rule]]:
    for site in te.op_sites(program):
        if site.op.fn == "mean":
            rule = Rule("mean_divisor_lost", _one, "the $1/n$ of the mean is missing")
            count = lambda a, o: a[0].numel() / max(o.numel(), 1)  # noqa: E731
            yield te.Mutation(site.target, site.index, 0, None, scale=count), site, rule
        for operand in range(len(site.op.args)):
            for rule in rules_for(site.op, operand):
                yield te.Mutation(site.target, site.index, operand, rule.local), site, rule
