"""Realistic wrong answers across the catalog, each with the diagnosis it must get.

Wrong values are computed here by hand (math / numpy), independently of the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from exercises.catalog import load_builtin_catalog
from exercises.model import Variant
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec

P = dict[str, Any]
CATALOG = {s.slug: s for s in load_builtin_catalog()}


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def neuron(p: P) -> tuple[float, float]:
    """(s, dL/dz) of the notes' neuron L = (1 - s)^2."""
    s = sig(p["w"] * p["x"] + p["b"])
    return s, -2 * (1 - s) * s * (1 - s)


def tanh_n(p: P) -> tuple[float, float]:
    """(h, h - y) of the tanh neuron."""
    h = math.tanh(p["w"] * p["x"] + p["b"])
    return h, h - p["y"]


def nested(p: P) -> tuple[float, float, float, float]:
    """Local derivatives dL/dc, dc/ds, ds/da, da/dx of ln(1 + exp(sin(x^2)))."""
    a = p["x"] ** 2
    s = math.sin(a)
    c = math.exp(s)
    return 1 / (1 + c), c, math.cos(a), 2 * p["x"]


def bce(p: P) -> float:
    return sig(p["w"] * p["x"] + p["b"])


def mse_r(p: P) -> np.ndarray[Any, Any]:
    return p["w"] * np.asarray(p["x"]) + p["b"] - np.asarray(p["y"])


def linear_delta(p: P) -> np.ndarray[Any, Any]:
    return 2 * (np.asarray(p["W"]) @ np.asarray(p["x"]) + np.asarray(p["b"]) - np.asarray(p["t"]))


def softmax(z: Any) -> np.ndarray[Any, Any]:
    e = np.exp(np.asarray(z) - np.max(z))
    return e / e.sum()


def mlp(p: P) -> tuple[np.ndarray[Any, Any], float]:
    """(dL/dW1, dL/dy_hat) of the 2-layer net (both hidden units active in the worked example)."""
    x, w1, b1, w2 = (np.asarray(p[k]) for k in ("x", "W1", "b1", "w2"))
    pre = w1 @ x + b1
    h = np.maximum(pre, 0)
    d = 2 * (float(w2 @ h) + p["b2"] - p["y"])
    return np.outer(d * w2 * (pre > 0), x), d


def upd_neuron(p: P) -> tuple[float, float]:
    """dL/dw, dL/db of the update-step neuron L = (s - y)^2."""
    s = sig(p["w"] * p["x"] + p["b"])
    g = 2 * (s - p["y"]) * s * (1 - s)
    return g * p["x"], g


