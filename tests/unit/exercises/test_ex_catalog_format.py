"""The data-file format: loading, round trips, hashes, errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exercises.catalog import load_exercise_file, parse_exercise
from exercises.errors import ExerciseFormatError, UnknownKindError
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec


def _data(spec: ExerciseSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_defaults=True)


def test_round_trip_and_hash(catalog: dict[str, ExerciseSpec]) -> None:
    for spec in catalog.values():
        again = ExerciseSpec.model_validate(spec.model_dump(mode="json"))
        assert again == spec
        assert again.content_hash() == spec.content_hash()
        assert len(spec.content_hash()) == 64


def test_hash_changes_with_content(sigmoid_neuron: ExerciseSpec) -> None:
    data = _data(sigmoid_neuron)
    data["params"]["x"]["range"] = [-2.0, 2.0]
    assert ExerciseSpec.model_validate(data).content_hash() != sigmoid_neuron.content_hash()
    data = _data(sigmoid_neuron)
    data["sig_figs"] = 3  # the default, written out: same content, same version
    assert ExerciseSpec.model_validate(data).content_hash() == sigmoid_neuron.content_hash()


def _problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ExerciseFormatError) as info:
        parse_exercise(data, "x.yaml")
    return info.value.problems


def _paths(data: Any) -> set[str]:
    return {p for p, _ in _problems(data)}


def test_structural_errors_name_every_field(sigmoid_neuron: ExerciseSpec) -> None:
    data = _data(sigmoid_neuron)
    data["difficulty"] = 9
    data["slug"] = "Bad Slug"
    data["parts"][1]["input"] = "essay"
    data["params"]["x"]["range"] = "wide"
    data["surprise"] = 1
    assert {"difficulty", "slug", "parts.1.input", "params.x.range", "surprise"} <= _paths(data)


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d.update(forward="z = w * x + b\nimport os"), "forward", "line 2"),
        (lambda d: d.update(forward="z = w * q"), "forward", "unknown name `q`"),
        (lambda d: d.update(forward="z = eval('1')"), "forward", "only whitelisted"),
        (lambda d: d.update(forward="z = torch.load(x)"), "forward", "not allowed"),
        (lambda d: d.update(forward="z = x.__class__"), "forward", "not allowed"),
        (lambda d: d["parts"][0].update(wrt="q"), "parts.0.wrt", "not a node"),
        (lambda d: d["parts"][1].update(name="w"), "parts.1.name", "used twice"),
        (lambda d: d.update(kind="essay"), "kind", "unknown exercise kind"),
        (lambda d: d.update(output="nope"), "output", "not assigned"),
        (lambda d: d["params"]["x"].update(range=[3, -3]), "params.x.range", "lo must be"),
        (lambda d: d["worked_example"].update(q=1.0), "worked_example.q", "no part"),
        (lambda d: d["parts"][0].update(input="tensor"), "parts.0.input", "scalar"),
        (lambda d: d["params"]["x"].update(value=[1.0, 2.0]), "output", "must be a scalar"),
        (lambda d: d.update(forward="z = torch.log(w - x - b)"), "forward", "not finite"),
    ],
)
def test_semantic_errors_name_the_field(
    sigmoid_neuron: ExerciseSpec, mutate: Any, path: str, fragment: str
) -> None:
    data = _data(sigmoid_neuron)
    mutate(data)
    problems = _problems(data)
    assert any(p == path and fragment in m for p, m in problems), problems


def test_not_a_mapping() -> None:
    assert _paths([1, 2]) == {"(file)"}


def test_load_file_errors(tmp_path: Path, sigmoid_neuron: ExerciseSpec) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("slug: [unclosed\n")
    with pytest.raises(ExerciseFormatError, match="not valid YAML"):
        load_exercise_file(bad)
    renamed = tmp_path / "other-name.yaml"
    renamed.write_text(yaml.safe_dump(_data(sigmoid_neuron)))
    with pytest.raises(ExerciseFormatError) as info:
        load_exercise_file(renamed)
    assert info.value.problems[0][0] == "slug"
    good = tmp_path / "sigmoid-neuron.yaml"
    good.write_text(yaml.safe_dump(_data(sigmoid_neuron)))
    assert load_exercise_file(good) == sigmoid_neuron


def test_unknown_kind() -> None:
    with pytest.raises(UnknownKindError):
        get_kind("essay")
