"""Reference answers with autograd in float64 (worker side; imports torch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from exercises.diagnosis.candidates import (
    Candidate,
    GradQuestion,
    declared,
    mapped,
    mutated_gradients,
    useful,
)
from exercises.lang import torcheval as te
from exercises.spec import ExerciseSpec

ToAnswer = Callable[[str, Any], Any]  # (part name, gradient as data) -> the asked value
Extra = Callable[[str, Any], list[Candidate]]  # (part name, gradient) -> kind's own mistakes


def questions(spec: ExerciseSpec) -> list[GradQuestion]:
    """The gradient parts of a spec as questions for autograd."""
    return [
        GradQuestion(p.name, p.label, p.of or spec.output_name, p.wrt)
        for p in spec.parts
        if p.wrt is not None and p.input in ("number", "tensor")
    ]


def run_forward(spec: ExerciseSpec, params: Mapping[str, Any]) -> dict[str, te.Tensor]:
    """Every named node's tensor, leaves requiring grad as the spec says."""
    grads = {k: p.requires_grad for k, p in spec.params.items()}
    return te.run(spec.program(), te.leaves(params, grads))


def gradient_values(spec: ExerciseSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Each gradient part's d(of)/d(wrt) as data."""
    values = run_forward(spec, params)
    return {q.name: te.gradient(values, q.of, q.wrt).tolist() for q in questions(spec)}


def gradient_reference(
    spec: ExerciseSpec,
    params: Mapping[str, Any],
    to_answer: ToAnswer | None = None,
    extra: Extra | None = None,
) -> dict[str, Any]:
    """Truth per part (via `to_answer`), raw gradients, forward values and ranked mistakes."""
    values = run_forward(spec, params)
    qs = questions(spec)
    raw = {q.name: te.gradient(values, q.of, q.wrt).tolist() for q in qs}
    convert: ToAnswer = to_answer or (lambda part, g: g)
    truth = {name: convert(name, g) for name, g in raw.items()}
    mutated = mutated_gradients(spec, params, qs)
    candidates: dict[str, list[Candidate]] = {}
    for q in qs:
        ranked = declared(spec, params, q.name)
        ranked += extra(q.name, raw[q.name]) if extra else []
        ranked += mapped(mutated[q.name], partial(convert, q.name))
        candidates[q.name] = useful(spec, truth[q.name], ranked)
    return {
        "values": truth,
        "gradients": raw,
        "forward": {k: v.detach().tolist() for k, v in values.items()},
        "candidates": candidates,
    }
