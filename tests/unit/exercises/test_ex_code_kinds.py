"""Code kinds build CodeJobs and grade CodeRuns; an in-process fake stands in for the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exercises.codejob import CodeJob, CodeRun
from exercises.errors import AnswerFormatError
from exercises.model import Variant, Verdict
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from tests.unit.exercises import fake_sandbox

CODE_SLUGS = [
    "sigmoid-neuron-code",
    "custom-sigmoid-function",
    "custom-mul-function",
    "train-step-linear",
]


def _run(spec: ExerciseSpec, source: str, seed: int | None = 4) -> tuple[CodeJob, Verdict]:
    kind = get_kind(spec.kind)
    variant = kind.worked_example(spec) if seed is None else kind.make_variant(spec, seed)
    answer = kind.validate_answer(spec, {"code": source})
    job = kind.code_job(spec, variant, answer)
    json.dumps(job.to_dict())  # plain data for the pipe
    reference = json.loads(json.dumps(kind.compute_reference(spec, variant)))
    run = CodeRun.from_dict(json.loads(json.dumps(fake_sandbox.run(job).to_dict())))
    verdict = kind.grade_run(spec, variant, reference, run)
    json.dumps(verdict.to_dict())
    return job, verdict


@pytest.mark.parametrize("slug", CODE_SLUGS)
def test_model_solution_is_right_and_template_is_not(
    catalog: dict[str, ExerciseSpec], slug: str
) -> None:
    spec = catalog[slug]
    assert spec.code is not None
    for seed in (None, 1, 2):
        job, verdict = _run(spec, spec.code.solution, seed)
        assert verdict.correct and verdict.score == 1.0, [p.message for p in verdict.parts]
        assert len(job.calls) == 1 + spec.code.hidden_calls
    _, verdict = _run(spec, spec.code.template)
    assert not verdict.correct and verdict.score < 1.0


def test_learner_view_of_code_kinds(catalog: dict[str, ExerciseSpec]) -> None:
    for slug in CODE_SLUGS:
        spec = catalog[slug]
        kind = get_kind(spec.kind)
        view = kind.learner_view(spec, kind.make_variant(spec, 1))
        assert view["code_template"] == spec.code.template  # type: ignore[union-attr]
        assert view["parts"][0]["input"] == "code"
        assert "solution" not in json.dumps(view) and spec.code.solution not in json.dumps(view)  # type: ignore[union-attr]


def test_hidden_inputs_differ_from_the_variant_and_are_deterministic(
    catalog: dict[str, ExerciseSpec],
) -> None:
    spec = catalog["sigmoid-neuron-code"]
    kind = get_kind(spec.kind)
    variant = kind.make_variant(spec, 9)
    job = kind.code_job(spec, variant, {"code": "x"})
    assert job.calls[0] == variant.params
    assert all(call != variant.params for call in job.calls[1:])
    assert kind.code_job(spec, variant, {"code": "x"}) == job
    assert job.driver == "call" and job.entry == "grads"


HARD_CODED = """
def grads(x, w, b):
    return {{"w": {w}, "b": {b}, "x": {x}}}
"""

FORGOT_SIGMOID = """
import math
def grads(x, w, b):
    y = 1 / (1 + math.exp(-(w * x + b)))
    dz = -2 * (1 - y)
    return {"w": dz * x, "b": dz, "x": dz * w}
"""

TUPLE_RESULT = """
import math
def grads(x, w, b):
    y = 1 / (1 + math.exp(-(w * x + b)))
    dz = -2 * (1 - y) * y * (1 - y)
    return dz * x, dz, dz * w
"""

USES_TORCH_FLOAT32 = """
import torch
def grads(x, w, b):
    y = torch.sigmoid(torch.tensor(w * x + b, dtype=torch.float32))
    dz = -2 * (1 - y) * y * (1 - y)
    return {"w": dz * x, "b": dz, "x": dz * w}
