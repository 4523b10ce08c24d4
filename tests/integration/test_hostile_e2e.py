"""The threat model through the real path: HTTP API -> Redis -> Celery code worker -> sandbox.

Every hostile program of the sandbox suite is submitted as a learner's answer to the
code exercise. Each must get a clean verdict (graded, never passing, never `failed`),
the worker and its zygote must stay alive throughout, nothing secret may appear in
what the learner sees, and a normal submission must be graded right afterwards.
Slow code must not hold up numeric answers (separate queues, separate workers).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.stack import GRADSCHOOL, Stack, poll_graded, running_stack
from tests.worker.sandbox.hostile_programs import CANARY_ENV, CANARY_VALUE, HOSTILE, Hostile

SLUG = "sigmoid-neuron-code"
SECRET = "integration-secret"
SOLUTION = """
import math


def grads(x, w, b):
    y = 1 / (1 + math.exp(-(w * x + b)))
    dz = -2 * (1 - y) * y * (1 - y)
    return {"w": dz * x, "b": dz, "x": dz * w}
"""


def as_answer(hostile: Hostile) -> str:
    """The hostile program, reached through the exercise's entry point."""
    return hostile.source + "\n\ndef grads(x, w, b):\n    return solve()\n"


RESOURCE_LIMITS = frozenset({"timeout", "memory", "output_limit", "killed"})


def accepted(hostile: Hostile) -> frozenset[str]:
    """The statuses a clean verdict may have: exhaustion (threat line 4) may hit whichever
    limit comes first on a loaded machine (a 100 MB print can run out of CPU before output)."""
    if hostile.expected <= RESOURCE_LIMITS:
        return hostile.expected | RESOURCE_LIMITS
    return hostile.expected


def zygotes(stack: Stack, name: str) -> set[int]:
    """Pids of the sandbox zygotes under a worker process."""
    worker = psutil.Process(stack.procs[name].pid)
    return {c.pid for c in worker.children(recursive=True) if "zygote" in " ".join(c.cmdline())}


def _submit(http: Any, body: dict[str, Any], slug: str = SLUG) -> int:
    resp = http.post(f"/api/v1/exercises/{slug}/submissions", json=body)
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])


@pytest.mark.integration
def test_hostile_programs_through_api_worker_and_sandbox(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    env = {
        "DATABASE_URL": pg_url,
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "BROKER_KEY_PREFIX": redis_prefix,
        "SANDBOX_MAX_CPU_SECONDS": "1",
        "SANDBOX_MAX_WALL_SECONDS": "2",
        CANARY_ENV: CANARY_VALUE,  # in the worker's environment: it must never reach the learner
    }
    with running_stack(env, tmp_path / "data", queues="code") as stack, stack.client() as http:
        stack.start("numeric", [*GRADSCHOOL, "worker", "--queues", "numeric"])
        first = poll_graded(http, _submit(http, {"code": SOLUTION}), timeout=120)
        assert first["score"] == 1.0, (first, stack.log_tail())
        before = zygotes(stack, "worker")
        assert before, "the code worker runs a sandbox zygote"

        ids = {h.id: _submit(http, {"code": as_answer(h)}) for h in HOSTILE}
        for hostile in HOSTILE:
            body = poll_graded(http, ids[hostile.id], timeout=300)
            text = str(body)
            assert body["status"] == "graded", (hostile.id, body)
            assert body["score"] < 1.0, (hostile.id, body)
            assert body["details"]["status"] in accepted(hostile), (hostile.id, body)
            for secret in (CANARY_VALUE, SECRET, pg_url):
                assert secret not in text, hostile.id
            assert stack.procs["worker"].poll() is None, f"{hostile.id} killed the worker"
        assert zygotes(stack, "worker") == before, "the zygote was killed or restarted"
        assert not os.path.exists("/work/main/.sandbox-escape-marker")

        last = poll_graded(http, _submit(http, {"code": SOLUTION}), timeout=60)
        assert last["score"] == 1.0, last


@pytest.mark.integration
def test_slow_code_does_not_hold_up_numeric_answers(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    env = {
        "DATABASE_URL": pg_url,
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "BROKER_KEY_PREFIX": redis_prefix + "slow:",
        "SANDBOX_MAX_CPU_SECONDS": "2",
        "SANDBOX_MAX_WALL_SECONDS": "3",
    }
    loop = "def grads(x, w, b):\n    while True:\n        pass\n"
    with running_stack(env, tmp_path / "data", queues="code") as stack, stack.client() as http:
        stack.start("numeric", [*GRADSCHOOL, "worker", "--queues", "numeric"])
        slow = [_submit(http, {"code": loop}) for _ in range(6)]  # ~12 s of one code worker
        quick = _submit(http, {"answers": {"w": 1, "b": 1, "x": 1}}, slug="sigmoid-neuron")
        graded = poll_graded(http, quick, timeout=60)
        assert graded["status"] == "graded"
        pending = [http.get(f"/api/v1/submissions/{s}").json()["status"] for s in slow]
        assert sum(s in ("queued", "running") for s in pending) >= 3, (
            "the numeric answer was graded while the code queue was still busy",
            pending,
        )
        for sid in slow:
            body = poll_graded(http, sid, timeout=120)
            assert body["details"]["status"] == "timeout", body
