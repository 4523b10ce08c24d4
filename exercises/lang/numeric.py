"""Torch-free evaluation of the language on numpy float64 arrays (the web process uses this)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from exercises.lang.ir import Const, Name, Node, Op, Program

Array = np.ndarray[Any, np.dtype[np.float64]]


class EvalError(ValueError):
    """Evaluation failed (shapes that do not fit, an index out of range)."""


@dataclass
class Trace:
    """Values of every named node, and how close any kinked op came to its kink."""

    values: dict[str, Array]
    kink_margin: float = float("inf")


@dataclass
class _State:
    env: Mapping[str, Array]
    kink_margin: float = float("inf")


def _softmax(u: Array, dim: int) -> Array:
    shifted = u - np.max(u, axis=dim, keepdims=True)
    e = np.exp(shifted)
    out: Array = e / np.sum(e, axis=dim, keepdims=True)
    return out


def _log_softmax(u: Array, dim: int) -> Array:
    shifted = u - np.max(u, axis=dim, keepdims=True)
    out: Array = shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
    return out


_UNARY: dict[str, Callable[[Array], Array]] = {
    "neg": np.negative,
    "sigmoid": lambda u: 1.0 / (1.0 + np.exp(-u)),
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "relu": lambda u: np.maximum(u, 0.0),
    "abs": np.abs,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "square": np.square,
    "transpose": lambda u: u.T if u.ndim == 2 else u,
}
_BINARY: dict[str, Callable[[Array, Array], Array]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "matmul": np.matmul,
}


def as_array(value: Any) -> Array:
    """A parameter value (number or nested list) as a float64 array."""
    return np.asarray(value, dtype=np.float64)


def _eval(node: Node, state: _State) -> Array:
    if isinstance(node, Const):
        return np.asarray(node.value, dtype=np.float64)
    if isinstance(node, Name):
        return state.env[node.id]
    return _apply(node, [_eval(a, state) for a in node.args], state)


def _apply(node: Op, args: list[Array], state: _State) -> Array:
    fn = node.fn
    if fn in ("relu", "abs"):
        state.kink_margin = min(state.kink_margin, float(np.min(np.abs(args[0]), initial=np.inf)))
    if fn in _BINARY:
        if fn == "matmul" and (args[0].ndim == 0 or args[1].ndim == 0):
            raise EvalError("@ needs tensors with at least one dimension")
        return np.asarray(_BINARY[fn](args[0], args[1]), dtype=np.float64)
    if fn in _UNARY:
        return np.asarray(_UNARY[fn](args[0]), dtype=np.float64)
    dim = node.kwarg("dim")
    if fn in ("sum", "mean"):
        reduce = np.sum if fn == "sum" else np.mean
        return np.asarray(reduce(args[0], axis=dim), dtype=np.float64)
    if fn in ("softmax", "log_softmax"):
        f = _softmax if fn == "softmax" else _log_softmax
        return f(args[0], -1 if dim is None else dim)
    if fn == "index":
        return np.asarray(args[0][node.index], dtype=np.float64)
    raise EvalError(f"unknown operation {fn}")


def run_program(
    program: Program, params: Mapping[str, Any], overrides: Mapping[str, Array] | None = None
) -> Trace:
    """Evaluate forward code; `overrides` replaces a node's value (for finite differences)."""
    values: dict[str, Array] = {k: as_array(v) for k, v in params.items()}
    if overrides:
        values.update({k: v for k, v in overrides.items() if k in values})
    state = _State(env=values)
    with np.errstate(all="ignore"):
        for assign in program.assigns:
            if overrides and assign.target in overrides:
                values[assign.target] = overrides[assign.target]
                continue
            try:
                values[assign.target] = _eval(assign.expr, state)
            except (ValueError, IndexError) as exc:
                raise EvalError(f"line {assign.line} (`{assign.source}`): {exc}") from None
    return Trace(values=values, kink_margin=state.kink_margin)


def eval_formula(node: Node, env: Mapping[str, Array]) -> Array:
    """Evaluate a parsed formula at one point."""
    with np.errstate(all="ignore"):
        try:
            return _eval(node, _State(env=env))
        except (ValueError, IndexError) as exc:
            raise EvalError(str(exc)) from None


def finite_difference(
    program: Program, params: Mapping[str, Any], of: str, wrt: str, step: float = 1e-6
) -> Array:
    """Central-difference d(of)/d(wrt), element by element; `of` must be a scalar."""
    base = run_program(program, params).values
    point = base[wrt]
    grad = np.zeros_like(point)
    for idx in np.ndindex(point.shape):
        h = step * max(1.0, abs(float(point[idx])))
        up, down = point.copy(), point.copy()
        up[idx] += h
        down[idx] -= h
        f_up = run_program(program, params, {wrt: up}).values[of]
        f_down = run_program(program, params, {wrt: down}).values[of]
        grad[idx] = (float(f_up) - float(f_down)) / (2 * h)
    return grad
