"""Formula answers: safe parsing, a LaTeX preview, and evaluation at sample points (torch-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.lang.ir import Node
from exercises.lang.numeric import EvalError, as_array, eval_formula
from exercises.lang.parse import LangError, parse_formula
from exercises.lang.render import to_latex
from exercises.spec import ExerciseSpec


def symbols(spec: ExerciseSpec) -> list[str]:
    """Names a formula may use: the parameters, then the forward code's intermediates."""
    names = list(spec.params)
    if spec.forward.strip():
        names += spec.program().names
    return names


def parse(spec: ExerciseSpec, text: str) -> Node:
    """Parse a learner's formula over the exercise's symbols; LangError if it is not one."""
    return parse_formula(text, set(symbols(spec)))


def preview(spec: ExerciseSpec, text: str) -> dict[str, Any]:
    """Live preview for the portal: {"ok": True, "latex": ...} or {"ok": False, "error": ...}."""
    if not isinstance(text, str):
        return {"ok": False, "error": "a formula is text"}
    try:
        return {"ok": True, "latex": to_latex(parse(spec, text))}
    except LangError as exc:
        return {"ok": False, "error": str(exc)}


def evaluate_at(node: Node, points: list[dict[str, Any]]) -> list[float] | str:
    """The formula's value at each point (a dict of symbol values), or why it cannot be had."""
    out: list[float] = []
    for point in points:
        env = {k: as_array(v) for k, v in point.items()}
        try:
            value = eval_formula(node, env)
        except EvalError as exc:
            return f"cannot evaluate your formula: {exc}"
        if value.shape != ():
            return "your formula must give a single number"
        out.append(float(value))
    if not all(np.isfinite(out)):
        return "your formula is not finite at some inputs (division by zero, log of a negative?)"
    return out
