"""Idempotency-Key on submission POSTs: a retried POST answers the same submission."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.data.session import session_scope
from service.users import create_token, create_user
from tests.integration.faults.harness import SLUG, System, count_status, running_system
from tests.integration.faults.servers import PrivateRedis

ANSWER = {"answers": {"w": 0, "b": 0, "x": 0}}
PATH = f"/api/v1/exercises/{SLUG}/submissions"


def _post(http: httpx.Client, key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post(PATH, json=ANSWER, headers=headers)


def _another_learner(system: System) -> str:
    with session_scope(system.database_url) as db:
        return create_token(db, create_user(db, "other@example.test", "correct-horse"))


@pytest.mark.integration
def test_the_same_post_twice_with_one_key_makes_one_submission(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    with running_system(tmp_path, database_url, private_redis, workers={}, sweeper=False) as system:
        with system.client() as http:
            first, again = _post(http, "retry-1"), _post(http, "retry-1")
            assert first.status_code == 202, first.text
            assert again.status_code == 200, again.text
            assert again.json()["id"] == first.json()["id"]
            assert again.headers["Location"] == first.headers["Location"]

            # Sent at the same moment (a client retrying before the first answer came back).
            barrier = threading.Barrier(8)

            def racing(_: int) -> httpx.Response:
                with system.client() as own:
                    barrier.wait()
                    return _post(own, "race-1")

            with ThreadPoolExecutor(8) as pool:
                raced = list(pool.map(racing, range(8)))
            assert sorted(r.status_code for r in raced) == [200] * 7 + [202]
            assert len({r.json()["id"] for r in raced}) == 1

            # Without a key, two POSTs are two submissions: the test can tell them apart.
            plain = {_post(http, None).json()["id"] for _ in range(2)}
            assert len(plain) == 2

        # Keys belong to a learner: another learner's "retry-1" is their own submission.
        with system.stack.client(_another_learner(system)) as other:
            theirs = _post(other, "retry-1")
            assert theirs.status_code == 202, theirs.text
            assert theirs.json()["id"] != first.json()["id"]

        assert sum(count_status(database_url).values()) == 5
