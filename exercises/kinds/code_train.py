"""Kind `train_step`: the learner's forward-loss-backward-update step for a tiny model."""

from __future__ import annotations

from typing import Any

import numpy as np

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

    def variant_problem(self, spec: ExerciseSpec, params: dict[str, Any]) -> str | None:
        """Degenerate inputs, or a step that is invisible or lands on 0."""
        from exercises.kinds.common import update_problem
        from exercises.kinds.gradients import gradient_parts

        parts = gradient_parts(spec)
        return super().variant_problem(spec, params) or update_problem(spec, params, parts)

    def _params(self, spec: ExerciseSpec, variant: Variant) -> list[dict[str, Any]]:
        return [
            variant.params,
            *hidden_params(spec, variant, lambda q: self.variant_problem(spec, q)),
        ]

    def code_job(self, spec: ExerciseSpec, variant: Variant, answer: dict[str, Any]) -> CodeJob:
        """Call the step with fresh tensors (parameters require grad) and the learning rate."""
        lr = spec.sgd.lr if spec.sgd else 0.0
        names = (
            list(spec.code.arguments) if spec.code and spec.code.arguments else list(spec.params)
        )
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
        from exercises.reference import gradient_values, run_forward
        from exercises.registry import get_kind

        lr = spec.sgd.lr if spec.sgd else 0.0
        first = get_kind("update_step").compute_reference(spec, variant)
        calls, candidates = [], first["candidates"]
        for i, p in enumerate(self._params(spec, variant)):
            if i == 0:
                values, forward = dict(first["values"]), first["forward"]
            else:  # hidden inputs need the truth only, not the mistakes
                grads = gradient_values(spec, p)
                values = {
                    part.name: (
                        np.asarray(p[part.wrt]) - lr * np.asarray(grads[part.name])
                    ).tolist()
                    for part in spec.parts
                    if part.wrt is not None
                }
                forward = {k: v.detach().tolist() for k, v in run_forward(spec, p).items()}
            for part in spec.parts:
                if part.wrt is None and part.of is not None:
                    values[part.name] = forward[part.of]
            calls.append(values)
        return {"calls": calls, "candidates": candidates, "values": calls[0]}

    def grade_run(
        self, spec: ExerciseSpec, variant: Variant, reference: dict[str, Any], run: CodeRun
    ) -> Verdict:
        """Per part: right on the learner's variant and on every hidden input."""
        fault = run_fault(spec, run)
        if fault:
            return all_wrong(spec, fault, run)
        aliases = None
        graded = grade_calls(spec, run.outputs, reference, aliases)
        if isinstance(graded, str):
            return all_wrong(spec, graded, run)
        verdict = combine(spec, graded)
        return Verdict(verdict.score, verdict.parts, verdict.message, details=run_details(run))
