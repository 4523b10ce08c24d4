"""docker-compose.yml is valid against the Compose Specification and uses our own commands."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"


def _compose() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_file_validates_against_the_spec() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(_compose())


def test_compose_services_run_gradschool_commands() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in ("web", "worker-numeric", "worker-code", "migrate", "sweeper"):
        command = services[name]["command"]
        assert command[0] == "gradschool", name
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]
