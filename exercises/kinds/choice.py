"""Kind `choice`: concept questions from the notes, options shuffled per learner."""

from __future__ import annotations

from typing import Any

from exercises.grading import combine, grade_choice
from exercises.kinds.base import Kind
from exercises.kinds.common import check_envelope
from exercises.model import Variant, Verdict
from exercises.registry import register
from exercises.spec import ExerciseSpec
from exercises.variants import rng_for


@register
class Choice(Kind):
    """One or more multiple-choice parts; no computation."""

    name = "choice"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Every part is a choice."""
        return [
            (f"parts.{i}.input", "every part of a choice exercise is a choice")
            for i, p in enumerate(spec.parts)
            if p.input != "choice"
        ]

    def make_variant(self, spec: ExerciseSpec, seed: int) -> Variant:
        """The options in a seeded order."""
        rng = rng_for(spec.slug, seed, "order")
        order = {}
        for part in spec.parts:
            ids = [c.id for c in part.choices]
            rng.shuffle(ids)
            order[part.name] = ids
        return Variant(params={"order": order}, seed=seed)

    def worked_example(self, spec: ExerciseSpec) -> Variant:
        """The options in the file's order."""
        order = {p.name: [c.id for c in p.choices] for p in spec.parts}
        return Variant(params={"order": order}, seed=None, label="worked-example")

    def learner_view(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Statement and the options of each part in the variant's order."""
        order = variant.params.get("order", {})
        parts, choices = [], {}
        for part in spec.parts:
            texts = {c.id: c.text for c in part.choices}
            ids = [i for i in order.get(part.name, []) if i in texts] or list(texts)
            options = [{"id": i, "text": texts[i]} for i in ids]
            parts.append(
                {"name": part.name, "label": part.label, "input": "choice", "choices": options}
            )
            choices[part.name] = options
        return {
            "title": spec.title,
            "statement": spec.statement,
            "forward_code": spec.listing,
            "params": {},
            "parts": parts,
            "choices": choices,
        }

    def validate_answer(self, spec: ExerciseSpec, answer: Any) -> dict[str, Any]:
        """An object {part: choice id}."""
        return check_envelope(spec, answer)

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """The right choice of each part."""
        return {"values": {p.name: p.answer for p in spec.parts}}

    def grade(
        self,
        spec: ExerciseSpec,
        variant: Variant,
        reference: dict[str, Any],
        answer: dict[str, Any],
    ) -> Verdict:
        """Right or wrong per part, with the chosen option's feedback."""
        return combine(spec, [grade_choice(p, answer.get(p.name)) for p in spec.parts])
