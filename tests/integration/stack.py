"""Start gradschool's real processes (granian web, Celery workers) for integration tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from exercises.catalog import load_builtin_catalog
from service.catalog import sync_catalog
from service.data.migrate import upgrade
from service.data.session import close_all, session_scope
from service.users import create_token, create_user

ROOT = Path(__file__).resolve().parents[2]
GRADSCHOOL = [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    """A running set of processes and an HTTP client with a learner's token."""

    base_url: str
    env: dict[str, str]
    token: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client authenticated as the stack's learner (or `token`)."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=10,
        )

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start a process with the stack's environment, logging to a file."""
        log = Path(self.env["GRADSCHOOL_DATA_DIR"]) / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = 15) -> None:
        """Stop one process (SIGTERM by default) and wait for it."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()

    def log_tail(self) -> str:
        """The last lines of every process's log, for failure messages."""
        return "\n".join(
            f"--- {n}\n{p.read_text()[-3000:]}" for n, p in self.logs.items() if p.exists()
        )


@contextmanager
def scratch_database(
    admin_url: str, prefix: str, connect_timeout: float | None = None
) -> Iterator[str]:
    """An empty PostgreSQL database of its own on the server of `admin_url` (a libpq URL);
    yields its SQLAlchemy URL, then closes this process's pools and drops it (cutting off
    whoever is still connected)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    timeout = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    with psycopg.connect(admin_url, autocommit=True, **timeout) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_database(database_url: str) -> None:
    """Migrate the database and load the built-in catalog."""
    upgrade(database_url)
    with session_scope(database_url) as db:
        sync_catalog(db, load_builtin_catalog())


def prepare_database(database_url: str) -> str:
    """Migrate, load the catalog, and create a learner; returns the learner's token."""
    load_database(database_url)
    with session_scope(database_url) as db:
        user = create_user(db, f"learner-{time.monotonic_ns()}@example.test", "correct-horse")
        return create_token(db, user)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log as a JSON object (a line that is not JSON fails the test)."""
    records = []
    for line in text.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise AssertionError(f"a log line that is not JSON: {line!r}") from err
    return records


def wait_http(url: str, deadline: float = 30.0) -> None:
    """Wait until `url` answers at all."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {deadline} s")


def start_web_only(
    tmp_path: Path, pg_url: str, key_prefix: str, extra_env: dict[str, str]
) -> Stack:
    """`gradschool web` with 2 processes (no worker) on a migrated `pg_url`, a learner's token
    and Redis keys under `key_prefix`; the caller stops it (`stack.stop("web")`)."""
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "DATABASE_URL": pg_url,
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "BROKER_KEY_PREFIX": key_prefix,
        "GRADSCHOOL_DATA_DIR": str(data),
        "SECRET_KEY": "integration-secret",
        "PATH": os.environ["PATH"],
        **extra_env,
    }
    token = prepare_database(pg_url)
    stack = Stack(base_url=f"http://127.0.0.1:{free_port()}", env=env, token=token)
    port = stack.base_url.rsplit(":", 1)[1]
    stack.start("web", [*GRADSCHOOL, "web", "--bind", f"127.0.0.1:{port}", "--workers", "2"])
    return stack


@contextmanager
def running_stack(
    env_overrides: dict[str, str], data_dir: Path, queues: str = "numeric,code"
) -> Iterator[Stack]:
    """Web under granian and one Celery worker on `queues`, torn down afterwards."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(
        {"GRADSCHOOL_DATA_DIR": str(data_dir), "SECRET_KEY": "integration-secret"}, **env_overrides
    )
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'gradschool.db'}"
    env["DATABASE_URL"] = database_url
    token = prepare_database(database_url)
    port = free_port()
    stack = Stack(base_url=f"http://127.0.0.1:{port}", env=env, token=token)
    try:
        stack.start("worker", [*GRADSCHOOL, "worker", "--queues", queues, "--beat"])
        stack.start("web", [*GRADSCHOOL, "web", "--bind", f"127.0.0.1:{port}", "--workers", "1"])
        wait_http(stack.base_url + "/login")
        yield stack
    finally:
        for name in list(stack.procs):
            stack.stop(name)


def poll_graded(client: httpx.Client, submission_id: int, timeout: float = 60.0) -> dict[str, Any]:
    """Poll a submission until graded or failed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body: dict[str, Any] = client.get(f"/api/v1/submissions/{submission_id}").json()
        if body["status"] in ("graded", "failed"):
            return body
        time.sleep(0.1)
    raise TimeoutError(f"submission {submission_id} not graded within {timeout} s: {body}")
