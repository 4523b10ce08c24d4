"""docker-compose.yml's services, run natively: migrate, web under granian, both workers and the
sweeper, with the commands and environments read from the file, against PostgreSQL and Redis.

No Docker engine runs here, so this is how the compose file is exercised end to end: if a
command or a variable in it drifts, this test runs the drifted version. Only what a host
decides is replaced: the database and broker addresses, the bind address and ports, folders.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from exercises.catalog import CATALOG_DIR, load_exercise_file
from service.data.session import session_scope
from service.submissions import submit
from service.users import create_token, create_user, find_user
from tests.integration.compose_native import (
    NativeServices,
    load_compose,
    native_argv,
    replace_option,
    service_environment,
)
from tests.integration.stack import free_port, json_lines, poll_graded, wait_http

APP_SERVICES = ("migrate", "web", "worker-numeric", "worker-code", "sweeper")
REDIS_URL = "redis://127.0.0.1:6379/0"
# Stand-ins for .env's secrets: the URLs that use them are replaced by this host's anyway.
SECRETS = {"SECRET_KEY": "native-compose-secret", "POSTGRES_PASSWORD": "x", "REDIS_PASSWORD": "x"}


def oracle(params: dict[str, float]) -> dict[str, float]:
    """dloss/dw, db, dx of the notes' neuron, by autograd in float64."""
    x, w, b = (
        torch.tensor(float(params[k]), dtype=torch.float64, requires_grad=True) for k in "xwb"
    )
    ((1 - torch.sigmoid(w * x + b)) ** 2).backward()
    return {"w": w.grad.item(), "b": b.grad.item(), "x": x.grad.item()}  # type: ignore[union-attr]


class _NoDispatch:
    """A dispatcher that loses every submission, as a broker outage would: the sweeper's job."""

    def enqueue(self, submission_id: int, queue: str) -> bool:
        return False


def _host_environment(
    name: str, env: dict[str, str], tmp: Path, pg_url: str, redis_prefix: str
) -> dict[str, str]:
    """Replace what a host decides; everything else comes from docker-compose.yml unchanged."""
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), env["DATABASE_URL"]
    assert env["BROKER_URL"].startswith("redis://"), env["BROKER_URL"]
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    env.update(
        DATABASE_URL=pg_url,
        BROKER_URL=REDIS_URL,
        BROKER_KEY_PREFIX=redis_prefix,
        GRADSCHOOL_DATA_DIR=str(folder / "data"),
        HOME=str(folder),
        PATH=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        LANG="C.UTF-8",
    )
    if "PROMETHEUS_MULTIPROC_DIR" in env:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder / "metrics")
    if "WORKER_METRICS_PORT" in env:
        env["WORKER_METRICS_PORT"] = str(free_port())
        env["WORKER_METRICS_ADDR"] = "127.0.0.1"
    if name == "sweeper" or name.startswith("worker"):
        env["SWEEP_AFTER_SECONDS"] = "3"  # so the lost submission below is found within seconds
    return env


@pytest.fixture
def services(tmp_path: Path, pg_url: str, redis_prefix: str) -> Iterator[dict[str, Any]]:
    """Every gradschool service of docker-compose.yml, running, in its dependency order."""
    compose = load_compose()["services"]
    native = NativeServices(tmp_path)
    envs = {
        name: _host_environment(
            name, service_environment(compose[name], SECRETS), tmp_path, pg_url, redis_prefix
        )
        for name in APP_SERVICES
    }
    port = free_port()
    try:
        # The one-shot job first: everything else waits for it to complete successfully.
        code = native.run("migrate", native_argv(compose["migrate"]["command"]), envs["migrate"])
        assert code == 0, native.log_tail()
        for name in ("worker-numeric", "worker-code", "sweeper"):
            native.start(name, native_argv(compose[name]["command"]), envs[name])
        web = replace_option(native_argv(compose["web"]["command"]), "--bind", f"127.0.0.1:{port}")
        native.start("web", web, envs["web"])
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", deadline=60)
        yield {"base": base, "native": native, "envs": envs, "pg_url": pg_url}
    finally:
        native.stop_all()


