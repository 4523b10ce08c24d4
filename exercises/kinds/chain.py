"""Kind `chain_rule`: each local derivative of the chain, then the product, with carried errors."""

from __future__ import annotations

import math
from typing import Any

from exercises.grading import combine
from exercises.kinds.gradients import NumericGradients
from exercises.model import PartVerdict, Variant, Verdict
from exercises.numbers import agrees, parse_number
from exercises.registry import register
from exercises.spec import ExerciseSpec


@register
class ChainRule(NumericGradients):
    """Steps dL/dŷ, dŷ/dz, dz/dw ... and the final gradient; a later step right given the
    learner's own earlier (wrong) values earns error-carried-forward credit."""

    name = "chain_rule"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Scalar number parts only; at least one part chains earlier ones."""
        problems = super().check_spec(spec)
        for i, part in enumerate(spec.parts):
            if part.input != "number":
                problems.append((f"parts.{i}.input", "chain_rule parts are numbers"))
        if not any(p.chain for p in spec.parts):
            problems.append(("parts", "a chain_rule exercise needs a part with `chain`"))
        return problems

    def grade(
        self,
        spec: ExerciseSpec,
        variant: Variant,
        reference: dict[str, Any],
        answer: dict[str, Any],
    ) -> Verdict:
        """Grade each step; a chained step equal to the product of the learner's own gets ECF."""
        verdicts = {p.part: p for p in super().grade(spec, variant, reference, answer).parts}
        for part in spec.parts:
            verdict = verdicts[part.name]
            if verdict.correct or not part.chain:
                continue
            given = parse_number(answer.get(part.name)).value
            links = [parse_number(answer.get(name)).value for name in part.chain]
            if given is None or any(v is None for v in links):
                continue
            if all(verdicts[name].correct for name in part.chain):
                continue
            product = math.prod(v for v in links if v is not None)
            if product != 0 and agrees(given, product, spec.sig_figs, spec.zero_tolerance):
                wrong = ", ".join(f"`{n}`" for n in part.chain if not verdicts[n].correct)
                message = (
                    f"Error carried forward: this is right given your own {wrong}, so the "
                    "chain rule step is right; fix the earlier step."
                )
                verdicts[part.name] = PartVerdict(
                    part.name,
                    False,
                    message,
                    spec.ecf_credit,
                    expected=verdict.expected,
                    given=verdict.given,
                    diagnosis={
                        "code": "error_carried_forward",
                        "node": part.chain[0],
                        "rule": "chain rule",
                        "message": message,
                    },
                )
        return combine(spec, [verdicts[p.name] for p in spec.parts])
