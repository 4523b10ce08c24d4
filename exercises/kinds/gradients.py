"""Kind `numeric_gradients` (and `tensor_gradients`): d(output)/d(leaf) for any forward code."""

from __future__ import annotations

from typing import Any

from exercises.grading import combine, grade_choice, grade_number, grade_tensor
from exercises.kinds.base import Kind
from exercises.kinds.common import base_view, check_envelope, degeneracy_problem
from exercises.model import PartVerdict, Variant, Verdict
from exercises.registry import register
from exercises.spec import ExerciseSpec


def gradient_parts(spec: ExerciseSpec) -> list[tuple[str, str, str]]:
    """(part, of, wrt) of every gradient part."""
    return [(p.name, p.of or spec.output_name, p.wrt) for p in spec.parts if p.wrt is not None]


@register
class NumericGradients(Kind):
    """Numbers: the gradient of the output with respect to chosen nodes."""

    name = "numeric_gradients"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Forward code, and a `wrt` on every number or tensor part."""
        problems: list[tuple[str, str]] = []
        if not spec.forward.strip():
            problems.append(("forward", f"kind {self.name} needs forward code"))
        for i, part in enumerate(spec.parts):
            if part.input in ("number", "tensor") and part.wrt is None:
                problems.append((f"parts.{i}.wrt", "a gradient part needs `wrt`"))
            if part.input == "formula":
                problems.append((f"parts.{i}.input", f"kind {self.name} has no formula parts"))
        return problems

    def make_variant(self, spec: ExerciseSpec, seed: int) -> Variant:
        """A seeded variant whose gradients are finite, away from kinks and not vanishing."""
        parts = gradient_parts(spec)
        return make_variant_checked(spec, seed, parts)

    def worked_example(self, spec: ExerciseSpec) -> Variant:
        """The variant with the file's worked-example values."""
        return Variant(params=spec.worked_params(), seed=None, label="worked-example")

    def learner_view(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Statement, the PyTorch listing with the variant's numbers, and the parts."""
        return base_view(spec, variant, self.listing_tail(spec))

    def listing_tail(self, spec: ExerciseSpec) -> str:
        """The code after the forward pass in the learner's listing."""
        return f"{spec.output_name}.backward()"

    def validate_answer(self, spec: ExerciseSpec, answer: Any) -> dict[str, Any]:
        """An object keyed by part names."""
        return check_envelope(spec, answer)

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Autograd in float64: each part's gradient, the forward values and misconceptions."""
        from exercises.reference import gradient_reference

        return gradient_reference(spec, variant.params)

    def grade(
        self,
        spec: ExerciseSpec,
        variant: Variant,
        reference: dict[str, Any],
        answer: dict[str, Any],
    ) -> Verdict:
        """Per part: numbers by significant figures, tensors by shape then entries."""
        verdicts: list[PartVerdict] = []
        for part in spec.parts:
            raw = answer.get(part.name)
            if part.input == "choice":
                verdicts.append(grade_choice(part, raw))
                continue
            true = reference["values"][part.name]
            cands = reference["candidates"].get(part.name, [])
            grade = grade_tensor if part.input == "tensor" else grade_number
            verdicts.append(grade(part, raw, true, cands, spec))
        return combine(spec, verdicts)


def make_variant_checked(
    spec: ExerciseSpec, seed: int, parts: list[tuple[str, str, str]]
) -> Variant:
    """A seeded variant passing the exercise's degeneracy rules."""
    from exercises.variants import make_seeded_variant

    return make_seeded_variant(spec, seed, lambda params: degeneracy_problem(spec, params, parts))


@register
class TensorGradients(NumericGradients):
    """Tensors: dL/dW of a tiny linear layer or MLP, shape checked first."""

    name = "tensor_gradients"
