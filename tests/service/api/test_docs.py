"""docs/API.md's Python example parses, and every call it makes is an operation of the API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from flask.testing import FlaskClient

DOC = Path(__file__).resolve().parents[3] / "docs" / "API.md"
CALL = re.compile(r"api\.(get|post|put|patch|delete)\(\s*f?\"([^\"]+)\"")
PARAM = re.compile(r"\{[^}]*\}")


def _example() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_example_is_python_and_calls_only_real_operations(api: FlaskClient) -> None:
    source = _example()
    ast.parse(source)
    doc = api.get("/api/v1/openapi.json").get_json()
    known = {
        (method, PARAM.sub("{}", path.removeprefix("/api/v1")))
        for path, methods in doc["paths"].items()
        for method in methods
    }
    calls = [
        (m, re.sub(r"/\d+(?=/|$)", "/{}", PARAM.sub("{}", p))) for m, p in CALL.findall(source)
    ]
    assert len(calls) >= 10
    assert [c for c in calls if c not in known] == []