# (slug, seed or None for the worked example, {part: wrong value or f(params)}, part, code)
Row = tuple[str, int | None, dict[str, Any], str, str]
ROWS: list[Row] = [
    # the notes' sigmoid neuron
    (
        "sigmoid-neuron",
        None,
        {"w": lambda p: -2 * (1 - neuron(p)[0]) * p["x"]},
        "w",
        "sigmoid_derivative_forgotten",
    ),
    ("sigmoid-neuron", None, {"w": lambda p: -neuron(p)[1] * p["x"]}, "w", "sign_dropped"),
    ("sigmoid-neuron", None, {"w": lambda p: 2 * neuron(p)[1] * p["x"]}, "w", "accumulated_twice"),
    ("sigmoid-neuron", None, {"w": lambda p: neuron(p)[1] * p["w"]}, "w", "wrong_factor"),
    ("sigmoid-neuron", None, {"w": lambda p: neuron(p)[1]}, "w", "dropped_local_derivative"),
    ("sigmoid-neuron", None, {"w": lambda p: p["x"]}, "w", "chain_incomplete"),
    ("sigmoid-neuron", None, {"x": lambda p: -2 * (1 - neuron(p)[0])}, "x", "wrong_variable"),
    (
        "sigmoid-neuron",
        None,
        {"b": lambda p: -2 * (1 - neuron(p)[0])},
        "b",
        "dropped_local_derivative",
    ),
    (
        "sigmoid-neuron",
        3,
        {"b": lambda p: -2 * (1 - neuron(p)[0]) * neuron(p)[0]},
        "b",
        "sigmoid_derivative_as_sigmoid",
    ),
    ("sigmoid-neuron", None, {"b": lambda p: neuron(p)[1] * p["x"]}, "b", "swapped_parts"),
    ("sigmoid-neuron", 3, {"b": lambda p: neuron(p)[1] / 2}, "b", "power_factor_lost"),
    ("sigmoid-neuron", 3, {"w": lambda p: neuron(p)[1] * p["x"] / 2}, "w", "power_factor_lost"),
    ("sigmoid-neuron", None, {"x": "-5.0e-6"}, "x", "too_few_significant_figures"),
    ("sigmoid-neuron", None, {"x": 0}, "x", "zero_for_small_gradient"),
    ("sigmoid-neuron", None, {"x": lambda p: neuron(p)[1]}, "x", "dropped_local_derivative"),
    ("sigmoid-neuron", 3, {"x": lambda p: -neuron(p)[1] * p["w"]}, "x", "sign_dropped"),
    # step by step, with errors carried forward
    (
        "sigmoid-neuron-chain",
        1,
        {"dyhat_dz": lambda p: neuron(p)[0]},
        "dyhat_dz",
        "sigmoid_derivative_as_sigmoid",
    ),
    (
        "sigmoid-neuron-chain",
        None,
        {"dloss_dyhat": lambda p: 2 * (1 - neuron(p)[0])},
        "dloss_dyhat",
        "sign_dropped",
    ),
    (
        "sigmoid-neuron-chain",
        None,
        {"dloss_dyhat": lambda p: -(1 - neuron(p)[0])},
        "dloss_dyhat",
        "power_factor_lost",
    ),
    ("sigmoid-neuron-chain", None, {"dz_dw": lambda p: p["w"]}, "dz_dw", "wrong_factor"),
    ("sigmoid-neuron-chain", None, {"dz_dw": 1.0}, "dz_dw", "dropped_local_derivative"),
    (
        "sigmoid-neuron-chain",
        None,
        {
            "dloss_dyhat": lambda p: 2 * (1 - neuron(p)[0]),
            "dloss_dw": lambda p: (
                2 * (1 - neuron(p)[0]) * neuron(p)[0] * (1 - neuron(p)[0]) * p["x"]
            ),
        },
        "dloss_dw",
        "error_carried_forward",
    ),
    (
        "sigmoid-neuron-chain",
        1,
        {
            "dz_dw": lambda p: p["w"],
            "dloss_dw": lambda p: neuron(p)[1] * p["w"],
        },
        "dloss_dw",
        "error_carried_forward",
    ),
    ("nested-chain-steps", None, {"da_dx": lambda p: p["x"]}, "da_dx", "power_factor_lost"),
    ("nested-chain-steps", None, {"dc_ds": 1.0}, "dc_ds", "dropped_local_derivative"),
    ("nested-chain-steps", None, {"ds_da": 1.0}, "ds_da", "dropped_local_derivative"),
    ("nested-chain-steps", None, {"dL_dc": 1.0}, "dL_dc", "dropped_local_derivative"),
    (
        "nested-chain-steps",
        None,
        {
            "da_dx": lambda p: p["x"],
            "dL_dx": lambda p: math.prod(nested(p)[:3]) * p["x"],
        },
        "dL_dx",
        "error_carried_forward",
    ),
    # four nested functions
    (
        "nested-chain",
        None,
        {"dx": lambda p: math.prod(nested(p)[:3]) * p["x"]},
        "dx",
        "power_factor_lost",
    ),
    (
        "nested-chain",
        None,
        {"dx": lambda p: nested(p)[0] * nested(p)[1] * nested(p)[3]},
        "dx",
        "dropped_local_derivative",
    ),
    (
        "nested-chain",
        None,
        {"dx": lambda p: nested(p)[0] * nested(p)[2] * nested(p)[3]},
        "dx",
        "dropped_local_derivative",
    ),
    ("nested-chain", None, {"da": lambda p: math.prod(nested(p))}, "da", "swapped_parts"),
    ("nested-chain", None, {"dx": lambda p: -math.prod(nested(p))}, "dx", "sign_flipped"),
    # tanh
    (
        "tanh-neuron",
        None,
        {"w": lambda p: 2 * tanh_n(p)[1] * p["x"]},
        "w",
        "dropped_local_derivative",
    ),
    (
        "tanh-neuron",
        None,
        {"w": lambda p: 2 * tanh_n(p)[1] * (1 - tanh_n(p)[0]) * p["x"]},
        "w",
        "tanh_derivative_unsquared",
    ),
    (
        "tanh-neuron",
        None,
        {"w": lambda p: tanh_n(p)[1] * (1 - tanh_n(p)[0] ** 2) * p["x"]},
        "w",
        "power_factor_lost",
    ),
    (
        "tanh-neuron",
        None,
        {"b": lambda p: -2 * tanh_n(p)[1] * (1 - tanh_n(p)[0] ** 2)},
        "b",
        "sign_flipped",
    ),
    (
        "tanh-neuron",
        None,
        {"b": lambda p: 2 * tanh_n(p)[1] * (1 - tanh_n(p)[0] ** 2) * p["x"]},
        "b",
        "swapped_parts",
    ),
    # ReLU
    (
        "relu-neuron",
        None,
        {"w": lambda p: 2 * (p["w"] * p["x"] + p["b"] - p["y"]) * p["w"]},
        "w",
        "wrong_factor",
    ),
    (
        "relu-neuron",
        None,
        {"x": lambda p: 2 * (p["w"] * p["x"] + p["b"] - p["y"]) * p["x"]},
        "x",
        "wrong_factor",
    ),
    (
        "relu-neuron",
        None,
        {"b": lambda p: p["w"] * p["x"] + p["b"] - p["y"]},
        "b",
        "power_factor_lost",
    ),
    (
        "relu-neuron",
        None,
        {"w": lambda p: -2 * (p["w"] * p["x"] + p["b"] - p["y"]) * p["x"]},
        "w",
        "sign_flipped",
    ),
    ("relu-kink", None, {"w": lambda p: 2 * (0 - p["y"]) * p["x"]}, "w", "relu_kink"),
    ("relu-kink", None, {"b": lambda p: 2 * (0 - p["y"])}, "b", "relu_kink"),
    ("relu-kink", None, {"relu_grad_at_zero": "one"}, "relu_grad_at_zero", "chose_one"),
    ("relu-kink", None, {"relu_grad_at_zero": "half"}, "relu_grad_at_zero", "chose_half"),
    # losses
    (
        "bce-logistic",
        None,
        {"w": lambda p: -(1 / bce(p)) * p["x"]},
        "w",
        "dropped_local_derivative",
    ),
    ("bce-logistic", None, {"w": lambda p: (1 - bce(p)) * p["x"]}, "w", "sign_dropped"),
    ("bce-logistic", None, {"b": lambda p: (bce(p) - 1) * p["x"]}, "b", "swapped_parts"),
    (
        "bce-logistic",
        None,
        {"b": lambda p: -bce(p) * (1 - bce(p))},
        "b",
        "dropped_local_derivative",
    ),
    (
        "mse-broadcast",
        None,
        {"w": lambda p: float(np.sum(2 * mse_r(p) * p["x"]))},
        "w",
        "mean_divisor_lost",
    ),
    ("mse-broadcast", None, {"b": lambda p: float(np.sum(2 * mse_r(p)))}, "b", "mean_divisor_lost"),
    (
        "mse-broadcast",
        None,
        {"w": lambda p: float(np.mean(mse_r(p) * p["x"]))},
        "w",
        "power_factor_lost",
    ),
    (
        "mse-broadcast",
        None,
        {"w": lambda p: float(np.mean(2 * mse_r(p)))},
        "w",
        "dropped_local_derivative",
    ),
    (
        "reduction-mean",
        None,
        {"x": lambda p: (2 * np.asarray(p["x"])).tolist()},
        "x",
        "mean_divisor_lost",
    ),
    (
        "reduction-mean",
        None,
        {"x": lambda p: (np.asarray(p["x"]) / 3).tolist()},
        "x",
        "power_factor_lost",
    ),
    (
        "reduction-mean",
        None,
        {"x": lambda p: (-2 * np.asarray(p["x"]) / 3).tolist()},
        "x",
        "sign_flipped",
    ),
    (
        "softmax-cross-entropy",
        None,
        {"z": lambda p: softmax(p["z"]).tolist()},
        "z",
        "onehot_forgotten",
    ),
    (
        "softmax-cross-entropy",
        None,
        {"z": lambda p: (np.eye(3)[1] - softmax(p["z"])).tolist()},
        "z",
        "sign_dropped",
    ),
    (
        "softmax-linear",
        None,
        {
            "W": lambda p: np.outer(
                p["x"], softmax(np.asarray(p["W"]) @ p["x"]) - np.eye(3)[2]
            ).tolist()
        },
        "W",
        "transposed",
    ),
    (
        "softmax-linear",
        None,
        {
            "W": lambda p: np.outer(
                np.eye(3)[2] - softmax(np.asarray(p["W"]) @ p["x"]), p["x"]
            ).tolist()
        },
        "W",
        "sign_dropped",
    ),
    # tensors
    (
        "linear-layer",
        None,
        {"W": lambda p: np.outer(p["x"], linear_delta(p)).tolist()},
        "W",
        "transposed",
    ),
    (
        "linear-layer",
        None,
        {"W": lambda p: np.outer(linear_delta(p) / 2, p["x"]).tolist()},
        "W",
        "power_factor_lost",
    ),
    ("linear-layer", None, {"b": lambda p: (-linear_delta(p)).tolist()}, "b", "sign_flipped"),
    ("two-layer-net", None, {"W1": lambda p: mlp(p)[0].T.tolist()}, "W1", "transposed"),
    ("two-layer-net", None, {"b2": lambda p: mlp(p)[1] / 2}, "b2", "power_factor_lost"),
    ("two-layer-net", None, {"W1": lambda p: (2 * mlp(p)[0]).tolist()}, "W1", "accumulated_twice"),
    # the update step
    (
        "update-step-neuron",
        None,
        {"w": lambda p: p["w"] + 0.5 * upd_neuron(p)[0]},
        "w",
        "wrong_direction",
    ),
    ("update-step-neuron", None, {"w": lambda p: p["w"]}, "w", "no_update"),
    ("update-step-neuron", None, {"w": lambda p: upd_neuron(p)[0]}, "w", "gradient_not_update"),
    (
        "update-step-neuron",
        None,
        {"b": lambda p: p["b"] - upd_neuron(p)[1]},
        "b",
        "learning_rate_missing",
    ),
    (
        "update-step-neuron",
        None,
        {"w": lambda p: p["w"] - 0.5 * 2 * (sig(p["w"] * p["x"] + p["b"]) - 1) * p["x"]},
        "w",
        "dropped_local_derivative",
    ),
    (
        "update-step-linear",
        None,
        {"w": lambda p: p["w"] - 0.1 * float(np.sum(2 * mse_r(p) * p["x"]))},
        "w",
        "mean_divisor_lost",
    ),
    (
        "update-step-linear",
        None,
        {"b": lambda p: p["b"] + 0.1 * float(np.mean(2 * mse_r(p)))},
        "b",
        "wrong_direction",
    ),
    # .grad after two backward calls
    ("accumulate-twice", None, {"w": lambda p: neuron(p)[1] * p["x"]}, "w", "single_backward"),
    ("accumulate-twice", None, {"b": lambda p: neuron(p)[1]}, "b", "single_backward"),
    (
        "accumulate-twice",
        None,
        {"x": lambda p: 4 * neuron(p)[1] * p["w"]},
        "x",
        "accumulated_twice",
    ),
    ("accumulate-twice", None, {"without_retain": "doubles"}, "without_retain", "chose_doubles"),
    (
        "zero-grad",
        None,
        {"w": lambda p: 2 * 2 * (p["w"] * p["x"] + p["b"] - p["y"]) * p["x"]},
        "w",
        "accumulated_twice",
    ),
    ("zero-grad", None, {"why": "memory"}, "why", "chose_memory"),
    # formulas
    (
        "sigmoid-derivative-formula",
        None,
        {"dy_dz": "sigmoid(z)"},
        "dy_dz",
        "sigmoid_derivative_as_sigmoid",
    ),
    (
        "sigmoid-derivative-formula",
        None,
        {"dy_dz": "-sigmoid(z)*(1-sigmoid(z))"},
        "dy_dz",
        "sign_flipped",
    ),
    ("tanh-formula", None, {"dh_dw": "1 - tanh(w*x)**2"}, "dh_dw", "dropped_local_derivative"),
    ("tanh-formula", None, {"dh_dw": "x * (1 - tanh(w*x))"}, "dh_dw", "tanh_derivative_unsquared"),
    ("tanh-formula", None, {"dh_dw": "w*(1-tanh(w*x)^2)"}, "dh_dw", "wrong_factor"),
    (
        "sigmoid-neuron-formula",
        None,
        {"dloss_dw": "-2*(1-y_hat)*x"},
        "dloss_dw",
        "sigmoid_derivative_forgotten",
    ),
    (
        "sigmoid-neuron-formula",
        None,
        {"dloss_dw": "2*(1-y_hat)*y_hat*(1-y_hat)*x"},
        "dloss_dw",
        "sign_dropped",
    ),
    (
        "sigmoid-neuron-formula",
        None,
        {"dloss_dw": "-(1-y_hat)*y_hat*(1-y_hat)*x"},
        "dloss_dw",
        "power_factor_lost",
    ),
    # concepts
    ("when-gradients", None, {"when": "forward"}, "when", "chose_forward"),
    ("why-gradients", None, {"descent": "along"}, "descent", "chose_along"),
    ("training-loop", None, {"order": "fblu"}, "order", "chose_fblu"),
]


