"""Every exercise of the built-in catalog, so every kind, graded end to end through the API
and a real Celery worker (numeric and code queues) on PostgreSQL and Redis: the worked
example's right answer scores 1, a wrong one scores less, and none fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exercises.catalog import load_builtin_catalog
from exercises.spec import ExerciseSpec
from tests.integration.stack import poll_graded, running_stack

CATALOG = load_builtin_catalog()


def right_answer(spec: ExerciseSpec) -> dict[str, Any]:
    """The worked example's answer (the author's solution for code)."""
    if spec.code is not None:
        return {"code": spec.code.solution, "variant": "worked-example"}
    answers = dict(spec.worked_example or {})
    for part in spec.parts:  # choice questions carry their answer on the part
        if part.name not in answers and part.answer is not None:
            answers[part.name] = part.answer
    return {"answers": answers, "variant": "worked-example"}


def wrong_answer(spec: ExerciseSpec) -> dict[str, Any]:
    """An answer that must not pass: a broken solution, or every part answered 0."""
    if spec.code is not None:
        return {"code": "def broken(*args, **kwargs):\n    return 0\n", "variant": "worked-example"}
    return {"answers": {p.name: "0" for p in spec.parts}, "variant": "worked-example"}


@pytest.mark.integration
def test_every_catalog_exercise_through_api_and_worker(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    env = {
        "DATABASE_URL": pg_url,
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "BROKER_KEY_PREFIX": redis_prefix + "kinds:",
    }
    with running_stack(env, tmp_path / "data") as stack, stack.client() as http:
        sent: list[tuple[str, str, int]] = []
        for spec in CATALOG:
            for label, body in (("right", right_answer(spec)), ("wrong", wrong_answer(spec))):
                resp = http.post(f"/api/v1/exercises/{spec.slug}/submissions", json=body)
                assert resp.status_code == 202, (spec.slug, label, resp.text)
                sent.append((spec.slug, label, resp.json()["id"]))
        kinds = set()
        for slug, label, sid in sent:
            body = poll_graded(http, sid, timeout=180)
            assert body["status"] == "graded", (slug, label, body, stack.log_tail())
            if label == "right":
                assert body["score"] == 1.0, (slug, body)
            else:
                assert body["score"] < 1.0, (slug, body)
            kinds.add(next(s.kind for s in CATALOG if s.slug == slug))
        assert kinds == {s.kind for s in CATALOG}
        assert len(kinds) >= 10
