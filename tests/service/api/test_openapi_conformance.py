"""Schemathesis runs the OpenAPI document against the app: no 5xx, no response that breaks
the schema, every answer's status, content type and headers documented; and data that
breaks the schema (negative mode) is refused with a 4xx. (Data that fits the schema may
still be refused with a 422 that names the problem: a semantic rule such as "due_at must
be after opens_at", or an exercise that fails its checks, is beyond a JSON schema; so
schemathesis's positive-data-acceptance check is left out.)

Each operation gets its own copy of the world and an admin's token, so that generated
requests get past authorization into validation and the handlers. Examples per
operation are bounded and derandomized: the whole run stays within a couple of minutes
on two cores. (schemathesis's pytest plugin does not yet run on pytest 9, so the
operations are parametrized here and each runs schemathesis's Hypothesis strategy.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.api.blueprint import bp
from service.config import Settings
from tests.service.api.conftest import app_for
from tests.service.api.world import World, copy_world

SPEC_URL = f"{bp.url_prefix}/openapi.json"
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}


def _cases() -> list[tuple[str, GenerationMode]]:
    """Every operation of the document, positive, and negative when it has inputs to break.

    (Building the document touches no database.)
    """
    from service.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="gs-openapi-"))
    app = create_app(
        Settings(
            database_url=f"sqlite:///{folder / 'unused.db'}",
            broker_url="memory://",
            secret_key="x",
            data_dir=folder,
            dev=True,
        ),
        TESTING=True,
    )
    doc = app.test_client().get(SPEC_URL).get_json()
    cases = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            name = f"{method.upper()} {path}"
            cases.append((name, GenerationMode.POSITIVE))
            inputs = [p for p in op.get("parameters", []) if "$ref" not in p]
            if inputs or "requestBody" in op:
                cases.append((name, GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize(
    ("operation", "mode"), _cases(), ids=lambda v: v if isinstance(v, str) else v.value
)
def test_api_conforms_to_its_openapi_document(
    operation: str, mode: GenerationMode, world_template: World, tmp_path: Path
) -> None:
    world = copy_world(world_template, tmp_path / "world.db")
    app = app_for(world, tmp_path)
    schema = schemathesis.openapi.from_wsgi(SPEC_URL, app)
    method, path = operation.split(" ", 1)
    strategy = schema[path][method].as_strategy(generation_mode=mode)
    headers = world.headers("admin")

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()
