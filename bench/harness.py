"""The production stack for benchmarks: its own PostgreSQL database and Redis key prefix,
granian, and Celery workers; learners with tokens; and answer bodies per exercise."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exercises.catalog import load_builtin_catalog  # noqa: E402
from service.data.session import session_scope  # noqa: E402
from service.users import create_token, create_user  # noqa: E402
from tests.integration.stack import (  # noqa: E402
    free_port,
    load_database,
    scratch_database,
    wait_http,
)

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
GRADSCHOOL = [sys.executable, "-m", "service.cli"]
LEARNERS = 200
# BENCH_WORKER_NICE=10 starts the workers below the web in CPU priority (an experiment of
# docs/PERFORMANCE.md: it did not lower GET latency, and grading latency rose).
NICE = ["nice", "-n", os.environ.get("BENCH_WORKER_NICE", "0")]


@dataclass
class BenchStack:
    """The running processes, the database URL and the learners' tokens."""

    base_url: str
    database_url: str
    mode: str
    env: dict[str, str]
    tokens: list[str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def process_groups(self) -> dict[str, list[psutil.Process]]:
        """Processes by role (web, worker: children included), plus PostgreSQL and Redis."""
        groups: dict[str, list[psutil.Process]] = {}
        for name, proc in self.procs.items():
            role = "web" if name == "web" else "worker"
            parent = psutil.Process(proc.pid)
            groups.setdefault(role, []).extend([parent, *parent.children(recursive=True)])
        groups["postgres"] = [
            p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster")
        ]
        groups["redis"] = [
            p for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"
        ]
        return groups


def learners(database_url: str, n: int) -> list[str]:
    """API tokens of `n` new learners."""
    tokens = []
    with session_scope(database_url) as db:
        for i in range(n):
            user = create_user(db, f"bench{i}@example.test", "bench-password")
            tokens.append(create_token(db, user, name="bench"))
    return tokens


@contextmanager
def start_stack(
    mode: str = "celery", web_workers: int = 2, workers: int = 2
) -> Iterator[BenchStack]:
    """Start web + workers on a fresh PostgreSQL database and Redis prefix; tear all down after."""
    with (
        scratch_database(PG_ADMIN, "gradschool_bench") as database_url,
        _running(database_url, mode, web_workers, workers) as stack,
    ):
        yield stack


@contextmanager
def _running(database_url: str, mode: str, web_workers: int, workers: int) -> Iterator[BenchStack]:
    """The stack's processes on `database_url` (migrated and loaded here), with learners and a
    Redis prefix of their own; stopped, and the prefix's keys deleted, afterwards."""
    prefix = f"gradschool-bench-{uuid.uuid4().hex[:10]}:"
    data_dir = Path(tempfile.mkdtemp(prefix="gradschool-bench-"))
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        BROKER_URL=REDIS_URL,
        BROKER_KEY_PREFIX=prefix,
        SECRET_KEY="bench-secret",
        GRADSCHOOL_DATA_DIR=str(data_dir),
        GRADING_MODE=mode,
        MAX_QUEUE_DEPTH="100000",
    )
    stack = BenchStack("", database_url, mode, env, [])
    try:
        load_database(database_url)
        stack.tokens = learners(database_url, LEARNERS)
        port = free_port()
        stack.base_url = f"http://127.0.0.1:{port}"
        log = (data_dir / "web.log").open("ab")
        stack.procs["web"] = subprocess.Popen(
            [*GRADSCHOOL, "web", "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if mode == "celery":
            for i in range(workers):
                with (data_dir / f"worker{i}.log").open("ab") as wlog:
                    stack.procs[f"worker{i}"] = subprocess.Popen(
                        [
                            *NICE,
                            *GRADSCHOOL,
                            "worker",
                            *("--queues", "numeric,code"),
                            *("--concurrency", "1"),
                        ],
                        env=env,
                        cwd=ROOT,
                        stdout=wlog,
                        stderr=subprocess.STDOUT,
                    )
        wait_http(stack.base_url + "/login", deadline=60)
        _wait_workers(env, workers if mode == "celery" else 0)
        yield stack
    finally:
        for proc in stack.procs.values():
            proc.terminate()
        for proc in stack.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _wait_workers(env: dict[str, str], n: int) -> None:
    """Wait until n workers answer a ping, so the first runs do not pay start-up."""
    if n == 0:
        return
    import time

    from celery import Celery

    from service.config import load_settings
    from service.queueing import celery_config

    app = Celery("bench")
    app.config_from_object(celery_config(load_settings(env)))
    end = time.monotonic() + 90
    while time.monotonic() < end:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= n:
            return
    raise TimeoutError("workers did not answer")


def answer_bodies(stack: BenchStack, slug: str) -> list[dict[str, Any]]:
    """Half right, half wrong answers on the worked example (wrong ones exercise diagnosis)."""
    spec = next(s for s in load_builtin_catalog() if s.slug == slug)
    right: dict[str, Any]
    wrong: dict[str, Any]
    if spec.kind == "gradient_code" and spec.code is not None:
        right = {"code": spec.code.solution}
        wrong = {"code": spec.code.solution.replace("dz * x", "dz")}
    else:
        answers = dict(spec.worked_example or {})
        right = {"answers": answers}
        wrong = {"answers": {k: (v if isinstance(v, str) else -v) for k, v in answers.items()}}
        if spec.kind == "formula":
            wrong = {"answers": {k: "-2 * (1 - y_hat) * x" for k in answers}}
    return [{**right, "variant": "worked-example"}, {**wrong, "variant": "worked-example"}]
