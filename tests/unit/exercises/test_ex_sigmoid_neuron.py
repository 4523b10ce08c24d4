"""The canonical exercise end to end: oracle, tolerance traps, bad input."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

import numpy as np
import pytest
import torch

from exercises.errors import AnswerFormatError
from exercises.model import Variant
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec

WORKED = {"w": -3.31703e-06, "b": -1.65852e-06, "x": -4.97555e-06}


def by_hand(x: float, w: float, b: float) -> dict[str, float]:
    """The chain rule written out with the math module: an oracle independent of autograd."""
    y = 1.0 / (1.0 + math.exp(-(w * x + b)))
    dz = -2.0 * (1.0 - y) * y * (1.0 - y)
    return {"w": dz * x, "b": dz, "x": dz * w}


def torch_reference(params: dict[str, float], dtype: torch.dtype) -> dict[str, float]:
    """The notes' listing, run with autograd in `dtype`."""
    x, w, b = (torch.tensor(params[k], dtype=dtype, requires_grad=True) for k in "xwb")
    loss = (1 - torch.sigmoid(w * x + b)) ** 2
    loss.backward()
    return {"w": w.grad.item(), "b": b.grad.item(), "x": x.grad.item()}  # type: ignore[union-attr]


def test_worked_example_reference(sigmoid_neuron: ExerciseSpec) -> None:
    kind = get_kind("numeric_gradients")
    ref = kind.compute_reference(sigmoid_neuron, kind.worked_example(sigmoid_neuron))
    for part, value in WORKED.items():
        assert ref["values"][part] == pytest.approx(value, rel=5e-6)
    assert ref["forward"]["z"] == 7.0
    assert ref["forward"]["loss"] == pytest.approx(8.3001e-07, rel=1e-4)
    assert sigmoid_neuron.worked_example == WORKED


def test_reference_matches_hand_derivation_for_many_variants(sigmoid_neuron: ExerciseSpec) -> None:
    kind = get_kind("numeric_gradients")
    for seed in range(100):
        variant = kind.make_variant(sigmoid_neuron, seed)
        ref = kind.compute_reference(sigmoid_neuron, variant)
        expected = by_hand(**variant.params)
        for part in "wbx":
            assert ref["values"][part] == pytest.approx(expected[part], rel=1e-10, abs=1e-300)


def test_random_inputs_beyond_ranges_match_torch(sigmoid_neuron: ExerciseSpec) -> None:
    from exercises.reference import gradient_reference

    rng = random.Random(5)
    for _ in range(100):
        params = {k: rng.uniform(-6, 6) for k in "xwb"}
        ref = gradient_reference(sigmoid_neuron, params)
        expected = torch_reference(params, torch.float64)
        for part in "wbx":
            assert ref["values"][part] == pytest.approx(expected[part], rel=1e-12, abs=1e-300)


def test_variants_are_deterministic_and_varied(sigmoid_neuron: ExerciseSpec) -> None:
    kind = get_kind("numeric_gradients")
    a = [kind.make_variant(sigmoid_neuron, s).params for s in range(50)]
    b = [kind.make_variant(sigmoid_neuron, s).params for s in range(50)]
    assert a == b
    assert len({tuple(p.values()) for p in a}) == 50
    for params in a:
        assert -3 <= params["x"] <= 3 and -3 <= params["w"] <= 3 and -2 <= params["b"] <= 2
        grads = by_hand(**params)
        assert min(abs(g) for g in grads.values()) >= 1e-8  # no saturated or zero variant


def _grade(spec: ExerciseSpec, variant: Variant, answer: Mapping[str, object]) -> dict[str, object]:
    kind = get_kind(spec.kind)
    ref = kind.compute_reference(spec, variant)
    verdict = kind.grade(spec, variant, ref, kind.validate_answer(spec, answer))
    return {p.part: p for p in verdict.parts} | {"_score": verdict.score}


