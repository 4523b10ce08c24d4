"""The hot path's caches (service/hotcache.py): what they keep, and when they let go."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from flask.testing import FlaskClient

from service import hotcache
from service.api.submissions import SubmissionOut
from service.coursework import submission_view_for
from service.data.models import ApiToken, Submission, SubmissionStatus, User
from service.data.session import get_engine, session_scope
from service.hotcache import TtlCache
from tests.service.api.conftest import app_for
from tests.service.api.helpers import neuron_grads, ok, problem
from tests.service.api.test_assignments import at, make
from tests.service.api.world import NEURON, World

PRACTICE = {"answers": {"w": 1, "b": 1, "x": 1}}
URL = f"/api/v1/exercises/{NEURON}/submissions"


def _revoke_behind_the_apps_back(world: World, role: str) -> None:
    """Revoke a token as another process would: a plain UPDATE, no event in this one."""
    engine = sa.create_engine(f"sqlite:///{world.database}")
    with engine.begin() as conn:
        conn.execute(
            sa.update(ApiToken.__table__)
            .where(ApiToken.__table__.c.name == "world")
            .where(ApiToken.__table__.c.user_id == world.users[role])
            .values(revoked_at=sa.func.current_timestamp())
        )
    engine.dispose()


def _api(world: World, tmp_path: Path, cache_seconds: float) -> FlaskClient:
    app = app_for(world, tmp_path)
    app.config["GRADSCHOOL"] = replace(app.config["GRADSCHOOL"], hot_cache_seconds=cache_seconds)
    return app.test_client()


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_time(
    world: World, tmp_path: Path
) -> None:
    api = _api(world, tmp_path, 0.5)
    h = world.headers("learner")
    ok(api.get("/api/v1/me", headers=h))
    _revoke_behind_the_apps_back(world, "learner")
    # Still cached: another process's change is not seen at once (that is the trade-off) ...
    ok(api.get("/api/v1/me", headers=h))
    time.sleep(0.6)
    # ... but within HOT_CACHE_SECONDS it is.
    problem(api.get("/api/v1/me", headers=h), 401)


def test_without_the_cache_a_revocation_elsewhere_is_seen_at_once(
    world: World, tmp_path: Path
) -> None:
    api = _api(world, tmp_path, 0)
    h = world.headers("learner")
    ok(api.get("/api/v1/me", headers=h))
    _revoke_behind_the_apps_back(world, "learner")
    problem(api.get("/api/v1/me", headers=h), 401)


def test_a_revocation_through_this_process_is_seen_at_once(world: World, tmp_path: Path) -> None:
    api = _api(world, tmp_path, 3600)
    h = world.headers("learner")
    mine = ok(api.get("/api/v1/tokens", headers=h))["items"]
    ok(api.get("/api/v1/me", headers=h))
    for token in mine:
        api.delete(f"/api/v1/tokens/{token['id']}", headers=h)
    problem(api.get("/api/v1/me", headers=h), 401)


def test_a_new_exam_closes_practice_at_once_despite_the_cache(world: World, tmp_path: Path) -> None:
    api = _api(world, tmp_path, 3600)
    h = world.headers("learner")
    ok(api.post(URL, json=PRACTICE, headers=h), 202)
    ok(api.post(URL, json=PRACTICE, headers=h), 202)  # from the cache
    exam = make(api, world, feedback="after_due", due_at=at(1))
    body = problem(api.post(URL, json=PRACTICE, headers=h), 409)
    assert f"assignment {exam['id']}" in body["detail"]


def test_practice_answers_are_numbered_and_graded_from_the_cache(
    world: World, tmp_path: Path
) -> None:
    api = _api(world, tmp_path, 3600)
    h = world.headers("learner")
    attempts = [ok(api.post(URL, json=PRACTICE, headers=h), 202)["attempt"] for _ in range(3)]
    assert attempts[1:] == [attempts[0] + 1, attempts[0] + 2]
    last = ok(api.post(URL, json=PRACTICE, headers=h), 202)
    graded = ok(api.get(f"/api/v1/submissions/{last['id']}", headers=h))
    assert graded["status"] == "graded" and graded["exercise"] == NEURON
    assert graded["correct"] is False and graded["exercise_version"] >= 1


def test_the_cache_forgets_the_oldest_entries_past_its_size() -> None:
    cache: TtlCache[int, str] = TtlCache(size=2)
    gen = hotcache.generation()
    for key in (1, 2, 3):
        cache.put(key, str(key), gen)
    assert cache.get(1, 60) is None and cache.get(3, 60) == "3"
    hotcache.bump()
    assert cache.get(3, 60) is None


def test_session_scope_changes_bump_the_generation(world: World) -> None:
    hotcache.install()
    before = hotcache.generation()
    with session_scope(f"sqlite:///{world.database}") as db:
        db.execute(sa.update(ApiToken).where(ApiToken.id == -1).values(name="x"))
    assert hotcache.generation() == before + 1
    with session_scope(f"sqlite:///{world.database}") as db:
        db.execute(
            sa.update(ApiToken)
            .where(ApiToken.id == -1)
            .values(name="x")
            .execution_options(**{hotcache.NEUTRAL: True})
        )
    assert hotcache.generation() == before + 1


def _general_view(world: World, submission_id: int, role: str) -> dict[str, object]:
    """What the ORM path (visible_submission + submission_view_for) answers for a viewer."""
    with session_scope(f"sqlite:///{world.database}") as db:
        submission = db.get(Submission, submission_id)
        viewer = db.get(User, world.users[role])
        assert submission is not None and viewer is not None
        view = submission_view_for(db, submission, viewer)
        return SubmissionOut.model_validate(view).model_dump(mode="json")


def _set(world: World, submission_id: int, **values: object) -> None:
    with session_scope(f"sqlite:///{world.database}") as db:
        db.execute(sa.update(Submission).where(Submission.id == submission_id).values(**values))


def test_the_status_poll_answers_what_the_general_path_does(world: World, tmp_path: Path) -> None:
    api = _api(world, tmp_path, 3600)
    h = world.headers("learner")
    right = {"answers": neuron_grads({"x": 2.0, "w": 3.0, "b": 1.0}), "variant": "worked-example"}
    wrong = ok(api.post(URL, json=PRACTICE, headers=h), 202)
    good = ok(api.post(URL, json=right, headers=h), 202)
    queued = ok(api.post(URL, json=PRACTICE, headers=h), 202)
    _set(
        world,
        queued["id"],
        status=SubmissionStatus.QUEUED,
        verdict=None,
        score=None,
        graded_at=None,
    )
    failed = ok(api.post(URL, json=PRACTICE, headers=h), 202)
    _set(
        world, failed["id"], status=SubmissionStatus.FAILED, verdict=None, score=None, error="boom"
    )
    for sub in (wrong, good, queued, failed):
        polled = ok(api.get(f"/api/v1/submissions/{sub['id']}", headers=h))
        assert polled == _general_view(world, sub["id"], "learner")
    # The cases it covers differ: a wrong answer diagnosed, a right one, queued, failed.
    states = [ok(api.get(f"/api/v1/submissions/{s['id']}", headers=h)) for s in (wrong, good)]
    assert states[0]["correct"] is False and states[1]["correct"] is True
    assert any(p["diagnosis"] for p in states[0]["parts"].values())


def test_others_submissions_take_the_general_path(world: World, tmp_path: Path) -> None:
    api = _api(world, tmp_path, 3600)
    mine = ok(api.post(URL, json=PRACTICE, headers=world.headers("learner")), 202)
    url = f"/api/v1/submissions/{mine['id']}"
    problem(api.get(url, headers=world.headers("instructor")), 404)  # practice: not staff's
    assert ok(api.get(url, headers=world.headers("admin"))) == _general_view(
        world, mine["id"], "admin"
    )
    problem(api.get("/api/v1/submissions/999999", headers=world.headers("learner")), 404)


def test_the_status_poll_is_one_statement(world: World, tmp_path: Path) -> None:
    api = _api(world, tmp_path, 3600)
    h = world.headers("learner")
    sub = ok(api.post(URL, json=PRACTICE, headers=h), 202)
    url = f"/api/v1/submissions/{sub['id']}"
    ok(api.get(url, headers=h))  # the exercise's names into the cache
    statements: list[str] = []
    engine = get_engine(f"sqlite:///{world.database}")

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        ok(api.get(url, headers=h))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # One SELECT of the submission's own columns: no join to the versions (their specs are large).
    assert len(statements) == 1 and "FROM submissions" in statements[0], statements
    assert "exercise_versions" not in statements[0] and "answer" not in statements[0]
