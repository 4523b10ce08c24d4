"""Conventions: tokens, Idempotency-Key, rate limits, size limits, bad input, pagination, docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from service.security import only_decorated_limits
from tests.service.api.conftest import app_for
from tests.service.api.helpers import ok, problem
from tests.service.api.world import NEURON, World


def test_tokens_are_shown_once_named_expiring_and_revocable(api: FlaskClient, world: World) -> None:
    h = world.headers("ta")
    made = ok(
        api.post("/api/v1/tokens", json={"name": "notebook", "expires_in_days": 7}, headers=h), 201
    )
    secret = made["token"]
    assert secret.startswith("gs_") and made["name"] == "notebook" and made["expires_at"]
    listed = ok(api.get("/api/v1/tokens", headers=h))["items"]
    assert all("token" not in t for t in listed)
    assert [t["current"] for t in listed if t["id"] == made["id"]] == [False]
    new = {"Authorization": f"Bearer {secret}"}
    assert ok(api.get("/api/v1/me", headers=new))["email"] == "ta@world.test"
    assert api.delete(f"/api/v1/tokens/{made['id']}", headers=h).status_code == 204
    problem(api.get("/api/v1/me", headers=new), 401)
    problem(api.delete(f"/api/v1/tokens/{made['id']}", headers=h), 404)
    others = world.token_ids["learner"]
    problem(api.delete(f"/api/v1/tokens/{others}", headers=h), 404)
    problem(api.post("/api/v1/tokens", json={"name": "x", "expires_in_days": 0}, headers=h), 422)


def test_idempotency_key_replays_creates(api: FlaskClient, world: World) -> None:
    h = {**world.headers("instructor"), "Idempotency-Key": "course-42"}
    body = {"code": "idem-1", "title": "Once"}
    first = api.post("/api/v1/courses", json=body, headers=h)
    second = api.post("/api/v1/courses", json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"]
    codes = [
        c["code"]
        for c in ok(api.get("/api/v1/courses", headers=world.headers("instructor")))["items"]
    ]
    assert codes.count("idem-1") == 1
    other = api.post("/api/v1/courses", json={"code": "idem-2", "title": "x"}, headers=h)
    assert "different request" in problem(other, 422)["detail"]
    # A request that failed releases its key: the retry runs.
    h2 = {**world.headers("instructor"), "Idempotency-Key": "k2"}
    problem(api.post("/api/v1/courses", json={"code": "bad code", "title": "x"}, headers=h2), 422)
    ok(api.post("/api/v1/courses", json={"code": "good-code", "title": "x"}, headers=h2), 201)
    problem(api.post("/api/v1/courses", json=body, headers={**h, "Idempotency-Key": ""}), 422)


def test_assignment_submission_retries_are_one_submission(api: FlaskClient, world: World) -> None:
    h = {**world.headers("learner"), "Idempotency-Key": "attempt-1"}
    body = {"exercise": NEURON, "answers": {"w": 1, "b": 1, "x": 1}}
    url = f"/api/v1/assignments/{world.assignment}/submissions"
    a, b = api.post(url, json=body, headers=h), api.post(url, json=body, headers=h)
    assert a.status_code == b.status_code == 202 and a.get_json()["id"] == b.get_json()["id"]


def test_rate_limit_answers_429_with_retry_after(world: World, tmp_path: Path) -> None:
    client = app_for(world, tmp_path, API_RATE_LIMIT="3 per minute").test_client()
    h = world.headers("learner")
    for _ in range(3):
        ok(client.get("/api/v1/me", headers=h))
    limited = client.get("/api/v1/me", headers=h)
    problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    ok(client.get("/api/v1/me", headers=world.headers("ta")))  # per token


def test_expensive_calls_have_a_tighter_limit(world: World, tmp_path: Path) -> None:
    client = app_for(world, tmp_path, API_HEAVY_RATE_LIMIT="1 per minute").test_client()
    url = f"/api/v1/courses/{world.course}/regrade-jobs"
    h = world.headers("instructor")
    ok(client.post(url, json={"submission_id": world.submission}, headers=h), 202)
    limited = client.post(url, json={"submission_id": world.submission}, headers=h)
    problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60  # from the decorator's own check
    ok(client.get("/api/v1/me", headers=h))


def test_flask_limiter_checks_only_inside_decorated_views(world: World, tmp_path: Path) -> None:
    from service.security import limiter

    # Our limits are all decorators, which check themselves: no per-request hooks.
    assert limiter._check_request_limit not in app_for(world, tmp_path).before_request_funcs[None]


@pytest.mark.parametrize("default", [None, "2 per minute"])
def test_per_request_hooks_go_only_when_nothing_needs_them(default: str | None) -> None:
    app = Flask(__name__)
    limits = [default] if default else []
    extension = Limiter(get_remote_address, default_limits=limits, storage_uri="memory://")
    extension.init_app(app)

    @app.get("/free")
    def free() -> str:
        return "ok"

    @app.get("/tight")
    @extension.limit("1 per minute")
    def tight() -> str:
        return "ok"

    only_decorated_limits(app, extension)
    hooked = extension._check_request_limit in app.before_request_funcs[None]
    assert hooked is (default is not None)
    client = app.test_client()
    assert [client.get("/tight").status_code for _ in range(2)] == [200, 429]
    free_codes = [client.get("/free").status_code for _ in range(3)]
    assert free_codes == ([200, 200, 429] if default else [200, 200, 200])


def test_huge_bodies_are_413(api: FlaskClient, world: World) -> None:
    huge = {"code": "x" * 300_000, "title": "x"}
    problem(api.post("/api/v1/courses", json=huge, headers=world.headers("instructor")), 413)
    csv = "email\n" + "a@b.c\n" * 60_000
    url = f"/api/v1/courses/{world.course}/enrollments/bulk"
    headers = {**world.headers("instructor"), "Content-Type": "text/csv"}
    problem(api.post(url, data=csv, headers=headers), 413)


def test_bad_input_names_the_problem_and_changes_nothing(api: FlaskClient, world: World) -> None:
    h = world.headers("instructor")
    before = ok(api.get("/api/v1/courses", headers=h))
    cases = [
        ({"code": 12, "title": "x"}, 422, "code"),
        ({"code": "ok", "title": "x", "extra": 1}, 422, "extra"),
        ({"title": "x"}, 422, "code"),
        ([1, 2], 422, "body"),
    ]
    for body, status, field in cases:
        got = problem(api.post("/api/v1/courses", json=body, headers=h), status)
        assert field in {e["field"] for e in got["errors"]}, got
    problem(
        api.post(
            "/api/v1/courses", data="{nope", headers={**h, "Content-Type": "application/json"}
        ),
        400,
    )
    problem(api.post("/api/v1/courses", data="code=x", headers=h), 400)
    deep = "[" * 5000 + "]" * 5000
    problem(
        api.post("/api/v1/courses", data=deep, headers={**h, "Content-Type": "application/json"}),
        400,
    )
    nan = '{"code": "x", "title": NaN}'
    problem(
        api.post("/api/v1/courses", data=nan, headers={**h, "Content-Type": "application/json"}),
        400,
    )
    problem(api.get("/api/v1/submissions?limit=0", headers=h), 422)
    problem(api.get("/api/v1/submissions?since=yesterday", headers=h), 422)
    problem(api.get("/api/v1/submissions?colour=red", headers=h), 422)
    problem(api.get("/api/v1/submissions?cursor=!!!", headers=h), 422)
    assert ok(api.get("/api/v1/courses", headers=h)) == before


def test_submission_list_filters_and_pages(api: FlaskClient, world: World) -> None:
    url = f"/api/v1/assignments/{world.assignment}/submissions"
    for _ in range(4):
        body = {"exercise": NEURON, "answers": {"w": 1, "b": 1, "x": 1}}
        ok(api.post(url, json=body, headers=world.headers("learner2")), 202)
    h = world.headers("ta")
    seen: list[int] = []
    cursor = ""
    while True:
        page = ok(api.get(f"/api/v1/submissions?course={world.course}&limit=2{cursor}", headers=h))
        seen += [s["id"] for s in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(seen, reverse=True) and len(seen) == 5
    mine = ok(
        api.get(
            f"/api/v1/submissions?learner={world.users['learner2']}&course={world.course}",
            headers=h,
        )
    )
    assert len(mine["items"]) == 4
    graded = ok(api.get(f"/api/v1/submissions?course={world.course}&status=queued", headers=h))
    assert graded["items"] == []
    own = ok(api.get("/api/v1/submissions", headers=world.headers("learner")))["items"]
    assert [s["learner_id"] for s in own] == [world.users["learner"]]
    problem(
        api.get(
            f"/api/v1/submissions?learner={world.users['learner2']}",
            headers=world.headers("learner"),
        ),
        403,
    )
    problem(api.get(f"/api/v1/submissions?course={world.other_course}", headers=h), 404)


def test_openapi_document_and_docs_page_are_local(api: FlaskClient) -> None:
    doc = ok(api.get("/api/v1/openapi.json"))
    assert doc["openapi"].startswith("3.") and doc["components"]["securitySchemes"]
    page = api.get("/api/v1/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in html
    assert "http" not in html, "assets come from this server, never a CDN"
    asset = api.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.mimetype == "text/javascript"
    asset.close()
    assert "/api/v1/openapi.json" in api.get("/api/v1/docs/init.js").get_data(as_text=True)
    problem(api.get("/api/v1/docs/assets/../../secret"), 404)