def _variant(spec: ExerciseSpec, seed: int | None) -> Variant:
    kind = get_kind(spec.kind)
    return kind.worked_example(spec) if seed is None else kind.make_variant(spec, seed)


def _right_answers(spec: ExerciseSpec, variant: Variant, ref: dict[str, Any]) -> dict[str, Any]:
    if spec.kind == "formula" or (variant.label == "worked-example" and spec.worked_example):
        return dict(spec.worked_example)
    return {p.name: p.answer if p.input == "choice" else ref["values"][p.name] for p in spec.parts}


def test_table_is_large_and_broad() -> None:
    assert len(ROWS) >= 60
    assert len({slug for slug, *_ in ROWS}) >= 20
    assert len({code for *_, code in ROWS}) >= 20


@pytest.mark.parametrize(
    ("slug", "seed", "wrong", "part", "code"), ROWS, ids=[f"{r[0]}:{r[3]}:{r[4]}" for r in ROWS]
)
def test_wrong_answer_gets_its_diagnosis(
    slug: str, seed: int | None, wrong: dict[str, Any], part: str, code: str
) -> None:
    spec = CATALOG[slug]
    kind = get_kind(spec.kind)
    variant = _variant(spec, seed)
    ref = kind.compute_reference(spec, variant)
    answer = _right_answers(spec, variant, ref)
    for name, value in wrong.items():
        answer[name] = value(variant.params) if isinstance(value, Callable) else value  # type: ignore[arg-type]
    verdict = {p.part: p for p in kind.grade(spec, variant, ref, answer).parts}
    assert not verdict[part].correct, (slug, part, answer[part])
    diagnosis = verdict[part].diagnosis
    assert diagnosis is not None, verdict[part].message
    assert diagnosis["code"] == code, diagnosis
    assert diagnosis["message"]
    for other, pv in verdict.items():
        if other not in wrong:
            assert pv.correct and pv.diagnosis is None, (other, pv.message)


@pytest.mark.parametrize("slug", sorted({r[0] for r in ROWS}))
def test_right_answers_have_no_diagnosis(slug: str) -> None:
    spec = CATALOG[slug]
    kind = get_kind(spec.kind)
    for seed in (None, 11, 12, 13):
        variant = _variant(spec, seed)
        ref = kind.compute_reference(spec, variant)
        verdict = kind.grade(spec, variant, ref, _right_answers(spec, variant, ref))
        assert verdict.correct and verdict.score == 1.0, [p.message for p in verdict.parts]
        assert all(p.diagnosis is None for p in verdict.parts)
