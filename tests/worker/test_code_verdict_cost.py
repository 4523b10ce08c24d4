"""The cheaper paths of a code answer's verdict in the worker give exactly what the general
ones give: number-against-number comparisons without arrays, Verdict.to_dict without
dataclasses.asdict, and the sandbox's limits as a dict."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import pytest
import redis

from exercises import grading as exercise_grading
from exercises.catalog import load_builtin_catalog
from exercises.codejob import CodeRun, SandboxLimits
from exercises.kinds import code_common
from exercises.model import PartVerdict, Verdict, plain
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec

# The general paths, the references the fast paths must agree with.
_close_by_arrays = code_common._close_by_arrays
_matches_by_arrays = exercise_grading._matches_by_arrays

TRUE = [-3.31703e-06, 0.0, 1.0, -0.2257, 123456.7, 5e-300]
# Around each truth: equal, at and past the tolerance, another sign, zero, non-finite.
OFFSETS = [0.0, 1e-12, 9.99e-6, 1.0001e-5, 0.5, -2.0]
SPECIALS = [0.0, -0.0, 1e-13, math.nan, math.inf, -math.inf]


def _givens(true: float) -> list[float]:
    return [true * (1 + o) for o in OFFSETS] + [true + o for o in OFFSETS] + SPECIALS


@pytest.mark.parametrize("true", TRUE)
def test_close_of_one_number_agrees_with_the_array_comparison(true: float) -> None:
    for given, (figs, zero) in itertools.product(_givens(true), [(5, 1e-9), (3, 0.0)]):
        decoded = code_common.decode(given)  # what a code run's number becomes
        expected = _close_by_arrays(decoded, true, figs, zero)
        assert code_common.close(decoded, true, figs, zero) is expected, (given, true, figs)


def test_close_of_tensors_and_mixed_shapes_is_unchanged() -> None:
    cases: list[tuple[Any, Any]] = [
        (np.asarray([1.0, 2.0]), [1.0, 2.0]),
        (np.asarray([1.0, 2.0]), [1.0, 2.5]),
        (np.asarray([[1.0]]), 1.0),  # size 1 against a number
        (np.asarray(1.0), [1.0]),
        (np.asarray([1.0, math.nan]), [1.0, 2.0]),
        (np.asarray(1.0), 1),  # an int truth goes the general way
        (None, 1.0),
    ]
    for given, true in cases:
        assert code_common.close(given, true, 5, 1e-9) is _close_by_arrays(given, true, 5, 1e-9)


def test_a_candidate_number_matches_as_the_array_comparison_does() -> None:
    spec = next(s for s in load_builtin_catalog() if s.slug == "sigmoid-neuron-code")
    for true in TRUE:
        for given, value in itertools.product(_givens(true), [true, -true, 0.0]):
            expected = _matches_by_arrays(given, value, spec)
            assert exercise_grading._matches(given, value, spec) is expected, (given, value)
    others: list[tuple[Any, Any]] = [([1.0, 2.0], [1.0, 2.0]), (1.0, [1.0]), (2, 2.0), (True, 1.0)]
    for other, candidate in others:
        assert exercise_grading._matches(other, candidate, spec) is _matches_by_arrays(
            other, candidate, spec
        )


def _benchmark_runs() -> tuple[ExerciseSpec, Any, dict[str, Any], dict[str, CodeRun]]:
    """The load benchmark's exercise, its reference, and runs of a right and a wrong answer
    (the wrong one drops `x` from dw), made from the reference's own numbers."""
    spec = next(s for s in load_builtin_catalog() if s.slug == "sigmoid-neuron-code")
    kind = get_kind(spec.kind)
    variant = kind.worked_example(spec)
    reference = kind.compute_reference(spec, variant)
    right = [dict(call) for call in reference["calls"]]
    wrong = [{**call, "w": call["b"]} for call in right]  # dz instead of dz * x
    far = [{**call, "x": call["x"] * 3} for call in right]  # matches no candidate
    hardcoded = [right[0], *wrong[1:]]
    runs = {
        name: CodeRun("ok", outputs, cpu_seconds=0.004, wall_seconds=0.003)
        for name, outputs in [
            ("right", right),
            ("wrong", wrong),
            ("far", far),
            ("hardcoded", hardcoded),
        ]
    }
    runs["nan"] = CodeRun("ok", [{**call, "b": "NaN"} for call in right])
    runs["error"] = CodeRun("error", [], error="ZeroDivisionError: division by zero", error_line=3)
    return spec, variant, reference, runs


def test_code_verdicts_are_those_of_the_array_comparisons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, variant, reference, runs = _benchmark_runs()
    kind = get_kind(spec.kind)
    fast = {name: kind.grade_run(spec, variant, reference, run) for name, run in runs.items()}
    monkeypatch.setattr(code_common, "close", _close_by_arrays)
    monkeypatch.setattr(exercise_grading, "_matches", _matches_by_arrays)
    for name, run in runs.items():
        slow = kind.grade_run(spec, variant, reference, run)
        assert fast[name].to_dict() == dataclasses.asdict(slow), name
    assert fast["right"].score == 1.0
    wrong = fast["wrong"].parts[0]
    assert not wrong.correct and wrong.diagnosis is not None  # the diagnosis still runs


def _verdicts() -> list[Verdict]:
    spec, variant, reference, runs = _benchmark_runs()
    kind = get_kind(spec.kind)
    made = [kind.grade_run(spec, variant, reference, run) for run in runs.values()]
    odd = Verdict(
        0.5,
        [
            PartVerdict("a", True, "Right.", 1.0, expected=np.float64(2.5), given=(1, [2, 3])),
            PartVerdict("b", False, "no", expected=[[1.0, 2.0]], given={"k": [1, {"x": None}]}),
        ],
        "1 of 2 parts right.",
        details={"nested": {"list": [1, 2.0, "x", None, True]}, "tuple": (1, 2)},
    )
    return [*made, odd]


def test_verdict_to_dict_is_dataclasses_asdict() -> None:
    for verdict in _verdicts():
        fast = verdict.to_dict()
        slow = dataclasses.asdict(verdict)
        assert fast == slow
        assert repr(fast) == repr(slow)  # the same types too (tuples, numpy scalars)


def test_verdict_to_dict_shares_no_container_with_the_verdict() -> None:
    verdict = _verdicts()[-1]
    kept = copy.deepcopy(dataclasses.asdict(verdict))
    data = verdict.to_dict()
    data["details"]["nested"]["list"].append("more")
    data["parts"][1]["expected"][0].append(3.0)
    data["parts"][1]["given"]["k"][1]["x"] = 1
    assert dataclasses.asdict(verdict) == kept


def test_plain_copies_dataclasses_inside_lists_and_dicts() -> None:
    limits = SandboxLimits()
    assert plain({"limits": [limits]}) == {"limits": [dataclasses.asdict(limits)]}


def test_the_sandbox_gets_the_limits_asdict_gives() -> None:
    for limits in (SandboxLimits(), SandboxLimits(cpu_seconds=0.5, memory_mb=64, open_files=9)):
        assert plain(limits) == dataclasses.asdict(limits)


def _channel(pool: redis.ConnectionPool) -> Any:
    """A kombu Redis channel that never connected: what _create_client reads of it."""
    from kombu.transport import redis as kombu_redis

    channel = object.__new__(kombu_redis.Channel)
    channel._pool = pool
    channel._async_pool = redis.ConnectionPool(host="127.0.0.1", port=1)
    channel.global_keyprefix = "bench-prefix:"
    channel.Client = channel._get_client()
    return channel