def _wait_ready(base: str, native: NativeServices, deadline: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    body: dict[str, Any] = {}
    while time.monotonic() < end:
        resp = httpx.get(base + "/readyz", timeout=10)
        body = resp.json()
        if resp.status_code == 200:
            return body
        time.sleep(0.5)
    raise AssertionError(f"/readyz never became ready: {body}\n{native.log_tail()}")


def _metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _worker_metrics_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics"


def _sample(metrics: dict[Any, float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def _solution() -> str:
    """The catalog's model answer of the code exercise (grads(x, w, b))."""
    spec = load_exercise_file(CATALOG_DIR / "sigmoid-neuron-code.yaml")
    assert spec.code is not None and spec.code.solution
    return spec.code.solution


def _learner(pg_url: str) -> tuple[str, str]:
    email = f"native-{uuid.uuid4().hex[:8]}@example.test"
    with session_scope(pg_url) as db:
        token = create_token(db, create_user(db, email, "correct-horse"))
    return email, token


@pytest.mark.integration
def test_compose_services_run_natively_and_grade_each_kind(services: dict[str, Any]) -> None:
    base, native, pg_url = services["base"], services["native"], services["pg_url"]
    ready = _wait_ready(base, native)
    assert ready["checks"]["workers"]["answered"], ready

    email, token = _learner(pg_url)
    request_id = f"native-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        params = http.get("/api/v1/exercises/sigmoid-neuron").json()["variant"]["params"]
        wrong = http.post(
            "/api/v1/exercises/sigmoid-neuron/submissions",
            json={"answers": {"w": 0, "b": 0, "x": 0}},
        )
        right = http.post(
            "/api/v1/exercises/sigmoid-neuron/submissions",
            json={"answers": oracle(params)},
            headers={"X-Request-ID": request_id},
        )
        assert right.headers["X-Request-ID"] == request_id
        code = http.post(
            "/api/v1/exercises/sigmoid-neuron-code/submissions", json={"code": _solution()}
        )
        for resp in (wrong, right, code):
            assert resp.status_code == 202, resp.text
        # A submission the broker never got: only the sweeper can bring it to a worker.
        with session_scope(pg_url) as db:
            lost, _ = submit(
                db,
                _NoDispatch(),
                find_user(db, email),
                "sigmoid-neuron",
                {"answers": oracle(params)},
            )
            lost_id = lost.id
        try:
            bad = poll_graded(http, wrong.json()["id"])
            good = poll_graded(http, right.json()["id"])
            swept = poll_graded(http, lost_id, timeout=90)
            coded = poll_graded(http, code.json()["id"], timeout=120)
        except TimeoutError as err:
            raise AssertionError(f"{err}\n{native.log_tail()}") from err

    assert bad["status"] == "graded" and bad["score"] == 0.0, bad
    assert good["status"] == "graded" and good["score"] == 1.0, good
    assert swept["status"] == "graded" and swept["score"] == 1.0, swept

    # /metrics of the web: state read from the database and the broker.
    web_metrics = _metrics(base + "/metrics")
    assert _sample(web_metrics, "gradschool_submissions", status="graded") >= 3
    assert _sample(web_metrics, "gradschool_queue_depth", queue="numeric") == 0
    assert _sample(web_metrics, "gradschool_dependency_up", dependency="broker") == 1
    # The workers' own endpoints: grading latency and sandbox outcomes, where they happen.
    envs = services["envs"]
    numeric = _metrics(_worker_metrics_url(envs["worker-numeric"]))
    latency = "gradschool_grading_latency_seconds_count"
    assert _sample(numeric, latency, queue="numeric", outcome="graded") >= 3

    # JSON logs: the web's access line and the worker's task lines carry the request id.
    web_records = json_lines(native.log_text("web"))
    assert any(
        r.get("request_id") == request_id and r.get("path", "").endswith("/submissions")
        for r in web_records
    ), native.log_text("web")[-3000:]
    worker_records = json_lines(native.log_text("worker-numeric"))
    mine = [r for r in worker_records if r.get("submission_id") == right.json()["id"]]
    assert mine, native.log_text("worker-numeric")[-3000:]
    assert all(r.get("request_id") == request_id and r.get("task_id") for r in mine), mine
    assert any(r.get("submission_id") == lost_id for r in worker_records)
    sweeps = json_lines(native.log_text("sweeper"))
    assert any("Sending due task" in r["message"] for r in sweeps), sweeps

    # Last, so that everything above is checked even while code grading is broken: the code
    # answer, graded in the sandbox of the code worker, and its outcome counted there.
    assert coded["status"] == "graded" and coded["score"] == 1.0, (
        coded,
        native.log_text("worker-code")[-3000:],
    )
    coding = _metrics(_worker_metrics_url(envs["worker-code"]))
    assert _sample(coding, latency, queue="code", outcome="graded") >= 1
    assert _sample(coding, "gradschool_sandbox_runs_total", status="ok") >= 1
    web_metrics = _metrics(base + "/metrics")
    assert _sample(web_metrics, "gradschool_submissions", status="graded") >= 4
    assert any(
        r.get("submission_id") == code.json()["id"]
        for r in json_lines(native.log_text("worker-code"))
    )