@pytest.mark.parametrize(
    ("transform", "right"),
    [
        (lambda v: v, True),
        (lambda v: float(f"{v:.4g}"), True),
        (lambda v: f"{v:.4e}", True),
        (lambda v: f"{v:.3e}", True),
        (lambda v: float(np.float32(v)), True),
        (lambda v: 0, False),
        (lambda v: "0", False),
        (lambda v: -v, False),
        (lambda v: 2 * v, False),
        (lambda v: v / 2, False),
        (lambda v: v * 1.02, False),
        (lambda v: 1e-4, False),
    ],
)
def test_tolerance_traps_on_worked_example(
    sigmoid_neuron: ExerciseSpec, transform: object, right: bool
) -> None:
    kind = get_kind("numeric_gradients")
    answer = {k: transform(v) for k, v in WORKED.items()}  # type: ignore[operator]
    parts = _grade(sigmoid_neuron, kind.worked_example(sigmoid_neuron), answer)
    for part in WORKED:
        assert parts[part].correct is right, (part, answer[part])  # type: ignore[attr-defined]
    assert parts["_score"] == (1.0 if right else 0.0)


def test_float32_autograd_is_right_on_random_variants(sigmoid_neuron: ExerciseSpec) -> None:
    kind = get_kind("numeric_gradients")
    for seed in range(40):
        variant = kind.make_variant(sigmoid_neuron, seed)
        answer = torch_reference(variant.params, torch.float32)
        parts = _grade(sigmoid_neuron, variant, answer)
        assert all(parts[p].correct for p in "wbx"), (seed, answer)  # type: ignore[attr-defined]
        wrong = _grade(sigmoid_neuron, variant, {k: 2 * v for k, v in answer.items()})
        assert not any(wrong[p].correct for p in "wbx")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (float("nan"), "not a finite number"),
        ("NaN", "not a finite number"),
        (float("inf"), "not a finite number"),
        ("", "empty"),
        ("minus three", "is not a number"),
        (True, "true/false"),
        (None, "no answer"),
        ([1, 2], "not a list"),
    ],
)
def test_bad_inputs_are_part_verdicts(
    sigmoid_neuron: ExerciseSpec, bad: object, fragment: str
) -> None:
    kind = get_kind("numeric_gradients")
    answer = dict(WORKED) | {"b": bad}
    parts = _grade(sigmoid_neuron, kind.worked_example(sigmoid_neuron), answer)
    assert parts["w"].correct and parts["x"].correct  # type: ignore[attr-defined]
    assert not parts["b"].correct  # type: ignore[attr-defined]
    assert fragment in parts["b"].message  # type: ignore[attr-defined]
    assert parts["b"].expected == pytest.approx(WORKED["b"], rel=1e-5)  # type: ignore[attr-defined]


def test_missing_part_is_graded_no_answer(sigmoid_neuron: ExerciseSpec) -> None:
    kind = get_kind("numeric_gradients")
    parts = _grade(sigmoid_neuron, kind.worked_example(sigmoid_neuron), {"w": WORKED["w"]})
    assert parts["w"].correct  # type: ignore[attr-defined]
    assert parts["b"].message == "no answer"  # type: ignore[attr-defined]
    assert parts["_score"] == pytest.approx(1 / 3, rel=1e-5)


@pytest.mark.parametrize("answer", [[1, 2], "w=1", 3.0, None, {"z": 1.0}, {"W": 1.0}])
def test_bad_envelope_raises(sigmoid_neuron: ExerciseSpec, answer: object) -> None:
    with pytest.raises(AnswerFormatError):
        get_kind("numeric_gradients").validate_answer(sigmoid_neuron, answer)


def test_verdict_and_reference_are_json(sigmoid_neuron: ExerciseSpec) -> None:
    import json

    kind = get_kind("numeric_gradients")
    variant = kind.make_variant(sigmoid_neuron, 3)
    ref = kind.compute_reference(sigmoid_neuron, variant)
    verdict = kind.grade(sigmoid_neuron, variant, json.loads(json.dumps(ref)), {"w": "1"})
    json.dumps(verdict.to_dict())
    json.dumps(kind.learner_view(sigmoid_neuron, variant))
    assert Variant.from_dict(json.loads(json.dumps(variant.to_dict()))) == variant
