"""The instructor API end to end, with real processes: granian, a Celery worker, PostgreSQL
and Redis. An instructor authors an exercise (dry run in the worker), builds a course and
an exam-style assignment; a learner joins by code and answers; the gradebook shows the
grades that the learner cannot see yet; a regrade job runs in the worker and keeps history.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exercises.catalog import CATALOG_DIR
from service.data.session import session_scope
from service.users import create_token, create_user
from tests.integration.stack import Stack, running_stack
from tests.integration.test_end_to_end import oracle

NEURON = "sigmoid-neuron"


def instructor_token(stack: Stack) -> str:
    with session_scope(stack.env["DATABASE_URL"]) as db:
        user = create_user(
            db, f"prof-{time.monotonic_ns()}@example.test", "correct-horse", "instructor"
        )
        return create_token(db, user, name="integration")


def until(fetch: Any, done: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Poll `fetch()` until `done(body)`."""
    end = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = fetch()
        if done(body) or time.monotonic() > end:
            return body
        time.sleep(0.2)


def expect(resp: httpx.Response, status: int, stack: Stack) -> dict[str, Any]:
    assert resp.status_code == status, f"{resp.status_code} {resp.text}\n{stack.log_tail()}"
    body: dict[str, Any] = resp.json()
    return body


def _scenario(stack: Stack) -> None:
    with stack.client(instructor_token(stack)) as prof, stack.client() as learner:
        _steps(stack, prof, learner)


def _steps(stack: Stack, prof: httpx.Client, learner: httpx.Client) -> None:
    course = expect(prof.post("/api/v1/courses", json={"code": "e2e", "title": "E2E"}), 201, stack)
    cid = course["id"]
    code = expect(prof.post(f"/api/v1/courses/{cid}/join-code"), 200, stack)["join_code"]
    expect(learner.post("/api/v1/courses/join", json={"join_code": code}), 201, stack)

    # Authoring: the dry run happens in the worker.
    spec = yaml.safe_load((CATALOG_DIR / f"{NEURON}.yaml").read_text())
    spec.update(slug="e2e-neuron", title="E2E neuron")
    text = yaml.safe_dump(spec)
    yaml_headers = {"Content-Type": "application/yaml"}
    run = prof.post(f"/api/v1/courses/{cid}/exercises/dry-run", content=text, headers=yaml_headers)
    assert run.status_code in (200, 202), run.text
    run_url = run.headers["Location"]
    done = until(lambda: prof.get(run_url).json(), lambda b: b["status"] in ("done", "failed"))
    assert done["status"] == "done", f"{done}\n{stack.log_tail()}"
    assert abs(done["result"]["reference"]["values"]["w"] - -3.31703e-06) < 1e-9
    made = prof.post(f"/api/v1/courses/{cid}/exercises", content=text, headers=yaml_headers)
    assert expect(made, 201, stack)["outcome"] == "created"

    due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assignment = expect(
        prof.post(
            f"/api/v1/courses/{cid}/assignments",
            json={
                "title": "Exam",
                "exercises": [{"slug": NEURON}, {"slug": "e2e-neuron"}],
                "due_at": due,
                "feedback": "after_due",
                "max_attempts": 3,
            },
        ),
        201,
        stack,
    )
    aid = assignment["id"]
    params = expect(learner.get(f"/api/v1/exercises/{NEURON}"), 200, stack)["variant"]["params"]
    ids = []
    for answers in ({"w": 0, "b": 0, "x": 0}, oracle(params)):
        sub = learner.post(
            f"/api/v1/assignments/{aid}/submissions", json={"exercise": NEURON, "answers": answers}
        )
        ids.append(expect(sub, 202, stack)["id"])
    graded = [
        until(
            lambda i=i: prof.get(f"/api/v1/submissions/{i}").json(),
            lambda b: b["status"] == "graded",
        )
        for i in ids
    ]
    assert [g["score"] for g in graded] == [0.0, 1.0], stack.log_tail()
    hidden = expect(learner.get(f"/api/v1/submissions/{ids[1]}"), 200, stack)
    assert hidden["feedback"] == "hidden" and hidden["score"] is None and hidden["parts"] == {}

    book = expect(prof.get(f"/api/v1/assignments/{aid}/gradebook"), 200, stack)
    (row,) = book["rows"]
    assert row["exercises"][NEURON]["score"] == 1.0 and row["exercises"][NEURON]["attempts"] == 2
    assert row["score"] == 0.5
    table = list(csv.DictReader(io.StringIO(prof.get(f"/api/v1/courses/{cid}/gradebook.csv").text)))
    assert table[0][f"{aid}: Exam"] == "0.5000"

    job = expect(
        prof.post(f"/api/v1/courses/{cid}/regrade-jobs", json={"assignment_id": aid}), 202, stack
    )
    finished = until(
        lambda: prof.get(f"/api/v1/courses/{cid}/regrade-jobs/{job['id']}").json(),
        lambda b: b["status"] == "done",
    )
    assert finished["status"] == "done", f"{finished}\n{stack.log_tail()}"
    assert (finished["total"], finished["done"], finished["failed"]) == (2, 2, 0)
    for sid, score in zip(ids, (0.0, 1.0), strict=True):
        history = expect(prof.get(f"/api/v1/submissions/{sid}/verdicts"), 200, stack)["items"]
        assert [(h["number"], h["score"]) for h in history] == [(1, score), (2, score)]
        assert history[1]["regrade_job_id"] == job["id"] and history[1]["current"]


@pytest.mark.integration
def test_instructor_api_with_postgresql_redis_and_a_real_worker(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    env = {
        "DATABASE_URL": pg_url,
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "BROKER_KEY_PREFIX": redis_prefix,
    }
    with running_stack(env, tmp_path / "data") as stack:
        _scenario(stack)
