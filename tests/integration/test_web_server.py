"""`gradschool web` as deployed: granian running the app in two processes on PostgreSQL.
Its access lines are JSON with the request id, a worker process that dies is replaced while
the other keeps serving, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.stack import Stack, json_lines, start_web_only, wait_http


def _workers(stack: Stack) -> set[int]:
    """PIDs of the server's worker processes (children of the granian main process)."""
    return {p.pid for p in psutil.Process(stack.procs["web"].pid).children()}


@pytest.mark.integration
def test_the_web_server_logs_survives_a_dead_worker_and_stops_cleanly(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    stack = start_web_only(tmp_path, pg_url, redis_prefix + "web-server:", {"LOG_FORMAT": "json"})
    try:
        wait_http(stack.base_url + "/login", deadline=60)
        with stack.client() as http:
            me = http.get("/api/v1/me", headers={"X-Request-ID": "web-server-1"})
            assert me.status_code == 200, stack.log_tail()
            bad = http.post("/api/v1/exercises/sigmoid-neuron/submissions", content=b"{bad")
            assert bad.status_code == 400, bad.text
            assert bad.headers["content-type"] == "application/problem+json"

        end = time.monotonic() + 30
        while len(_workers(stack)) < 2 and time.monotonic() < end:
            time.sleep(0.2)
        before = _workers(stack)
        assert len(before) == 2, stack.log_tail()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        # The other process answers meanwhile, and a new one takes the dead one's place.
        with stack.client() as http:
            for _ in range(20):
                assert http.get("/api/v1/me").status_code == 200, stack.log_tail()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            after = _workers(stack)
            if len(after) == 2 and victim not in after:
                break
            time.sleep(0.3)
        assert len(after) == 2 and victim not in after, stack.log_tail()
        with stack.client() as http:
            assert all(http.get("/api/v1/me").status_code == 200 for _ in range(20))

        stack.procs["web"].send_signal(signal.SIGTERM)
        assert stack.procs["web"].wait(timeout=40) == 0, stack.log_tail()
    finally:
        stack.stop("web")

    lines = json_lines(stack.logs["web"].read_text())
    mine = [r for r in lines if r.get("request_id") == "web-server-1"]
    assert [(r["logger"], r["method"], r["path"], r["status"]) for r in mine] == [
        ("gradschool.access", "GET", "/api/v1/me", 200)
    ], stack.log_tail()
    assert isinstance(mine[0]["duration_ms"], float) and mine[0]["bytes"] > 0
    assert any(r.get("path", "").endswith("/submissions") and r["status"] == 400 for r in lines)
    # The server's own records are JSON lines too, and it saw the worker die.
    server = [r for r in lines if str(r.get("logger", "")).startswith("_granian")]
    assert any("Listening at" in str(r["message"]) for r in server), stack.log_tail()
    assert any("espawn" in str(r["message"]) for r in server), stack.log_tail()
