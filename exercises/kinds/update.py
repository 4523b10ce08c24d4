"""Kind `update_step`: the weights after one SGD step, w - lr * dL/dw."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.kinds.common import degeneracy_problem, update_problem
from exercises.kinds.gradients import NumericGradients, gradient_parts
from exercises.model import Variant
from exercises.registry import register
from exercises.spec import ExerciseSpec


def _lr(spec: ExerciseSpec) -> float:
    return spec.sgd.lr if spec.sgd is not None else 0.0


@register
class UpdateStep(NumericGradients):
    """Numbers or tensors: each asked leaf's value after `w -= lr * w.grad`."""

    name = "update_step"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """An `sgd` block, and parts asking for leaves (parameters), not intermediates."""
        problems = super().check_spec(spec)
        if spec.sgd is None:
            problems.append(("sgd", "update_step needs `sgd: {lr: ...}`"))
        for i, part in enumerate(spec.parts):
            if part.wrt is not None and part.wrt not in spec.params:
                problems.append((f"parts.{i}.wrt", "an updated value must be a parameter"))
        return problems

    def listing_tail(self, spec: ExerciseSpec) -> str:
        """backward(), then the SGD step on every asked parameter."""
        steps = [f"    {p.wrt} -= lr * {p.wrt}.grad" for p in spec.parts if p.wrt is not None]
        return f"{spec.output_name}.backward()\nwith torch.no_grad():\n" + "\n".join(steps)

    def learner_view(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """As for gradients, plus the learning rate."""
        view = super().learner_view(spec, variant)
        view["params"] = {**view["params"], "lr": _lr(spec)}
        view["forward_code"] = view["forward_code"].replace(
            "\n\n" + spec.output_name + ".backward()",
            f"\nlr = {_lr(spec)!r}\n\n{spec.output_name}.backward()",
            1,
        )
        return view

    def make_variant(self, spec: ExerciseSpec, seed: int) -> Variant:
        """Also reject variants whose step is too small to show, or lands on 0."""
        from exercises.variants import make_seeded_variant

        parts = gradient_parts(spec)

        def problem(params: dict[str, Any]) -> str | None:
            return degeneracy_problem(spec, params, parts) or update_problem(spec, params, parts)

        return make_seeded_variant(spec, seed, problem)

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """p - lr * grad per part, with the usual mistakes of an update step."""
        from exercises.reference import gradient_reference

        lr = _lr(spec)
        wrt = {p.name: p.wrt for p in spec.parts if p.wrt is not None}

        def old(part: str) -> Any:
            return np.asarray(variant.params[wrt[part]], dtype=np.float64)

        def to_answer(part: str, g: Any) -> Any:
            return (old(part) - lr * np.asarray(g)).tolist()

        def extra(part: str, g: Any) -> list[dict[str, Any]]:
            grad = np.asarray(g)
            name = wrt[part]
            return [
                _c(
                    (old(part) + lr * grad).tolist(),
                    "wrong_direction",
                    name,
                    "The step went uphill: gradient descent subtracts, $p - \\eta\\,\\nabla p$.",
                ),
                _c(old(part).tolist(), "no_update", name, "That is the value before the step."),
                _c(
                    g,
                    "gradient_not_update",
                    name,
                    "That is the gradient; the question asks for the value after the step.",
                ),
                _c(
                    (old(part) - grad).tolist(),
                    "learning_rate_missing",
                    name,
                    "The learning rate is missing: the step is $\\eta$ times the gradient.",
                ),
            ]

        return gradient_reference(spec, variant.params, to_answer, extra)


def _c(value: Any, code: str, node: str, message: str) -> dict[str, Any]:
    return {
        "value": value,
        "code": code,
        "node": node,
        "rule": "p <- p - lr * p.grad",
        "message": message,
    }
