"""Kind `accumulation`: `.grad` after several backward calls (retain_graph), and why it matters."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.kinds.gradients import NumericGradients
from exercises.model import Variant
from exercises.registry import register
from exercises.spec import ExerciseSpec

SECOND_BACKWARD = "Trying to backward through the graph a second time"


@register
class Accumulation(NumericGradients):
    """Numbers: what `.grad` holds after `calls` backward passes; choices about the graph's life."""

    name = "accumulation"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """A `backward` block; repeated calls without retain_graph have no numbers to ask."""
        problems = super().check_spec(spec)
        if spec.backward is None:
            problems.append(("backward", "accumulation needs `backward: {calls: ...}`"))
        elif (
            spec.backward.calls > 1
            and not spec.backward.retain_graph
            and any(p.input != "choice" for p in spec.parts)
        ):
            problems.append(("backward.retain_graph", "without it the second backward() raises"))
        for i, part in enumerate(spec.parts):
            if part.wrt is not None and part.wrt not in spec.params:
                problems.append((f"parts.{i}.wrt", "`.grad` is only kept on leaves"))
        return problems

    def listing_tail(self, spec: ExerciseSpec) -> str:
        """The spec's backward calls, with zeroing in between when asked."""
        if spec.backward is None:
            return super().listing_tail(spec)
        out, calls = spec.output_name, spec.backward.calls
        retain = spec.backward.retain_graph
        zero = "; ".join(f"{n}.grad = None" for n, p in spec.params.items() if p.requires_grad)
        lines: list[str] = []
        for i in range(calls):
            last = i == calls - 1
            lines.append(
                f"{out}.backward()" if last or not retain else f"{out}.backward(retain_graph=True)"
            )
            if spec.backward.zero_grad_between and not last:
                lines.append(zero)
        return "\n".join(lines)

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Run backward() `calls` times and read `.grad`; record the error without retain_graph."""
        from exercises.lang import torcheval as te
        from exercises.reference import gradient_reference, run_forward

        calls = spec.backward.calls if spec.backward is not None else 1
        zero = spec.backward.zero_grad_between if spec.backward is not None else False
        values = run_forward(spec, variant.params)
        out = values[spec.output_name]
        for i in range(calls):
            if zero:
                for name in spec.params:
                    values[name].grad = None
            out.backward(retain_graph=i < calls - 1)
        held = {
            p.name: (
                values[p.wrt].grad
                if values[p.wrt].grad is not None
                else te.torch.zeros_like(values[p.wrt])
            ).tolist()  # type: ignore[union-attr]
            for p in spec.parts
            if p.wrt is not None
        }
        factor = 1 if zero else calls
        reference = gradient_reference(
            spec,
            variant.params,
            lambda part, g: (np.asarray(g) * factor).tolist(),
            lambda part, g: [
                {
                    "value": g,
                    "code": "single_backward",
                    "node": part,
                    "rule": ".grad accumulates",
                    "message": "That is the gradient of one backward() call; .grad adds up "
                    "the gradients of every call until it is zeroed.",
                }
            ],
        )
        reference["values"] = held  # what torch really left in .grad
        reference["second_backward_error"] = _second_backward_error(spec, variant)
        return reference


def _second_backward_error(spec: ExerciseSpec, variant: Variant) -> str:
    from exercises.reference import run_forward

    out = run_forward(spec, variant.params)[spec.output_name]
    out.backward()
    try:
        out.backward()
    except RuntimeError as exc:
        return str(exc).split(".")[0]
    return ""
