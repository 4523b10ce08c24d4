"""The dry run passes every built-in exercise that needs no sandbox (they are the format's
reference), and finds a misconception file's wrong worked example."""

from __future__ import annotations

import pytest

from exercises.catalog import load_builtin_catalog
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
from worker.authoring import check_exercise

DATA_SPECS = [s for s in load_builtin_catalog() if get_kind(s.kind).answer_type == "data"]


@pytest.mark.parametrize("spec", DATA_SPECS, ids=lambda s: s.slug)
def test_builtin_exercises_pass_their_dry_run(spec: ExerciseSpec) -> None:
    result, problems = check_exercise(spec)
    assert problems == []
    assert set(result) == {"worked_example", "reference", "graph", "view"}
    if spec.forward.strip():
        assert result["graph"]["nodes"], "a forward computation has a graph"


def test_a_wrong_worked_example_is_named() -> None:
    spec = next(s for s in DATA_SPECS if s.slug == "sigmoid-neuron")
    wrong = ExerciseSpec.model_validate(
        {**spec.model_dump(mode="json"), "worked_example": {"w": 3.31703e-06}}
    )
    _, problems = check_exercise(wrong)
    assert [field for field, _ in problems] == ["worked_example.w"]
    assert "-3.317" in problems[0][1]
