"""Behaviour of the data kinds beyond the diagnosis table."""

from __future__ import annotations

import json

import pytest
import torch

from exercises.formula import preview
from exercises.graph import build_graph
from exercises.registry import get_kind, kind_names
from exercises.spec import ExerciseSpec


def test_every_kind_is_registered() -> None:
    assert set(kind_names()) >= {
        "numeric_gradients",
        "tensor_gradients",
        "chain_rule",
        "formula",
        "update_step",
        "accumulation",
        "choice",
        "gradient_code",
        "autograd_function",
        "train_step",
    }


def test_error_carried_forward_gets_configured_credit(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["sigmoid-neuron-chain"]
    kind = get_kind(spec.kind)
    variant = kind.worked_example(spec)
    ref = kind.compute_reference(spec, variant)
    answer = dict(spec.worked_example) | {"dz_dw": 3.0, "dloss_dw": -1.65852e-06 * 3}
    parts = {p.part: p for p in kind.grade(spec, variant, ref, answer).parts}
    assert not parts["dz_dw"].correct
    assert parts["dloss_dw"].score == spec.ecf_credit and not parts["dloss_dw"].correct
    assert "carried forward" in parts["dloss_dw"].message
    # a final answer that matches neither the truth nor the learner's own chain gets nothing
    answer["dloss_dw"] = 1.0
    parts = {p.part: p for p in kind.grade(spec, variant, ref, answer).parts}
    assert parts["dloss_dw"].score == 0.0


def test_formula_accepts_equivalent_forms(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["sigmoid-derivative-formula"]
    kind = get_kind(spec.kind)
    variant = kind.make_variant(spec, 2)
    ref = kind.compute_reference(spec, variant)
    for text in [
        "sigmoid(z)*(1-sigmoid(z))",
        "exp(-z)/(1+exp(-z))^2",
        "\u03c3(z) * (1 \u2212 \u03c3(z))",
        "y*(1-y)",
        "1/(1+exp(-z)) - 1/(1+exp(-z))**2",
        "torch.sigmoid(z) * torch.sigmoid(-z)",
    ]:
        verdict = kind.grade(spec, variant, ref, {"dy_dz": text})
        assert verdict.correct, (text, verdict.parts[0].message)
    bad: list[tuple[object, str]] = [
        ("", "empty"),
        ("sigmoid(", "syntax"),
        ("__import__('os')", "not allowed"),
        ("q * z", "unknown name"),
        ("log(z - 100)", "not finite"),
        ("z.real", "not allowed"),
        ("[z]", "not allowed"),
        (3, "text"),
        ("2z", "syntax"),
    ]
    for raw, fragment in bad:
        part = kind.grade(spec, variant, ref, {"dy_dz": raw}).parts[0]
        assert not part.correct and fragment in part.message, (raw, part.message)


def test_formula_preview(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["sigmoid-neuron-formula"]
    ok = preview(spec, "-2*(1-y_hat)*y_hat*(1-y_hat)*x")
    assert ok["ok"] and "\\hat{y}" in ok["latex"]
    assert preview(spec, "x^2/w")["latex"] == "\\frac{{x}^{2}}{w}"
    bad = preview(spec, "import os")
    assert not bad["ok"] and "syntax" in bad["error"]
    assert not preview(spec, "open('x')")["ok"]


def test_choice_order_is_shuffled_per_seed(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["training-loop"]
    kind = get_kind(spec.kind)
    orders = {
        tuple(
            c["id"]
            for c in kind.learner_view(spec, kind.make_variant(spec, s))["parts"][0]["choices"]
        )
        for s in range(20)
    }
    assert len(orders) > 3
    assert kind.make_variant(spec, 3) == kind.make_variant(spec, 3)
    verdict = kind.grade(
        spec, kind.make_variant(spec, 3), {}, {"order": "flbu", "backward_does": "nope"}
    )
    assert verdict.parts[0].correct and not verdict.parts[1].correct
    assert "choose one of" in verdict.parts[1].message


def test_accumulation_matches_real_torch(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["accumulate-twice"]
    kind = get_kind(spec.kind)
    ref = kind.compute_reference(spec, kind.worked_example(spec))
    assert "Trying to backward through the graph a second time" in ref["second_backward_error"]
    assert ref["values"]["w"] == pytest.approx(2 * -3.31703e-06, rel=1e-5)
    view = kind.learner_view(spec, kind.worked_example(spec))
    assert (
        view["forward_code"].rstrip().endswith("loss.backward(retain_graph=True)\nloss.backward()")
    )


def test_update_step_view_shows_learning_rate(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["update-step-neuron"]
    kind = get_kind(spec.kind)
    view = kind.learner_view(spec, kind.make_variant(spec, 1))
    assert view["params"]["lr"] == 0.5 and "w -= lr * w.grad" in view["forward_code"]


def test_update_step_variants_show_their_step(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["update-step-neuron"]
    kind = get_kind(spec.kind)
    for seed in range(30):
        variant = kind.make_variant(spec, seed)
        ref = kind.compute_reference(spec, variant)
        verdict = kind.grade(
            spec, variant, ref, {"w": variant.params["w"], "b": variant.params["b"]}
        )
        assert not any(p.correct for p in verdict.parts), seed


def test_tensor_shape_is_checked_first(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["linear-layer"]
    kind = get_kind(spec.kind)
    variant = kind.worked_example(spec)
    ref = kind.compute_reference(spec, variant)
    cases = [
        ([1, 2, 3], "expected shape [2, 3], got [3]"),
        ([[1, 2], [3, 4]], "expected shape [2, 3], got [2, 2]"),
        ([[1, 2, 3], [4, 5]], "different lengths"),
        (3.0, "expected a tensor of shape [2, 3]"),
        ([[1, 2, "x"], [4, 5, 6]], "entry [0, 2]"),
        ([[1, 2, "nan"], [4, 5, 6]], "not a finite number"),
    ]
    for raw, fragment in cases:
        part = kind.grade(spec, variant, ref, {"W": raw}).parts[0]
        assert not part.correct and fragment in part.message, (raw, part.message)
    wrong = [[-5.4, -10.8, 5.4], [3, 6, 3]]
    part = kind.grade(spec, variant, ref, {"W": wrong}).parts[0]
    assert "1 of 6 entries" in part.message and "[1, 2]" in part.message
    float32 = torch.tensor(ref["values"]["W"], dtype=torch.float32).tolist()
    assert kind.grade(spec, variant, ref, {"W": float32}).parts[0].correct


def test_graph_follows_grad_fn(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["sigmoid-neuron"]
    graph = build_graph(spec, get_kind(spec.kind).worked_example(spec))
    json.dumps(graph)
    ops = {n["op"] for n in graph["nodes"]}
    assert {
        "PowBackward1",
        "SigmoidBackward0",
        "MulBackward0",
        "AddBackward0",
        "AccumulateGrad",
    } <= ops
    by_id = {n["id"]: n for n in graph["nodes"]}
    assert by_id[graph["output"]]["name"] == "loss" and by_id[graph["output"]]["grad"] == 1.0
    leaves = {n["name"]: n for n in graph["nodes"] if n["type"] == "leaf"}
    assert set(leaves) == {"x", "w", "b"}
    assert leaves["w"]["grad"] == pytest.approx(-3.31703e-06, rel=1e-5)
    assert graph["gradients"]["x"] == pytest.approx(-4.97555e-06, rel=1e-5)
    sig = next(n for n in graph["nodes"] if n["op"] == "SigmoidBackward0")
    assert sig["name"] == "y_hat" and sig["value"] == pytest.approx(0.99908895, rel=1e-7)
    edges = {(by_id[e["from"]]["label"], by_id[e["to"]]["label"]) for e in graph["edges"]}
    assert ("w", "w * x") in edges and ("torch.sigmoid(z)", "1 - y_hat") in edges
    assert len(graph["edges"]) == len(graph["nodes"]) - 1  # a tree here: each value used once


def test_graph_of_every_exercise_is_json(catalog: dict[str, ExerciseSpec]) -> None:
    for spec in catalog.values():
        kind = get_kind(spec.kind)
        graph = build_graph(spec, kind.make_variant(spec, 0))
        json.dumps(graph)
        if spec.forward.strip() and kind.scalar_output:
            assert graph["output"] is not None