"""


def test_hidden_inputs_are_remembered_per_spec_and_variant(
    catalog: dict[str, ExerciseSpec],
) -> None:
    from exercises.kinds.code_common import hidden_params

    spec = catalog["sigmoid-neuron-code"]
    kind = get_kind(spec.kind)
    variant = kind.make_variant(spec, 1234)
    checked: list[dict[str, object]] = []

    def problem(params: dict[str, object]) -> str | None:
        checked.append(params)
        return kind.variant_problem(spec, params)

    first = hidden_params(spec, variant, problem)
    assert first and checked  # drawn and checked once
    checked.clear()
    first[0]["x"] = "changed by a caller"
    again = hidden_params(spec, variant, problem)
    assert not checked  # remembered: no draw checked again
    assert again[0]["x"] != "changed by a caller"  # callers get copies
    other = hidden_params(spec, kind.make_variant(spec, 99), problem)
    assert checked and other != again  # another variant, other inputs
    # A spec object with the same content but another identity is drawn afresh (equal).
    copy_spec = ExerciseSpec.model_validate(spec.model_dump())
    checked.clear()
    assert hidden_params(copy_spec, variant, problem) == again
    assert checked


def test_hard_coded_answers_fail_on_hidden_inputs(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["sigmoid-neuron-code"]
    kind = get_kind(spec.kind)
    variant = kind.make_variant(spec, 4)
    values = kind.compute_reference(spec, variant)["values"]
    _, verdict = _run(spec, HARD_CODED.format(**{k: repr(v) for k, v in values.items()}))
    assert not verdict.correct
    assert all("hidden" in p.message for p in verdict.parts)


def test_learner_mistake_is_diagnosed(catalog: dict[str, ExerciseSpec]) -> None:
    _, verdict = _run(catalog["sigmoid-neuron-code"], FORGOT_SIGMOID)
    parts = {p.part: p for p in verdict.parts}
    assert not parts["b"].correct
    assert parts["b"].diagnosis is not None
    assert parts["b"].diagnosis["code"] == "dropped_local_derivative"
    assert "sigmoid" in parts["b"].diagnosis["node"]


@pytest.mark.parametrize("source", [TUPLE_RESULT, USES_TORCH_FLOAT32])
def test_other_result_shapes_are_accepted(catalog: dict[str, ExerciseSpec], source: str) -> None:
    _, verdict = _run(catalog["sigmoid-neuron-code"], source)
    assert verdict.correct, [p.message for p in verdict.parts]


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        ("timeout", "too long"),
        ("memory", "memory"),
        ("output_limit", "output"),
        ("killed", "stopped"),
        ("forbidden", "not allowed"),
    ],
)
def test_run_faults_become_verdicts(
    catalog: dict[str, ExerciseSpec], status: Any, fragment: str
) -> None:
    spec = catalog["sigmoid-neuron-code"]
    kind = get_kind(spec.kind)
    variant = kind.worked_example(spec)
    ref = kind.compute_reference(spec, variant)
    verdict = kind.grade_run(spec, variant, ref, CodeRun(status, [], stdout="hi"))
    assert not verdict.correct and verdict.score == 0.0
    assert all(fragment in p.message for p in verdict.parts)
    assert verdict.details["stdout"] == "hi"


def test_learner_exception_names_its_line(catalog: dict[str, ExerciseSpec]) -> None:
    _, verdict = _run(catalog["sigmoid-neuron-code"], "def grads(x, w, b):\n    return 1 / 0\n")
    assert not verdict.correct
    assert "line 2" in verdict.message and "ZeroDivisionError" in verdict.message


@pytest.mark.parametrize(
    "outputs",
    [
        [],
        [None] * 5,
        [{"w": "NaN", "b": 1, "x": 2}] * 5,
        [{"w": True, "b": 1, "x": 2}] * 5,
        [{"w": 1}] * 5,
        [[1, 2]] * 5,
        ["text"] * 5,
        [{"w": {"__tensor__": "oops"}, "b": [], "x": {}}] * 5,
        [{"w": [[1, 2], [3]], "b": 0, "x": 0}] * 5,
    ],
)
def test_malformed_outputs_are_verdicts_not_errors(
    catalog: dict[str, ExerciseSpec], outputs: list[Any]
) -> None:
    for slug in CODE_SLUGS:
        spec = catalog[slug]
        kind = get_kind(spec.kind)
        variant = kind.worked_example(spec)
        ref = kind.compute_reference(spec, variant)
        verdict = kind.grade_run(spec, variant, ref, CodeRun("ok", outputs))
        assert not verdict.correct
        assert all(p.message for p in verdict.parts)


def test_custom_function_backward_mistake_is_diagnosed(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["custom-sigmoid-function"]
    _, verdict = _run(spec, spec.code.template)  # type: ignore[union-attr]
    parts = {p.part: p for p in verdict.parts}
    assert parts["forward"].correct and not parts["backward"].correct
    assert parts["backward"].diagnosis is not None
    assert parts["backward"].diagnosis["code"] == "dropped_local_derivative"
    assert parts["backward"].score == 0.0 and verdict.score == 0.5


def test_custom_function_ignoring_grad_output_is_diagnosed(
    catalog: dict[str, ExerciseSpec],
) -> None:
    spec = catalog["custom-sigmoid-function"]
    source = spec.code.solution.replace("return grad_output * y * (1 - y)", "return y * (1 - y)")  # type: ignore[union-attr]
    _, verdict = _run(spec, source)
    backward = verdict.parts[1]
    assert not backward.correct and backward.diagnosis is not None
    assert "grad_output" in backward.diagnosis["message"]


def test_train_step_mistakes(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["train-step-linear"]
    uphill = spec.code.solution.replace("w -= lr", "w += lr")  # type: ignore[union-attr]
    _, verdict = _run(spec, uphill, None)
    parts = {p.part: p for p in verdict.parts}
    assert parts["loss"].correct and parts["b"].correct and not parts["w"].correct
    assert parts["w"].diagnosis is not None and parts["w"].diagnosis["code"] == "wrong_direction"


@pytest.mark.parametrize(
    "answer",
    [{}, {"code": ""}, {"code": 3}, {"code": "x", "extra": 1}, "x", {"code": "x" * 30_000}],
)
def test_code_envelope(catalog: dict[str, ExerciseSpec], answer: Any) -> None:
    spec = catalog["sigmoid-neuron-code"]
    with pytest.raises(AnswerFormatError):
        get_kind(spec.kind).validate_answer(spec, answer)


def test_limits_come_from_the_spec(catalog: dict[str, ExerciseSpec]) -> None:
    spec = catalog["sigmoid-neuron-code"]
    kind = get_kind(spec.kind)
    job = kind.code_job(spec, Variant(params=spec.worked_params()), {"code": "x"})
    assert job.limits.cpu_seconds == spec.code.cpu_seconds  # type: ignore[union-attr]
