"""The published JSON Schema of the exercise format, generated from ExerciseSpec.

Regenerate after changing exercises/spec.py: `python -m exercises.schema_export`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exercises.spec import ExerciseSpec

SCHEMA_PATH = Path(__file__).parent / "schema" / "exercise.schema.json"
SCHEMA_ID = "https://gradschool.invalid/schema/exercise.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one exercise file."""
    schema = ExerciseSpec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "description": "One gradschool exercise (YAML or JSON). Cross-field rules (names used in "
        "forward code, part references, kind-specific blocks) are checked by "
        "`gradschool exercises validate`.",
    }


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Write the schema file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    write_schema()
