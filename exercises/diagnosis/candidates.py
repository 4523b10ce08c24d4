"""Wrong answers that known mistakes produce, recomputed with autograd (torch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exercises.diagnosis.rules import mutations
from exercises.lang import torcheval as te
from exercises.lang.numeric import EvalError, eval_formula, run_program
from exercises.lang.ops import OPS
from exercises.lang.parse import LangError, parse_formula
from exercises.numbers import agrees_all
from exercises.spec import ExerciseSpec

Candidate = dict[str, Any]  # {"value", "code", "node", "rule", "message"}


@dataclass(frozen=True)
class GradQuestion:
    """One asked gradient: part `name` is d(of)/d(wrt)."""

    name: str
    label: str
    of: str
    wrt: str


def _cand(value: Any, code: str, node: str | None, rule: str | None, message: str) -> Candidate:
    return {"value": value, "code": code, "node": node, "rule": rule, "message": message}


def mutated_gradients(
    spec: ExerciseSpec, params: Mapping[str, Any], questions: Sequence[GradQuestion]
) -> dict[str, list[Candidate]]:
    """Per question, gradients under each known mistake, most specific first (unfiltered)."""
    program = spec.program()
    grads = {k: p.requires_grad for k, p in spec.params.items()}
    out: dict[str, list[Candidate]] = {q.name: [] for q in questions}
    ofs = sorted({q.of for q in questions})
    for mutation, site, rule in mutations(program):
        values = te.run(program, te.leaves(params, grads), mutation)
        found = {of: te.gradients(values, of, [q.wrt for q in questions]) for of in ofs}
        for q in questions:
            g = found[q.of][q.wrt].tolist()
            message = (
                f"Your answer is what you get when, at `{site.label}` (in "
                f"`{site.target} = ...`), {rule.message}."
            )
            out[q.name].append(_cand(g, rule.code, site.label, OPS[site.op.fn].rule, message))
    values = te.run(program, te.leaves(params, grads))
    nodes = [n for n in [*spec.params, *program.names] if values[n].requires_grad]
    wrts = sorted({q.wrt for q in questions})
    down = {of: te.gradients(values, of, nodes) for of in ofs}
    up = {n: te.gradients(values, n, wrts) for n in program.names if values[n].shape == ()}
    truth = {q.name: down[q.of][q.wrt] for q in questions}
    for q in questions:
        own = truth[q.name]
        for other in questions:
            if other.name != q.name and truth[other.name].shape == own.shape:
                message = (
                    f"This is the value of part `{other.name}` ({other.label}), not of this one."
                )
                out[q.name].append(
                    _cand(truth[other.name].tolist(), "swapped_parts", other.wrt, None, message)
                )
        for node in nodes:
            if node in (q.wrt, q.of) or values[node].shape != own.shape:
                continue
            message = f"This is the derivative with respect to `{node}`, not `{q.wrt}`."
            out[q.name].append(
                _cand(down[q.of][node].tolist(), "wrong_variable", node, None, message)
            )
        for node, grads_up in up.items():
            if node == q.of or not values[node].requires_grad:
                continue
            message = (
                f"This is only $\\partial {node}/\\partial {q.wrt}$: the chain rule must "
                f"continue from `{node}` up to `{q.of}`."
            )
            out[q.name].append(
                _cand(grads_up[q.wrt].tolist(), "chain_incomplete", node, "chain rule", message)
            )
        out[q.name] += [
            _cand(
                (own * 2).tolist(),
                "accumulated_twice",
                None,
                ".grad accumulates",
                "This is twice the gradient, as if backward() had run twice and .grad had "
                "accumulated.",
            ),
            _cand((-own).tolist(), "sign_flipped", None, None, "The sign is flipped."),
        ]
    return out


def declared(spec: ExerciseSpec, params: Mapping[str, Any], part: str) -> list[Candidate]:
    """The exercise's own known wrong answers for `part`; formulas are evaluated on `params`."""
    out: list[Candidate] = []
    env = run_program(spec.program(), params).values if spec.forward.strip() else {}
    for wrong in spec.misconceptions:
        if wrong.part != part or wrong.value is None:
            continue
        value: Any = wrong.value
        if isinstance(value, str):
            try:
                node = parse_formula(value, set(env))
                value = eval_formula(node, env).tolist()
            except (LangError, EvalError):
                continue
        out.append(_cand(value, wrong.code, wrong.node, wrong.rule, wrong.message))
    return out


def mapped(cands: list[Candidate], fn: Callable[[Any], Any]) -> list[Candidate]:
    """Candidates with `fn` applied to each value (e.g. gradient -> weight after a step)."""
    return [{**c, "value": fn(c["value"])} for c in cands]


def _same(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any], spec: ExerciseSpec) -> bool:
    return agrees_all(a, b, spec.sig_figs, spec.zero_tolerance)


def useful(spec: ExerciseSpec, truth: Any, cands: list[Candidate]) -> list[Candidate]:
    """Drop candidates that are right, not finite, of another shape, or repeat an earlier one."""
    kept: list[Candidate] = []
    kept_values: list[np.ndarray[Any, Any]] = []
    t = np.asarray(truth, dtype=np.float64)
    for cand in cands:
        v = np.asarray(cand["value"], dtype=np.float64)
        if v.shape != t.shape or not np.all(np.isfinite(v)) or _same(v, t, spec):
            continue
        if any(_same(v, k, spec) for k in kept_values):
            continue
        kept.append(cand)
        kept_values.append(v)
    return kept
