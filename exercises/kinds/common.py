"""Helpers shared by kinds built on forward code: views, envelopes, degeneracy (torch-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.errors import AnswerFormatError
from exercises.lang.numeric import EvalError, finite_difference, run_program
from exercises.model import Variant
from exercises.spec import ExerciseSpec, PartSpec


def tensor_literal(value: Any, requires_grad: bool) -> str:
    """`torch.tensor(...)` source for a parameter value."""
    grad = ", requires_grad=True" if requires_grad else ""
    return f"torch.tensor({value!r}{grad}, dtype=torch.float64)"


def forward_listing(spec: ExerciseSpec, variant: Variant, tail: str = "") -> str:
    """The PyTorch code the learner reads: leaves with the variant's values, then forward."""
    lines = ["import torch", ""]
    for name, p in spec.params.items():
        lines.append(f"{name} = {tensor_literal(variant.params[name], p.requires_grad)}")
    lines.append("")
    lines += [line.rstrip() for line in spec.forward.strip().splitlines()]
    if tail:
        lines += ["", tail]
    return "\n".join(lines) + "\n"


def part_view(spec: ExerciseSpec, part: PartSpec, variant: Variant) -> dict[str, Any]:
    """The learner-facing description of one part."""
    view: dict[str, Any] = {"name": part.name, "label": part.label, "input": part.input}
    if part.hint:
        view["hint"] = part.hint
    if part.input == "tensor" and part.wrt is not None:
        values = run_program(spec.program(), variant.params).values
        view["shape"] = list(values[part.wrt].shape)
    if part.input == "choice":
        view["choices"] = [{"id": c.id, "text": c.text} for c in part.choices]
    return view


def base_view(spec: ExerciseSpec, variant: Variant, tail: str = "") -> dict[str, Any]:
    """The common learner view of a kind with forward code."""
    view: dict[str, Any] = {
        "title": spec.title,
        "statement": spec.statement,
        "forward_code": forward_listing(spec, variant, tail) if spec.forward.strip() else "",
        "params": dict(variant.params),
        "parts": [part_view(spec, p, variant) for p in spec.parts],
        "sig_figs": spec.sig_figs,
    }
    choices = {
        p.name: view_p["choices"]
        for p, view_p in zip(spec.parts, view["parts"], strict=True)
        if p.input == "choice"
    }
    if choices:
        view["choices"] = choices
    return view


def check_envelope(spec: ExerciseSpec, answer: Any) -> dict[str, Any]:
    """A data answer must be an object whose keys are part names."""
    if not isinstance(answer, dict):
        raise AnswerFormatError("the answer must be an object {part name: value}")
    names = {p.name for p in spec.parts}
    for key in answer:
        if not isinstance(key, str) or key not in names:
            raise AnswerFormatError(
                f"unknown part `{key}` (parts: {', '.join(sorted(names))})", field=str(key)
            )
    return dict(answer)


def degeneracy_problem(
    spec: ExerciseSpec, params: dict[str, Any], gradients: list[tuple[str, str, str]]
) -> str | None:
    """Why a drawn variant is degenerate (None if fine): non-finite, kinked, vanishing gradient."""
    rules = spec.degeneracy
    try:
        trace = run_program(spec.program(), params)
    except EvalError as exc:
        return str(exc)
    for name, value in trace.values.items():
        if not np.all(np.isfinite(value)) or np.any(np.abs(value) > rules.max_abs_value):
            return f"`{name}` is not finite or too large"
    if not rules.allow_kink and trace.kink_margin < rules.kink_margin:
        return "an input sits at a kink"
    for part, of, wrt in gradients:
        if part in rules.allow_zero:
            continue
        fd = finite_difference(spec.program(), params, of, wrt)
        if not np.all(np.isfinite(fd)) or np.any(np.abs(fd) < rules.min_abs_gradient):
            return f"part `{part}` has a vanishing gradient"
    return None


def update_problem(
    spec: ExerciseSpec, params: dict[str, Any], gradients: list[tuple[str, str, str]]
) -> str | None:
    """Why one SGD step is a poor question here: invisible at the precision, or lands on ~0."""
    from exercises.numbers import unit

    lr = spec.sgd.lr if spec.sgd is not None else 0.0
    for _, of, wrt in gradients:
        old = np.asarray(params[wrt], dtype=np.float64)
        step = lr * finite_difference(spec.program(), params, of, wrt)
        for o, s in zip(old.ravel().tolist(), step.ravel().tolist(), strict=True):
            new = o - s
            if abs(new) < 1e-3 * max(abs(o), abs(s), 1e-3):
                return "the step lands on 0"
            if abs(s) < 3 * unit(new, spec.sig_figs):
                return "the step does not show at this precision"
    return None
