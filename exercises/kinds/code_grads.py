"""Kind `gradient_code`: the learner's function returns gradients computed by hand (no autograd)."""

from __future__ import annotations

from typing import Any

from exercises.codejob import CodeJob, CodeRun
from exercises.grading import combine
from exercises.kinds.code_common import (
    CodeKind,
    all_wrong,
    encode,
    grade_calls,
    hidden_params,
    run_details,
    run_fault,
)
from exercises.model import Variant, Verdict
from exercises.registry import register
from exercises.spec import ExerciseSpec


def arguments(spec: ExerciseSpec) -> list[str]:
    """The learner function's argument names."""
    return list(spec.code.arguments) if spec.code and spec.code.arguments else list(spec.params)


def kwargs_for(spec: ExerciseSpec, params: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Call arguments: plain numbers for scalars, encoded tensors otherwise."""
    return {n: params[n] if not isinstance(params[n], list) else encode(params[n]) for n in names}


@register
class GradientCode(CodeKind):
    """Code: `grads(x, w, b)` returns each asked gradient, run under torch.no_grad()."""

    name = "gradient_code"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Gradient parts with `wrt`, arguments that are parameters."""
        problems = super().check_spec(spec)
        for i, part in enumerate(spec.parts):
            if part.wrt is None:
                problems.append((f"parts.{i}.wrt", "a gradient part needs `wrt`"))
        for i, arg in enumerate(spec.code.arguments if spec.code else []):
            if arg not in spec.params:
                problems.append((f"code.arguments.{i}", f"`{arg}` is not a parameter"))
        return problems

    def _calls(self, spec: ExerciseSpec, variant: Variant) -> list[dict[str, Any]]:
        return [
            variant.params,
            *hidden_params(spec, variant, lambda q: self.variant_problem(spec, q)),
        ]

    def code_job(self, spec: ExerciseSpec, variant: Variant, answer: dict[str, Any]) -> CodeJob:
        """Call the learner's function on the variant, then on hidden inputs."""
        entry = spec.code.entry if spec.code else "grads"
        names = arguments(spec)
        calls = [kwargs_for(spec, p, names) for p in self._calls(spec, variant)]
        return CodeJob(answer["code"], entry, "call", calls, self.limits(spec))

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Autograd's gradients at every call; mistakes at the variant's own call."""
        from exercises.reference import gradient_reference, gradient_values

        first = gradient_reference(spec, variant.params)
        rest = [gradient_values(spec, p) for p in self._calls(spec, variant)[1:]]
        return {
            "calls": [first["values"], *rest],
            "candidates": first["candidates"],
            "values": first["values"],
        }

    def grade_run(
        self, spec: ExerciseSpec, variant: Variant, reference: dict[str, Any], run: CodeRun
    ) -> Verdict:
        """Per part: right on the learner's variant and on every hidden input."""
        fault = run_fault(spec, run)
        if fault:
            return all_wrong(spec, fault, run)
        aliases = {p.wrt: p.name for p in spec.parts if p.wrt}
        graded = grade_calls(spec, run.outputs, reference, aliases)
        if isinstance(graded, str):
            return all_wrong(spec, graded, run)
        verdict = combine(spec, graded)
        return Verdict(verdict.score, verdict.parts, verdict.message, details=run_details(run))
