"""`make run`'s command, `gradschool dev`, as the README's newcomer runs it: embedded defaults
(SQLite, the filesystem broker), a login that works, an answer graded by the real worker, and
Ctrl-C leaving no process behind (the web server's workers included)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from exercises.catalog import load_builtin_catalog
from tests.integration.stack import GRADSCHOOL, ROOT, free_port, wait_http


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.integration
def test_gradschool_dev_serves_grades_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }  # no DATABASE_URL, BROKER_URL or SECRET_KEY: the embedded defaults
    out = tmp_path / "dev.log"
    with out.open("wb") as log:
        dev = subprocess.Popen(
            [*GRADSCHOOL, "dev", "--port", str(port), "--data-dir", str(tmp_path / "var")],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    spawned: set[int] = set()
    try:
        wait_http(base + "/login", deadline=120)
        text = out.read_text()
        assert f"gradschool is running at {base}/" in text, text
        email, password = re.search(r"log in as (\S+) with password (\S+)", text).groups()  # type: ignore[union-attr]
        spawned = _descendants(dev.pid)

        with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as browser:
            page = browser.get("/login")
            csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
            form = {"email": email, "password": password}
            if csrf:
                form["csrf_token"] = csrf.group(1)
            home = browser.post("/login", data=form)
            assert home.status_code == 200 and "/login" not in str(home.url), home.text[:500]

        token = (tmp_path / "var" / "demo-token").read_text().strip()
        with httpx.Client(
            base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            spec = next(s for s in load_builtin_catalog() if s.slug == "sigmoid-neuron")
            answers = dict(spec.worked_example or {})
            sent = api.post(
                "/api/v1/exercises/sigmoid-neuron/submissions",
                json={"answers": answers, "variant": "worked-example"},
            )
            assert sent.status_code == 202, sent.text
            end = time.monotonic() + 120
            while (got := api.get(sent.headers["Location"]).json())["status"] != "graded":
                assert time.monotonic() < end, (got, out.read_text()[-3000:])
                time.sleep(0.3)
            assert got["score"] == 1.0, got  # the worked example's exact values
    finally:
        spawned |= _descendants(dev.pid)
        os.killpg(dev.pid, signal.SIGINT)  # Ctrl-C in the terminal: the foreground group
        code = dev.wait(timeout=60)
    assert code == 0, out.read_text()[-3000:]
    assert len(spawned) >= 4, spawned  # web main + its 2 workers + the grading worker
    end = time.monotonic() + 10
    while (left := {p for p in spawned if psutil.pid_exists(p)}) and time.monotonic() < end:
        left = {p for p in left if psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        if not left:
            break
        time.sleep(0.2)
    assert not left, [psutil.Process(p).cmdline() for p in left]
    with pytest.raises(httpx.HTTPError):
        httpx.get(base + "/login", timeout=2)
