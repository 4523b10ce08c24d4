"""Cross-field checks of an ExerciseSpec, each problem named by its field path."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from exercises.lang.ir import Program
from exercises.lang.numeric import EvalError, run_program
from exercises.lang.parse import LangError, parse_program

if TYPE_CHECKING:
    from exercises.spec import ExerciseSpec

Problem = tuple[str, str]
MAX_PARAM_ENTRIES = 256  # exercises are tiny by design; this bounds every evaluation


@lru_cache(maxsize=512)
def parsed_program(source: str, inputs: tuple[str, ...]) -> Program:
    """Parse forward code once per (source, inputs)."""
    return parse_program(source, set(inputs))


def spec_problems(spec: ExerciseSpec) -> list[Problem]:
    """Every semantic problem of a structurally valid spec."""
    from exercises.errors import UnknownKindError
    from exercises.registry import get_kind

    problems: list[Problem] = []
    for name, param in spec.params.items():
        if param.range is not None and not param.range[0] < param.range[1]:
            problems.append((f"params.{name}.range", "lo must be below hi"))
        if np.asarray(param.value, dtype=object).size > MAX_PARAM_ENTRIES:
            problems.append((f"params.{name}.value", f"more than {MAX_PARAM_ENTRIES} entries"))
    problems += _part_problems(spec)
    try:
        kind = get_kind(spec.kind)
    except UnknownKindError as exc:
        return [*problems, ("kind", str(exc))]
    if spec.forward.strip():
        problems += _forward_problems(spec, kind.scalar_output)
    if not problems:
        problems += kind.check_spec(spec)
    return problems


def _part_problems(spec: ExerciseSpec) -> list[Problem]:
    problems: list[Problem] = []
    names = [p.name for p in spec.parts]
    for i, part in enumerate(spec.parts):
        path = f"parts.{i}"
        if part.name in names[:i]:
            problems.append((f"{path}.name", f"part name `{part.name}` is used twice"))
        for j, link in enumerate(part.chain):
            if link not in names[:i]:
                problems.append((f"{path}.chain.{j}", f"`{link}` is not an earlier part"))
        if part.input == "choice":
            ids = [c.id for c in part.choices]
            if len(ids) < 2:
                problems.append((f"{path}.choices", "a choice part needs at least two choices"))
            if len(set(ids)) != len(ids):
                problems.append((f"{path}.choices", "choice ids must be unique"))
            if part.answer not in ids:
                problems.append((f"{path}.answer", "must be the id of one of the choices"))
        elif part.choices or part.answer is not None:
            problems.append((f"{path}.choices", "only choice parts have choices and an answer"))
    for key in spec.worked_example:
        if key not in names:
            problems.append((f"worked_example.{key}", "no part has this name"))
    for i, wrong in enumerate(spec.misconceptions):
        if wrong.part not in names:
            problems.append((f"misconceptions.{i}.part", f"no part is called `{wrong.part}`"))
    for i, name in enumerate(spec.degeneracy.allow_zero):
        if name not in names:
            problems.append((f"degeneracy.allow_zero.{i}", f"no part is called `{name}`"))
    return problems


def _forward_problems(spec: ExerciseSpec, scalar_output: bool) -> list[Problem]:
    try:
        program = spec.program()
    except LangError as exc:
        return [("forward", str(exc))]
    nodes = set(spec.params) | set(program.names)
    problems: list[Problem] = []
    if spec.output is not None and spec.output not in program.names:
        problems.append(("output", f"`{spec.output}` is not assigned in forward"))
    for i, part in enumerate(spec.parts):
        for attr in ("of", "wrt"):
            ref = getattr(part, attr)
            if ref is not None and ref not in nodes:
                problems.append((f"parts.{i}.{attr}", f"`{ref}` is not a node of forward"))
    if problems:
        return problems
    try:
        values = run_program(program, spec.worked_params()).values
    except EvalError as exc:
        return [("forward", str(exc))]
    out = values[spec.output_name]
    if scalar_output and out.shape != ():
        problems.append(("output", f"the output must be a scalar, not of shape {list(out.shape)}"))
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            problems.append(("forward", f"`{name}` is not finite for the worked example"))
    for i, part in enumerate(spec.parts):
        of = part.of or spec.output_name
        if part.wrt is not None and values[of].shape != ():
            problems.append((f"parts.{i}.of", f"`{of}` must be a scalar to take its gradient"))
        if part.input == "number" and part.wrt is not None and values[part.wrt].shape != ():
            problems.append((f"parts.{i}.input", "the answer has a shape: use input: tensor"))
        if part.input == "tensor" and part.wrt is not None and values[part.wrt].shape == ():
            problems.append((f"parts.{i}.input", "the answer is a scalar: use input: number"))
    return problems
