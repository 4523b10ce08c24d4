"""The published JSON Schema is current and fits the catalog; validate_path reports problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from exercises.catalog import catalog_paths
from exercises.schema_export import SCHEMA_PATH, json_schema, schema_text
from exercises.spec import ExerciseSpec
from exercises.validate import validate_path


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "regenerate with: python -m exercises.schema_export"
    )


def test_catalog_files_validate_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in catalog_paths():
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message)


def test_schema_rejects_what_pydantic_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    data = yaml.safe_load(catalog_paths()[0].read_text())
    data["difficulty"] = 9
    assert list(validator.iter_errors(data))


def test_catalog_validates_with_reference_checks() -> None:
    assert validate_path(catalog_paths()[0].parent) == []


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_validate_path_reports_fields(tmp_path: Path, sigmoid_neuron: ExerciseSpec) -> None:
    data = sigmoid_neuron.model_dump(mode="json", exclude_defaults=True)
    wrong = json.loads(json.dumps(data))
    wrong["worked_example"]["w"] = 3.317e-06
    _write(tmp_path, "sigmoid-neuron.yaml", wrong)
    broken = json.loads(json.dumps(data)) | {"slug": "broken", "difficulty": 0}
    broken["parts"][0]["wrt"] = "nowhere"
    _write(tmp_path, "broken.yaml", broken)
    _write(tmp_path, "garbage.yaml", "a: [1,\n")
    problems = validate_path(tmp_path)
    assert any(
        p.startswith("sigmoid-neuron.yaml: worked_example.w: autograd disagrees") for p in problems
    )
    assert any(p.startswith("broken.yaml: difficulty:") for p in problems)
    assert any(p.startswith("garbage.yaml: line") for p in problems)
    single = validate_path(tmp_path / "sigmoid-neuron.yaml")
    assert single and single[0].startswith("worked_example.w:")
    assert validate_path(tmp_path / "sigmoid-neuron.yaml", check_reference=False) == []
    assert validate_path(tmp_path / "missing.yaml")[0].startswith("(file)")


def test_validate_path_flags_ranges_that_never_give_a_variant(
    tmp_path: Path, sigmoid_neuron: ExerciseSpec
) -> None:
    data = sigmoid_neuron.model_dump(mode="json", exclude_defaults=True)
    data["params"]["w"]["range"] = [20.0, 30.0]  # always saturated
    data["params"]["x"]["range"] = [20.0, 30.0]
    _write(tmp_path, "sigmoid-neuron.yaml", data)
    assert any(p.startswith("params:") for p in validate_path(tmp_path / "sigmoid-neuron.yaml"))


def test_declared_misconception_that_is_right_is_flagged(
    tmp_path: Path, sigmoid_neuron: ExerciseSpec
) -> None:
    data = sigmoid_neuron.model_dump(mode="json", exclude_defaults=True)
    data["misconceptions"].append(
        {"part": "b", "value": -1.65852e-06, "code": "oops", "message": "m"}
    )
    _write(tmp_path, "sigmoid-neuron.yaml", data)
    assert any(
        p.startswith("misconceptions.1.value")
        for p in validate_path(tmp_path / "sigmoid-neuron.yaml")
    )
