"""Operations: /healthz, /readyz, /metrics, request ids, JSON logs, workers' metrics and logs."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.config import Settings
from service.data.session import session_scope
from service.logging_setup import ContextFilter, json_formatter, log_context, make_formatter
from service.ops import probe
from service.ops.access_log import ACCESS_LOGGER, AccessLog
from service.ops.serve import parse_bind, resolve
from service.queueing import GRADE_TASK
from service.submissions import submit
from service.users import find_user
from tests.support import Factory
from worker import observability

SLUG = "sigmoid-neuron"
OPS = {"OPS_READY_CACHE_SECONDS": 0, "OPS_METRICS_CACHE_SECONDS": 0, "OPS_CHECK_TIMEOUT": 1}


def closed_port() -> int:
    """A local port nothing listens on (a dependency that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_app(settings: Settings, **config: Any) -> Flask:
    return create_app(settings, TESTING=True, **{**OPS, **config})


@pytest.fixture
def ops_app(settings: Settings) -> Flask:
    return make_app(settings)


def answer_workers(app: Flask, monkeypatch: pytest.MonkeyPatch, replies: list[Any]) -> list[int]:
    """Make the broadcast ping return `replies`; returns a list that counts the pings."""
    calls: list[int] = []

    def ping(**_: Any) -> list[Any]:
        calls.append(1)
        return replies

    monkeypatch.setattr(app.extensions["celery"].control, "ping", ping)
    return calls


def oracle(params: dict[str, float]) -> dict[str, float]:
    x, w, b = (
        torch.tensor(float(params[k]), dtype=torch.float64, requires_grad=True) for k in "xwb"
    )
    ((1 - torch.sigmoid(w * x + b)) ** 2).backward()
    return {"w": w.grad.item(), "b": b.grad.item(), "x": x.grad.item()}  # type: ignore[union-attr]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# --- /healthz and request ids ---------------------------------------------------------------


def test_healthz_is_alive_even_when_every_dependency_is_down(settings: Settings) -> None:
    down = dataclasses.replace(
        settings,
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none",
        broker_url=f"redis://127.0.0.1:{closed_port()}/0",
    )
    resp = make_app(down).test_client().get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_a_valid_request_id_is_echoed(client: FlaskClient) -> None:
    resp = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert resp.headers["X-Request-ID"] == "lb-7f3a.42"


@pytest.mark.parametrize(
    "given", [None, "", "has space", "tab\there", "semi;colon", "x" * 129, 'quo"te']
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(
    client: FlaskClient, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert first != given and len(first) == 32 and first != second


# --- /readyz --------------------------------------------------------------------------------


def test_ready_when_database_broker_and_a_worker_answer(
    ops_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_workers(ops_app, monkeypatch, [{"celery@host-a": {"ok": "pong"}}])
    resp = ops_app.test_client().get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 200, body
    assert body["status"] == "ready"
    assert {name: c["ok"] for name, c in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "workers": True,
    }
    assert body["checks"]["workers"]["answered"] == ["celery@host-a"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_unready_when_no_worker_answers(ops_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    answer_workers(ops_app, monkeypatch, [])
    resp = ops_app.test_client().get("/readyz")
    body = resp.get_json()
    assert resp.status_code == 503 and body["status"] == "unready"
    assert body["checks"]["workers"] == {**body["checks"]["workers"], "ok": False, "answered": []}
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_unready_when_the_database_is_down_and_the_cause_stays_private(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    app = make_app(
        dataclasses.replace(
            settings, database_url=f"postgresql+psycopg://secret-user@127.0.0.1:{port}/db"
        )
    )
    answer_workers(app, monkeypatch, [{"celery@a": {"ok": "pong"}}])
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    database = resp.get_json()["checks"]["database"]
    assert database["ok"] is False and database["error"] == "OperationalError"
    assert "secret-user" not in resp.get_data(as_text=True)
    assert str(port) not in resp.get_data(as_text=True)


def test_unready_when_the_broker_is_down_and_no_ping_is_attempted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(dataclasses.replace(settings, broker_url=f"redis://127.0.0.1:{closed_port()}/0"))
    pings = answer_workers(app, monkeypatch, [{"celery@a": {"ok": "pong"}}])
    resp = app.test_client().get("/readyz")
    checks = resp.get_json()["checks"]
    assert resp.status_code == 503
    assert checks["broker"]["ok"] is False and checks["database"]["ok"] is True
    assert checks["workers"] == {"ok": False, "ms": 0.0, "error": "broker unavailable"}
    assert pings == []


def test_readiness_is_cached_so_probes_cannot_flood_the_workers_with_pings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(settings, OPS_READY_CACHE_SECONDS=60)
    pings = answer_workers(app, monkeypatch, [{"celery@a": {"ok": "pong"}}])
    client = app.test_client()
    assert [client.get("/readyz").status_code for _ in range(5)] == [200] * 5
    assert len(pings) == 1


# --- /metrics -------------------------------------------------------------------------------


def test_metrics_count_submissions_by_status_and_the_queue(
    ops_app: Flask, factory: Factory, settings: Settings
) -> None:
    learner = factory.user_with_token()
    client = ops_app.test_client()
    params = client.get(f"/api/v1/exercises/{SLUG}", headers=learner["headers"]).get_json()
    answers = oracle(params["variant"]["params"])
    resp = client.post(
        f"/api/v1/exercises/{SLUG}/submissions",
        json={"answers": answers},
        headers=learner["headers"],
    )
    assert resp.status_code == 202
    with session_scope(settings.database_url) as db:  # one the broker never got: still queued

        class Lost:
            def enqueue(self, submission_id: int, queue: str) -> bool:
                return False

        submit(db, Lost(), find_user(db, learner["email"]), SLUG, {"answers": answers})

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.mimetype == "text/plain"
    got = samples(metrics.get_data(as_text=True))
    assert got[("gradschool_submissions", frozenset({("status", "graded")}))] == 1
    assert got[("gradschool_submissions", frozenset({("status", "queued")}))] == 1
    assert got[("gradschool_submissions", frozenset({("status", "failed")}))] == 0
    assert got[("gradschool_queue_depth", frozenset({("queue", "numeric")}))] == 1
    assert got[("gradschool_queue_depth", frozenset({("queue", "code")}))] == 0
    assert got[("gradschool_queue_oldest_seconds", frozenset({("queue", "numeric")}))] >= 0
    assert got[("gradschool_dependency_up", frozenset({("dependency", "database")}))] == 1


def test_metrics_report_a_dependency_that_is_down_instead_of_failing(settings: Settings) -> None:
    app = make_app(dataclasses.replace(settings, broker_url=f"redis://127.0.0.1:{closed_port()}/0"))
    resp = app.test_client().get("/metrics")
    got = samples(resp.get_data(as_text=True))
    assert resp.status_code == 200
    assert got[("gradschool_dependency_up", frozenset({("dependency", "broker")}))] == 0
    assert got[("gradschool_dependency_up", frozenset({("dependency", "database")}))] == 1


def test_metrics_token_when_set_is_required(settings: Settings) -> None:
    client = make_app(settings, METRICS_TOKEN="s3cret").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_grading_records_latency_and_outcome_in_the_worker_metrics(
    client: FlaskClient, learner: dict[str, Any]
) -> None:
    labels = {"queue": "numeric", "outcome": "graded"}

    def count() -> float:
        return REGISTRY.get_sample_value("gradschool_grading_latency_seconds_count", labels) or 0.0

    before = count()
    params = client.get(f"/api/v1/exercises/{SLUG}", headers=learner["headers"]).get_json()
    client.post(
        f"/api/v1/exercises/{SLUG}/submissions",
        json={"answers": oracle(params["variant"]["params"])},
        headers=learner["headers"],
    )
    assert count() == before + 1


def test_sandbox_outcomes_are_counted_by_status() -> None:
    from exercises.codejob import CodeRun

    def count(status: str) -> float:
        return REGISTRY.get_sample_value("gradschool_sandbox_runs_total", {"status": status}) or 0.0

    before = count("timeout"), count("sandbox_error")
    observability.observe_sandbox_run(CodeRun(status="timeout", outputs=[], wall_seconds=5.0))
    observability.observe_sandbox_error()
    assert (count("timeout"), count("sandbox_error")) == (before[0] + 1, before[1] + 1)


# --- logs -----------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Records of every logger, formatted as JSON the way a deployment writes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line]


def test_log_records_of_a_request_carry_its_request_id(
    settings: Settings, captured: io.StringIO
) -> None:
    app = make_app(settings)

    @app.get("/_log_something")
    def _log_something() -> str:
        logging.getLogger("gradschool.test").info("inside the request")
        return "ok"

    app.test_client().get("/_log_something", headers={"X-Request-ID": "req-1"})
    logging.getLogger("gradschool.test").info("outside any request")
    inside, outside = (r for r in records(captured) if r["logger"] == "gradschool.test")
    assert inside["message"] == "inside the request" and inside["request_id"] == "req-1"
    assert inside["level"] == "INFO" and "time" in inside
    assert "request_id" not in outside


class _Request:
    gradschool_request_id = "req-from-web"


class _Task:
    name = GRADE_TASK
    request = _Request()


def test_a_grading_task_logs_with_its_submission_task_and_request_ids(
    captured: io.StringIO,
) -> None:
    log = logging.getLogger("gradschool.test")
    observability._on_task_prerun(task_id="t-1", task=_Task(), args=[42])  # type: ignore[arg-type]
    log.info("grading")
    observability._on_task_postrun(task_id="t-1", task=_Task())  # type: ignore[arg-type]
    log.info("after")
    during, after = records(captured)
    assert (during["submission_id"], during["task_id"], during["request_id"]) == (
        42,
        "t-1",
        "req-from-web",
    )
    assert not {"submission_id", "task_id", "request_id"} & set(after)


def test_a_task_sent_during_a_request_carries_the_request_id() -> None:
    from service.logging_setup import TASK_REQUEST_ID_HEADER, _tag_task

    headers: dict[str, Any] = {}
    outside: dict[str, Any] = {}
    with log_context(request_id="req-9"):
        _tag_task(headers=headers)
    _tag_task(headers=outside)
    assert headers == {TASK_REQUEST_ID_HEADER: "req-9"} and outside == {}


def test_text_logs_for_development_still_show_the_ids() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with log_context(submission_id=7):
        ContextFilter().filter(record)
    line = make_formatter("text").format(record)
    assert line.endswith("hello [submission_id=7]")


def _access(out: io.StringIO) -> list[dict[str, Any]]:
    return [r for r in records(out) if r["logger"] == ACCESS_LOGGER]


def test_access_lines_are_json_with_the_request_id(
    settings: Settings, captured: io.StringIO
) -> None:
    app = make_app(settings)
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    http = app.test_client()
    response = http.post(
        "/api/v1/exercises/sigmoid-neuron/submissions?x=1",
        json={"answers": {}},
        headers={"X-Request-ID": "req-5", "User-Agent": "curl/8"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
        buffered=True,  # read to the end and closed, as a server does
    )
    assert response.status_code == 401
    assert (
        http.get("/healthz", buffered=True).status_code == 200
    )  # a successful probe is not logged
    (line,) = _access(captured)
    assert (line["method"], line["path"], line["query"], line["status"]) == (
        "POST",
        "/api/v1/exercises/sigmoid-neuron/submissions",
        "x=1",
        401,
    )
    assert (line["request_id"], line["remote_addr"], line["user_agent"]) == (
        "req-5",
        "10.1.2.3",
        "curl/8",
    )
    assert line["bytes"] == len(response.get_data()) > 0
    assert 0 < line["duration_ms"] < 10_000 and line["level"] == "INFO"
    assert line["message"] == "POST /api/v1/exercises/sigmoid-neuron/submissions 401"


def test_access_lines_of_failures_streams_and_plain_wsgi_apps(captured: io.StringIO) -> None:
    closed: list[str] = []

    class Body:  # a streamed body with a close() the server must call (PEP 3333)
        def __iter__(self) -> Iterator[bytes]:
            yield b"abc"
            yield b"defg"

        def close(self) -> None:
            closed.append("body")

    def plain(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        if environ["PATH_INFO"] == "/again":  # an answer replaced by an error (exc_info)
            start_response("200 OK", [("Content-Length", "7"), ("x-request-id", "first")])
            try:
                raise ValueError("late")
            except ValueError:
                start_response("500 ERROR", [("x-request-id", "err")], sys.exc_info())
            return Body()
        if environ["PATH_INFO"] == "/broken":  # a sized body that fails while it is read
            start_response("200 OK", [("Content-Length", "7")])
            return Broken()
        status = "503 SERVICE UNAVAILABLE" if environ["PATH_INFO"] == "/readyz" else "200 OK"
        # The id's header in lower case and twice: the last one is the answer's.
        headers = [("x-request-id", "first"), ("x-request-id", "last")]
        if environ["PATH_INFO"] == "/sized":
            headers.append(("Content-Length", "7"))
        start_response(status, headers)
        return Body()

    class Broken(Body):
        def __iter__(self) -> Iterator[bytes]:
            yield b"abc"
            raise OSError("disk gone")

    app = AccessLog(plain)
    statuses: list[str] = []
    bodies: list[Any] = []

    def serve(path: str) -> bytes:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": ""}
        body = app(environ, lambda status, headers, *exc: statuses.append(status))
        bodies.append(body)
        try:
            return b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
                body.close()  # twice: still one line

    # A body of a declared size goes to the server as one buffer, already closed and logged.
    assert serve("/sized") == b"abcdefg" and bodies[-1] == [b"abcdefg"]
    assert serve("/stream") == b"abcdefg" and not isinstance(bodies[-1], list)
    assert serve("/readyz") == b"abcdefg"  # a failing probe is logged
    assert serve("/healthz") == b"abcdefg"
    with pytest.raises(RuntimeError):
        serve("/boom")
    assert serve("/again") == b"abcdefg" and not isinstance(bodies[-1], list)
    with pytest.raises(OSError):
        serve("/broken")
    assert statuses == [
        "200 OK",
        "200 OK",
        "503 SERVICE UNAVAILABLE",
        "200 OK",
        "200 OK",
        "500 ERROR",
        "200 OK",
    ]
    assert closed == ["body"] * 10  # closed each time it was asked to be
    sized, stream, probe_line, boom, again, broken = _access(captured)
    assert (again["status"], again["request_id"], again["bytes"]) == (500, "err", 7)
    assert (broken["path"], broken["status"], broken["bytes"]) == ("/broken", 500, None)
    assert (sized["path"], sized["bytes"], sized["request_id"]) == ("/sized", 7, "last")
    assert (stream["path"], stream["status"], stream["bytes"], stream["request_id"]) == (
        "/stream",
        200,
        7,
        "last",
    )
    assert (stream["remote_addr"], stream["user_agent"], stream["query"]) == ("-", "-", None)
    assert (probe_line["path"], probe_line["status"]) == ("/readyz", 503)
    assert (boom["path"], boom["status"], boom["bytes"], boom["request_id"]) == (
        "/boom",
        500,
        None,
        None,
    )


def test_the_server_parses_its_bind() -> None:
    assert parse_bind("0.0.0.0:8000") == ("0.0.0.0", 8000)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    assert parse_bind(":8000") == ("0.0.0.0", 8000)
    for bad in ("8000", "host:", "host:http", "host:70000", "host:0"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_bind(bad)


def test_the_server_binds_a_host_name_by_its_address() -> None:
    assert resolve("127.0.0.1") == "127.0.0.1" and resolve("::1") == "::1"
    assert resolve("localhost") in ("127.0.0.1", "::1")
    with pytest.raises(ValueError, match="cannot resolve"):
        resolve("no-such-host.invalid")


@pytest.mark.parametrize(
    ("bind", "message"),
    [("localhost", "--bind takes HOST:PORT"), ("no-such-host.invalid:80", "cannot resolve")],
)
def test_the_web_command_refuses_a_bad_bind_clearly(bind: str, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.ops.serve", "--bind", bind],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_probe_usage_and_a_web_that_does_not_answer() -> None:
    assert probe.main([]) == 2
    assert probe.main(["web", f"http://127.0.0.1:{closed_port()}/healthz"]) == 1


# --- the embedded broker ----------------------------------------------------------------------


def test_filesystem_broker_messages_appear_only_once_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu import Connection

    from service.ops import fsbroker

    fsbroker.install()
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    seen_at_rename: list[list[str]] = []
    rename = os.replace

    def spy(src: str, dst: str) -> None:
        seen_at_rename.append(sorted(p.name for p in folder.iterdir()))
        assert Path(src).read_bytes().endswith(b"}")  # complete before it is visible
        rename(src, dst)

    monkeypatch.setattr(fsbroker.os, "replace", spy)
    with Connection("filesystem://localhost", transport_options=options) as conn:
        channel = conn.default_channel
        channel._put("numeric", {"body": "x" * 10_000})
        (folder / ".123_abc.numeric.msg.partial").write_bytes(b"")  # a writer mid-way
        assert channel._size("numeric") == 1
        assert channel._get("numeric") == {"body": "x" * 10_000}
        assert channel._size("numeric") == 0
    [names] = seen_at_rename
    assert len(names) == 1 and names[0].startswith(".") and names[0].endswith(".partial")


def test_the_web_health_check_loads_neither_flask_nor_sqlalchemy() -> None:
    """It runs every few seconds in the web container: it must stay a fraction of a second."""
    code = (
        "import sys, service.ops.probe as p; p.main(['web', 'http://127.0.0.1:9/healthz']); "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'celery', 'torch') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
