"""Kind `train_step`: the learner's forward-loss-backward-update step for a tiny model."""

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
from exercises.model import PartVerdict, Variant, Verdict
from exercises.registry import register
from exercises.spec import ExerciseSpec

LR = "lr"


@register
class TrainStep(CodeKind):
    """Code: `train_step(...)` returns the loss before the step and the updated parameters."""

    name = "train_step"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """An `sgd` block; parts are updated parameters (`wrt`) or forward values (`of`)."""
        problems = super().check_spec(spec)
        if spec.sgd is None:
            problems.append(("sgd", "train_step needs `sgd: {lr: ...}`"))
        for i, part in enumerate(spec.parts):
            if part.wrt is not None and part.wrt not in spec.params:
                problems.append((f"parts.{i}.wrt", "an updated value must be a parameter"))
            if part.wrt is None and part.of is None:
                problems.append((f"parts.{i}", "a part needs `wrt` (updated) or `of` (a value)"))
        return problems

    def _params(self, spec: ExerciseSpec, variant: Variant) -> list[dict[str, Any]]:
        from exercises.kinds.gradients import gradient_parts

        return [variant.params, *hidden_params(spec, variant, gradient_parts(spec))]

    def code_job(self, spec: ExerciseSpec, variant: Variant, answer: dict[str, Any]) -> CodeJob:
        """Call the step with fresh tensors (parameters require grad) and the learning rate."""
        lr = spec.sgd.lr if spec.sgd else 0.0
        names = list(spec.code.arguments) if spec.code and spec.code.arguments else list(spec.params)
        calls = []
        for p in self._params(spec, variant):
            kwargs: dict[str, Any] = {
                n: encode(p[n], spec.params[n].requires_grad) for n in names if n in spec.params
            }
            if LR in names or not spec.code or not spec.code.arguments:
                kwargs[LR] = lr
            calls.append(kwargs)
        entry = spec.code.entry if spec.code else "train_step"
        return CodeJob(answer["code"], entry, "train_step", calls, self.limits(spec))

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Per call: the updated parameters and forward values; mistakes at the variant."""
        from exercises.registry import get_kind

        update = get_kind("update_step")
        calls, candidates = [], {}
        for i, p in enumerate(self._params(spec, variant)):
            ref = update.compute_reference(spec, Variant(params=p, seed=variant.seed))
            values = dict(ref["values"])
            for part in spec.parts:
                if part.wrt is None and part.of is not None:
                    values[part.name] = ref["forward"][part.of]
            calls.append(values)
            if i == 0:
                candidates = ref["candidates"]
        return {"calls": calls, "candidates": candidates, "values": calls[0]}

    def grade_run(
        self, spec: ExerciseSpec, variant: Variant, reference: dict[str, Any], run: CodeRun
    ) -> Verdict:
        """Per part, right on the learner's variant and every hidden input."""
        fault = run_fault(spec, run)
        if fault:
            return all_wrong(spec, fault, run)
        names = [p.name for p in spec.parts]
        calls = reference["calls"]
        decoded = [per_part(names, o) for o in run.outputs[: len(calls)]]
        problem = next((d for d in decoded if isinstance(d, str)), None)
        if problem or len(decoded) < len(calls):
            return all_wrong(spec, f"Your step's result: {problem or 'missing outputs'}", run)
        verdicts = []
        for part in spec.parts:
            ok = [close(d[part.name], c[part.name], CODE_SIG_FIGS, spec.zero_tolerance)  # type: ignore[index]
                  for d, c in zip(decoded, calls, strict=True)]
            first = decoded[0][part.name]  # type: ignore[index]
            given = first.tolist() if first is not None else None
            expected = calls[0][part.name]
            if all(ok):
                verdicts.append(PartVerdict(part.name, True, "Right.", 1.0, expected=expected, given=given))
                continue
            found = match_candidate(given, reference["candidates"].get(part.name, []), spec) if given is not None else None
            message = ("Right on your inputs but not on hidden ones." if ok[0] else "Not right.")
            if found and not ok[0]:
                message += f" {found['message']}"
            diagnosis = {k: found.get(k) for k in ("code", "node", "rule", "message")} if found and not ok[0] else None
            verdicts.append(PartVerdict(part.name, False, message, 0.0, expected=expected, given=given, diagnosis=diagnosis))
        verdict = combine(spec, verdicts)
        return Verdict(verdict.score, verdict.parts, verdict.message, details=run_details(run))
