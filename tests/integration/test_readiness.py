"""/readyz follows its dependencies: unready while PostgreSQL, Redis or every worker is stopped,
ready again when they return. The PostgreSQL and Redis here are this test's own, started on
free ports by tests/integration/faults/servers.py (the shared ones are never stopped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from flask import Flask

from service.app import create_app
from service.config import Settings, load_settings
from service.data.session import close_all
from tests.integration.faults.servers import PrivatePostgres, PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "service.cli", "worker", "--queues", "numeric"]


def unavailable(what: str) -> NoReturn:
    """A server binary is missing: skip locally, but fail under CI, which must test readiness."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set: readiness must be tested, install it)")
    pytest.skip(what)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("runuser is needed to run initdb as a non-root user")
    try:
        server = PrivatePostgres()
    except FileNotFoundError as err:  # servers.py finds no PostgreSQL binaries
        unavailable(f"PostgreSQL is not installed: {err}")
    try:
        server.start()
        yield server
    finally:
        close_all()
        server.destroy()


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            WORKER,
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def web(settings: Settings) -> Flask:
    return create_app(
        settings, TESTING=True, OPS_READY_CACHE_SECONDS=0, OPS_CHECK_TIMEOUT=2, OPS_PING_TIMEOUT=1
    )


def readiness(app: Flask) -> tuple[int, dict[str, Any]]:
    resp = app.test_client().get("/readyz")
    body: dict[str, Any] = resp.get_json()
    return resp.status_code, body


def becomes(app: Flask, status: int, what: str, log: Path) -> dict[str, Any]:
    """Wait until /readyz answers `status`; returns its body."""
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        code, last = readiness(app)
        return code == status

    try:
        wait_for(check, what)
    except AssertionError as err:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise AssertionError(f"{err}; last /readyz: {last}\n--- worker\n{tail}") from err
    return last


def oks(body: dict[str, Any]) -> dict[str, bool]:
    return {name: check["ok"] for name, check in body["checks"].items()}


def environment(tmp_path: Path, database_url: str, broker_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(
        DATABASE_URL=database_url,
        BROKER_URL=broker_url,
        SECRET_KEY="readiness-secret",
        GRADSCHOOL_DATA_DIR=str(tmp_path / "data"),
        CELERY_QUIET="1",
    )
    env.pop("BROKER_KEY_PREFIX", None)
    return env


@pytest.mark.integration
def test_readyz_follows_the_database_the_broker_and_the_workers(
    tmp_path: Path, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> None:
    env = environment(tmp_path, postgres.url(), redis_server.url)
    app = web(load_settings(env))
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        ready = becomes(app, 200, "ready with a worker", log)
        assert ready["status"] == "ready" and ready["checks"]["workers"]["answered"]

        postgres.stop("fast")
        down = becomes(app, 503, "unready without the database", log)
        assert oks(down) == {"database": False, "broker": True, "workers": True}, down
        assert app.test_client().get("/healthz").status_code == 200  # alive all the same
        postgres.start()
        assert oks(becomes(app, 200, "ready with the database back", log)) == {
            "database": True,
            "broker": True,
            "workers": True,
        }

        redis_server.kill()
        down = becomes(app, 503, "unready without the broker", log)
        assert oks(down) == {"database": True, "broker": False, "workers": False}, down
        redis_server.start()
        becomes(app, 200, "ready with the broker back (the worker reconnected)", log)

        stop_worker(worker)
        down = becomes(app, 503, "unready without any worker", log)
        assert oks(down) == {"database": True, "broker": True, "workers": False}, down
        assert down["checks"]["workers"]["answered"] == []
    finally:
        stop_worker(worker)


@pytest.mark.integration
def test_readyz_pings_workers_over_the_filesystem_broker_too(tmp_path: Path) -> None:
    """The embedded default (SQLite, kombu's filesystem transport) answers pings as well."""
    env = environment(tmp_path, f"sqlite:///{tmp_path / 'gradschool.db'}", "filesystem://")
    app = web(load_settings(env))
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        assert becomes(app, 200, "ready with a worker", log)["checks"]["workers"]["answered"]
        stop_worker(worker)
        assert oks(becomes(app, 503, "unready without any worker", log))["workers"] is False
    finally:
        stop_worker(worker)
