"""Every catalog exercise's reference agrees with an independent float64 finite-difference
oracle (real PyTorch running the forward code) for 100 random variants."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from exercises.catalog import load_builtin_catalog
from exercises.kinds.code_function import GRAD_OUTPUT, vjp_spec
from exercises.model import Variant
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from tests.unit.exercises.oracle import autograd_gradient, close, fd_gradient, forward

SPECS = [s for s in load_builtin_catalog() if s.kind != "choice"]
VARIANTS = 100


def _leaves(spec: ExerciseSpec, point: dict[str, Any]) -> dict[str, Any]:
    return {k: point[k] for k in spec.params}


def _check_gradients(spec: ExerciseSpec, variant: Variant, ref: dict[str, Any]) -> None:
    params = variant.params
    lr = spec.sgd.lr if spec.sgd else 0.0
    factor = 1.0
    if spec.backward is not None and not spec.backward.zero_grad_between:
        factor = spec.backward.calls
    for part in spec.parts:
        if part.wrt is None or part.input not in ("number", "tensor"):
            continue
        of = part.of or spec.output_name
        if spec.degeneracy.allow_kink:  # finite differences straddle the kink: ask torch
            fd = autograd_gradient(spec, params, of, part.wrt)
        else:
            fd = fd_gradient(spec, params, of, part.wrt)
        got = ref["values"][part.name]
        if spec.kind == "update_step":
            fd = np.asarray(params[part.wrt]) - lr * fd
        assert close(got, fd * factor), (spec.slug, variant.seed, part.name, got, fd)


def _check_formula(spec: ExerciseSpec, ref: dict[str, Any]) -> None:
    assert len(ref["points"]) == spec.formula_points
    for i, point in enumerate(ref["points"]):
        for part in spec.parts:
            fd = fd_gradient(spec, _leaves(spec, point), part.of or spec.output_name, part.wrt)  # type: ignore[arg-type]
            assert close(ref["values"][part.name][i], fd), (spec.slug, i, part.name)


def _call_params(spec: ExerciseSpec, variant: Variant) -> list[dict[str, Any]]:
    job = get_kind(spec.kind).code_job(spec, variant, {"code": "pass"})

    def plain(v: Any) -> Any:
        return v["__tensor__"] if isinstance(v, dict) else v

    if spec.kind == "autograd_function":
        names = list(spec.code.arguments or spec.params) if spec.code else list(spec.params)
        return [
            {
                **dict(zip(names, map(plain, c["inputs"]), strict=True)),
                GRAD_OUTPUT: plain(c["grad_output"]),
            }
            for c in job.calls
        ]
    return [{k: plain(v) for k, v in c.items() if k in spec.params} for c in job.calls]


def _check_code(spec: ExerciseSpec, variant: Variant, ref: dict[str, Any]) -> None:
    calls = _call_params(spec, variant)
    assert len(calls) == len(ref["calls"]) == 1 + (spec.code.hidden_calls if spec.code else 0)
    assert calls[0] == {
        **variant.params,
        **({GRAD_OUTPUT: calls[0].get(GRAD_OUTPUT)} if GRAD_OUTPUT in calls[0] else {}),
    }
    for params, expected in zip(calls, ref["calls"], strict=True):
        if spec.kind == "autograd_function":
            ext = vjp_spec(spec, params[GRAD_OUTPUT])
            leaves = {k: v for k, v in params.items() if k != GRAD_OUTPUT}
            out = forward(spec, leaves)[spec.output_name]
            assert close(expected["output"], out.numpy())
            for name, grad in zip(ext.parts, expected["grads"], strict=True):
                fd = fd_gradient(ext, leaves, "vjp_", name.name, {GRAD_OUTPUT: params[GRAD_OUTPUT]})
                assert close(grad, fd), (spec.slug, name.name)
            continue
        lr = spec.sgd.lr if spec.sgd else 0.0
        for part in spec.parts:
            if part.wrt is None:
                value = forward(spec, params)[part.of or spec.output_name]  # a forward value
                assert close(expected[part.name], value.numpy())
                continue
            fd = fd_gradient(spec, params, part.of or spec.output_name, part.wrt)
            if spec.kind == "train_step":
                fd = np.asarray(params[part.wrt]) - lr * fd
            assert close(expected[part.name], fd), (spec.slug, part.name)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.slug)
def test_reference_agrees_with_finite_differences(spec: ExerciseSpec) -> None:
    kind = get_kind(spec.kind)
    count = VARIANTS
    for seed in range(count):
        variant = kind.make_variant(spec, seed)
        assert variant.label == "seeded", (spec.slug, seed)
        ref = kind.compute_reference(spec, variant)
        assert json.loads(json.dumps(ref, allow_nan=False)) == ref  # strict JSON, cacheable
        if spec.kind == "formula":
            _check_formula(spec, ref)
        elif kind.answer_type == "code":
            _check_code(spec, variant, ref)
        else:
            _check_gradients(spec, variant, ref)
