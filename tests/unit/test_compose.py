"""docker-compose.yml, the Dockerfile, .env.example and docs/DEPLOY.md agree with each other, with
the Compose Specification, and with what an operator is promised (no Docker engine runs here;
tests/integration/test_compose_native.py runs the services' commands natively)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"
APP_SERVICES = ("migrate", "web", "worker-numeric", "worker-code", "sweeper")
WORKERS = ("worker-numeric", "worker-code")
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
# What the code worker's sandbox uses, and why (docs/DEPLOY.md explains each to operators).
SANDBOX_CAPABILITIES = {"SYS_ADMIN", "SETUID", "SETGID", "SETPCAP", "KILL"}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip().lstrip("#")
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", line):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def _deploy_doc() -> str:
    return (ROOT / "docs" / "DEPLOY.md").read_text()


def test_compose_file_validates_against_the_spec() -> None:
    _validator().validate(_compose())


def test_the_validation_can_fail() -> None:
    broken = _compose()
    broken["services"]["web"]["healthchek"] = broken["services"]["web"].pop("healthcheck")
    broken["services"]["worker-code"]["cap_add"] = "SYS_ADMIN"
    assert len(list(_validator().iter_errors(broken))) == 2


def test_compose_services_run_gradschool_commands_from_one_image() -> None:
    services = _services()
    assert set(services) == {*APP_SERVICES, "postgres", "redis"}
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1, images
    for name in APP_SERVICES:
        assert services[name]["command"][0] == "gradschool", name
        assert services[name]["build"] == {"context": "."}, name
    assert services["worker-numeric"]["command"][1:] == [
        "worker",
        "--queues",
        "numeric",
        "--concurrency",
        "1",
    ]
    assert services["worker-code"]["command"][1:3] == ["worker", "--queues"]
    assert services["worker-code"]["command"][3] == "code"


def test_everything_waits_for_the_one_shot_migration() -> None:
    services = _services()
    migrate = services["migrate"]
    assert migrate["command"] == ["gradschool", "migrate-and-load"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", *WORKERS, "sweeper"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_postgres_and_redis_keep_data_in_volumes_with_healthchecks_on_the_internal_network() -> (
    None
):
    compose = _compose()
    assert compose["networks"]["internal"]["internal"] is True
    for name, mount in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        service = compose["services"][name]
        assert "healthcheck" in service and service["healthcheck"]["test"], name
        assert service["networks"] == ["internal"], name
        assert "ports" not in service, name
        [volume] = service["volumes"]
        source, target = volume.split(":")
        assert target == mount and source in compose["volumes"], name


def test_only_the_web_is_published_and_by_default_only_on_loopback() -> None:
    services = _services()
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"web"}
    [port] = services["web"]["ports"]
    assert port == "${WEB_PUBLISH:-127.0.0.1:8000}:8000"
    for name in (*WORKERS, "sweeper", "migrate"):
        assert services[name]["networks"] == ["internal"], name


def test_secrets_come_only_from_the_env_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m.group(1) for m in _INTERPOLATION.finditer(text)}
    assert set(SECRETS) <= used
    for secret in SECRETS:
        # Every use of a secret is required (`:?`): an unset .env stops compose, never a default.
        assert re.findall(rf"\$\{{{secret}(:?[-?][^}}]*)?\}}", text) == [
            f":?set {secret} in .env"
        ] * text.count(f"${{{secret}"), secret
    for name, service in _services().items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")) or "@" in str(value):
                assert "${" in str(value), (name, key)
        assert service.get("env_file", [".env"]) == [".env"], name
    example = _env_example()
    assert all(example[secret] == "" for secret in SECRETS), "ship no secret values"
    assert used <= set(example), f"undocumented in .env.example: {used - set(example)}"


def test_processes_are_unprivileged_except_the_code_worker_which_gets_only_what_it_needs() -> None:
    services = _services()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    for name in APP_SERVICES:
        service = services[name]
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"], name
        if name != "worker-code":
            assert "user" not in service and "cap_add" not in service, name
    code = services["worker-code"]
    assert code["user"] == "0:0"
    assert set(code["cap_add"]) == SANDBOX_CAPABILITIES
    assert code["pids_limit"] > 0 and code["mem_limit"]
    doc = _deploy_doc()
    for cap in SANDBOX_CAPABILITIES:
        assert f"CAP_{cap}" in doc, f"docs/DEPLOY.md must say why worker-code needs CAP_{cap}"


def test_healthchecks_and_metrics_endpoints() -> None:
    services = _services()
    assert services["web"]["healthcheck"]["test"][:5] == [
        "CMD",
        "python",
        "-m",
        "service.ops.probe",
        "web",
    ]
    for name in WORKERS:
        service = services[name]
        assert service["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "service.ops.probe",
            "worker",
        ]
        env = service["environment"]
        assert env["WORKER_METRICS_PORT"] == "9808", name
        assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/"), name  # the tmpfs
    # The web is `gradschool web` (granian, JSON logs from the app itself): nothing to configure.
    assert services["web"]["command"] == ["gradschool", "web", "--bind", "0.0.0.0:8000"]


def test_the_dockerfile_builds_one_small_cpu_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M)
    assert dockerfile.count("FROM ") == 2  # build tools and caches stay in the first stage
    assert "-c requirements.lock" in dockerfile
    assert re.search(r'^CMD \["gradschool", "web"', dockerfile, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".env", ".git", ".venv", "var/", "tests/"):
        assert path in ignored, path
    assert "COPY .env" not in dockerfile


def _yaml_blocks(text: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_the_compose_snippets_in_the_deployment_guide_validate_too() -> None:
    blocks = [b for b in _yaml_blocks(_deploy_doc()) if "services" in b]
    assert len(blocks) >= 2, "docs/DEPLOY.md shows the worker-machine compose files"
    validator = _validator()
    for block in blocks:
        assert not list(validator.iter_errors(block)), block


def test_the_deployment_guide_covers_what_operators_need() -> None:
    doc = _deploy_doc()
    for heading in (
        "Environment variables",
        "First start",
        "Adding worker machines",
        "Backups and restore",
        "Upgrading",
        "Health, readiness and metrics",
        "Logs",
    ):
        assert re.search(rf"^##+ {heading}", doc, re.M), heading
    for variable in _env_example():
        assert f"`{variable}`" in doc, f"docs/DEPLOY.md does not explain {variable}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_the_environment_that_reaches_postgres_and_redis(name: str) -> None:
    env = _services()[name]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://gradschool:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/gradschool")
    assert (
        env["BROKER_URL"] == "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}@redis:6379/0"
    )
    assert env["LOG_FORMAT"] == "${LOG_FORMAT:-json}"
