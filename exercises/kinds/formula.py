"""Kind `formula`: a derivative written as an expression, checked at several points vs autograd."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.formula import evaluate_at, parse, symbols
from exercises.grading import combine, diagnosis_of
from exercises.kinds.common import degeneracy_problem
from exercises.kinds.gradients import NumericGradients, gradient_parts
from exercises.lang.parse import LangError
from exercises.model import PartVerdict, Variant, Verdict
from exercises.numbers import agrees
from exercises.registry import register
from exercises.spec import ExerciseSpec, PartSpec
from exercises.variants import draw_params, rng_for

FORMULA_SIG_FIGS = 6  # a formula is exact: only rounding in its evaluation may differ


def sample_points(spec: ExerciseSpec, variant: Variant) -> list[dict[str, Any]]:
    """The variant's own point, then seeded non-degenerate draws (torch-free)."""
    points = [dict(variant.params)]
    parts = gradient_parts(spec)
    for attempt in range(200):
        if len(points) >= spec.formula_points:
            break
        params = draw_params(spec, rng_for(spec.slug, variant.seed, "point", attempt))
        if degeneracy_problem(spec, params, parts) is None and params not in points:
            points.append(params)
    return points


def _agree_all(a: list[float], b: list[float], spec: ExerciseSpec) -> bool:
    return len(a) == len(b) and all(
        agrees(x, y, FORMULA_SIG_FIGS, spec.zero_tolerance) for x, y in zip(a, b, strict=True)
    )


@register
class Formula(NumericGradients):
    """Text parts: d(of)/d(wrt) as a formula in the exercise's symbols."""

    name = "formula"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Forward code, scalar parameters, and formula parts that name `wrt`."""
        problems: list[tuple[str, str]] = []
        if not spec.forward.strip():
            problems.append(("forward", "kind formula needs forward code"))
        for i, part in enumerate(spec.parts):
            if part.input != "formula":
                problems.append((f"parts.{i}.input", "formula parts only"))
            if part.wrt is None:
                problems.append((f"parts.{i}.wrt", "a formula part needs `wrt`"))
        for name, param in spec.params.items():
            if isinstance(param.value, list):
                problems.append((f"params.{name}.value", "formulas use scalar symbols"))
        return problems

    def listing_tail(self, spec: ExerciseSpec) -> str:
        """No backward call: the learner derives the formula."""
        return ""

    def learner_view(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """As usual, plus the symbols a formula may use."""
        view = super().learner_view(spec, variant)
        view["symbols"] = symbols(spec)
        view["functions"] = ["sigmoid", "tanh", "exp", "log", "relu", "sqrt", "abs"]
        return view

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Autograd at every sample point; mistakes as values at every point."""
        from exercises.diagnosis.candidates import declared, mutated_gradients
        from exercises.lang import torcheval as te
        from exercises.reference import run_forward

        qs = questions_formula(spec)
        points: list[dict[str, Any]] = []
        truth: dict[str, list[float]] = {q.name: [] for q in qs}
        cands: dict[str, list[dict[str, Any]]] = {}
        for params in sample_points(spec, variant):
            values = run_forward(spec, params)
            points.append({k: v.detach().item() for k, v in values.items()})
            mutated = mutated_gradients(spec, params, qs)
            for q in qs:
                truth[q.name].append(te.gradient(values, q.of, q.wrt).item())
                here = declared(spec, params, q.name) + mutated[q.name]
                if q.name not in cands:
                    cands[q.name] = [{**c, "value": [c["value"]]} for c in here]
                else:
                    for kept, new in zip(cands[q.name], here, strict=True):
                        kept["value"].append(new["value"])
        expected = {p.name: spec.worked_example.get(p.name) for p in spec.parts}
        return {
            "points": points,
            "values": truth,
            "expected": expected,
            "candidates": {k: _useful(spec, truth[k], v) for k, v in cands.items()},
        }

    def grade(
        self,
        spec: ExerciseSpec,
        variant: Variant,
        reference: dict[str, Any],
        answer: dict[str, Any],
    ) -> Verdict:
        """Parse each formula safely and compare it with autograd at every sample point."""
        return combine(
            spec, [self._part(spec, p, reference, answer.get(p.name)) for p in spec.parts]
        )

    def _part(
        self, spec: ExerciseSpec, part: PartSpec, reference: dict[str, Any], raw: Any
    ) -> PartVerdict:
        expected = reference["expected"].get(part.name)
        if raw is None:
            return PartVerdict(part.name, False, "no answer", expected=expected, given=raw)
        if not isinstance(raw, str):
            return PartVerdict(
                part.name,
                False,
                "a formula is text, e.g. x * (1 - x)",
                expected=expected,
                given=raw,
            )
        try:
            node = parse(spec, raw)
        except LangError as exc:
            return PartVerdict(
                part.name, False, f"Cannot read your formula: {exc}", expected=expected, given=raw
            )
        values = evaluate_at(node, reference["points"])
        if isinstance(values, str):
            return PartVerdict(part.name, False, values, expected=expected, given=raw)
        truth = reference["values"][part.name]
        if _agree_all(values, truth, spec):
            return PartVerdict(part.name, True, "Right.", 1.0, expected=expected, given=raw)
        found = next(
            (
                c
                for c in reference["candidates"].get(part.name, [])
                if _agree_all(values, c["value"], spec)
            ),
            None,
        )
        bad = sum(
            1
            for v, t in zip(values, truth, strict=True)
            if not agrees(v, t, FORMULA_SIG_FIGS, spec.zero_tolerance)
        )
        message = f"Not right: your formula differs from autograd at {bad} of {len(truth)} points."
        if found:
            message += f" {found['message']}"
        return PartVerdict(
            part.name,
            False,
            message,
            0.0,
            expected=expected,
            given=raw,
            diagnosis=diagnosis_of(found) if found else None,
        )


def questions_formula(spec: ExerciseSpec) -> list[Any]:
    """Formula parts as gradient questions."""
    from exercises.diagnosis.candidates import GradQuestion

    return [
        GradQuestion(p.name, p.label, p.of or spec.output_name, p.wrt)
        for p in spec.parts
        if p.wrt is not None
    ]


def _useful(
    spec: ExerciseSpec, truth: list[float], cands: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for cand in cands:
        values = [float(v) for v in np.asarray(cand["value"], dtype=np.float64).ravel()]
        if len(values) != len(truth) or not all(np.isfinite(values)):
            continue
        if _agree_all(values, truth, spec) or any(
            _agree_all(values, k["value"], spec) for k in kept
        ):
            continue
        kept.append({**cand, "value": values})
    return kept
