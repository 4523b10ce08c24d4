"""Kind `gradient_code`: the learner's function returns gradients computed by hand (no autograd)."""

from __future__ import annotations

from typing import Any

from exercises.codejob import CodeJob, CodeRun
from exercises.grading import combine, match_candidate
from exercises.kinds.code_common import (
    CODE_SIG_FIGS,
    CodeKind,
    all_wrong,
    close,
    encode,
    hidden_params,
    per_part,
    run_details,
    run_fault,
)
from exercises.kinds.gradients import gradient_parts
from exercises.model import PartVerdict, Variant, Verdict
from exercises.registry import register
from exercises.spec import ExerciseSpec


def arguments(spec: ExerciseSpec) -> list[str]:
    """The learner function's argument names."""
    return list(spec.code.arguments) if spec.code and spec.code.arguments else list(spec.params)


def kwargs_for(spec: ExerciseSpec, params: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Call arguments: plain numbers for scalars, encoded tensors otherwise."""
    return {
        n: params[n] if not isinstance(params[n], list) else encode(params[n]) for n in names
    }


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
        return [variant.params, *hidden_params(spec, variant, gradient_parts(spec))]

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
        return {"calls": [first["values"], *rest], "candidates": first["candidates"],
                "values": first["values"]}

    def grade_run(
        self, spec: ExerciseSpec, variant: Variant, reference: dict[str, Any], run: CodeRun
    ) -> Verdict:
        """Per part: right on the learner's variant and on every hidden input."""
        fault = run_fault(spec, run)
        if fault:
            return all_wrong(spec, fault, run)
        names = [p.name for p in spec.parts]
        aliases = {p.wrt: p.name for p in spec.parts if p.wrt}
        calls = reference["calls"]
        decoded = [per_part(names, out, aliases) for out in run.outputs[: len(calls)]]
        problem = next((d for d in decoded if isinstance(d, str)), None)
        if problem or len(decoded) < len(calls):
            return all_wrong(spec, f"Your function's result: {problem or 'missing outputs'}", run)
        verdicts = []
        for part in spec.parts:
            ok = [close(d[part.name], c[part.name], CODE_SIG_FIGS, spec.zero_tolerance)  # type: ignore[index]
                  for d, c in zip(decoded, calls, strict=True)]
            verdicts.append(self._part(spec, part.name, ok, decoded[0], reference))
        verdict = combine(spec, verdicts)
        return Verdict(verdict.score, verdict.parts, verdict.message, details=run_details(run))

    def _part(
        self, spec: ExerciseSpec, name: str, ok: list[bool], first: Any, reference: dict[str, Any]
    ) -> PartVerdict:
        expected = reference["values"][name]
        given = first[name].tolist() if first[name] is not None else None
        hidden_wrong = ok[1:].count(False)
        if all(ok):
            return PartVerdict(name, True, f"Right on your inputs and {len(ok) - 1} hidden ones.",
                               1.0, expected=expected, given=given)
        if ok[0]:
            return PartVerdict(name, False, f"Right on your inputs but wrong on {hidden_wrong} of "
                               f"{len(ok) - 1} hidden ones: is something hard-coded?",
                               0.0, expected=expected, given=given)
        found = match_candidate(given, reference["candidates"].get(name, []), spec) if given is not None else None
        message = "Not right on your inputs." + (f" {found['message']}" if found else "")
        diagnosis = {k: found.get(k) for k in ("code", "node", "rule", "message")} if found else None
        return PartVerdict(name, False, message, 0.0, expected=expected, given=given, diagnosis=diagnosis)
