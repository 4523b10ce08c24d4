"""Courses, join codes and enrolment, one by one and in bulk."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.service.api.helpers import ok, problem
from tests.service.api.world import World


def test_an_instructor_creates_a_course_and_is_its_instructor(
    api: FlaskClient, world: World
) -> None:
    h = world.headers("other_instructor")
    created = ok(
        api.post("/api/v1/courses", json={"code": "ml-2027", "title": "ML"}, headers=h), 201
    )
    assert created["role"] == "instructor" and created["join_code"] is None
    listed = ok(api.get("/api/v1/courses", headers=h))["items"]
    assert {c["code"] for c in listed} == {"b202", "ml-2027"}
    problem(api.post("/api/v1/courses", json={"code": "ML-2027", "title": "x"}, headers=h), 409)
    problem(api.post("/api/v1/courses", json={"code": "bad code!", "title": "x"}, headers=h), 422)


def test_learners_join_by_code_and_a_rotated_code_stops_working(
    api: FlaskClient, world: World
) -> None:
    outsider = world.headers("outsider")
    joined = api.post(
        "/api/v1/courses/join", json={"join_code": world.join_code.lower()}, headers=outsider
    )
    body = ok(joined, 201)
    assert body["course"]["id"] == world.course and body["course"]["role"] == "learner"
    assert body["course"]["join_code"] is None, "learners do not see the join code"
    again = api.post("/api/v1/courses/join", json={"join_code": world.join_code}, headers=outsider)
    assert ok(again)["created"] is False
    fresh = ok(
        api.post(f"/api/v1/courses/{world.course}/join-code", headers=world.headers("instructor"))
    )
    assert fresh["join_code"] != world.join_code
    problem(
        api.post(
            "/api/v1/courses/join",
            json={"join_code": world.join_code},
            headers=world.headers("other_instructor"),
        ),
        404,
    )
    off = api.patch(
        f"/api/v1/courses/{world.course}",
        json={"join_enabled": False},
        headers=world.headers("instructor"),
    )
    assert ok(off)["join_code"] is None


def test_enrol_change_role_and_keep_an_instructor(api: FlaskClient, world: World) -> None:
    h = world.headers("instructor")
    base = f"/api/v1/courses/{world.course}/enrollments"
    made = ok(
        api.post(base, json={"email": world.outsider_email.upper(), "role": "ta"}, headers=h), 201
    )
    assert made["result"] == "enrolled" and made["enrollment"]["role"] == "ta"
    same = ok(api.post(base, json={"email": world.outsider_email, "role": "ta"}, headers=h), 201)
    assert same["result"] == "unchanged"
    problem(api.post(base, json={"email": "nobody@x.test"}, headers=h), 404)
    problem(api.post(base, json={"email": "a@b.c", "user_id": 3}, headers=h), 422)
    me = world.users["instructor"]
    problem(api.patch(f"{base}/{me}", json={"role": "learner"}, headers=h), 409)
    problem(api.delete(f"{base}/{me}", headers=h), 409)
    roles = {e["email"]: e["role"] for e in ok(api.get(base, headers=h))["items"]}
    assert roles["instructor@world.test"] == "instructor"


def test_bulk_enrolment_from_csv_reports_every_row(api: FlaskClient, world: World) -> None:
    h = {**world.headers("instructor"), "Content-Type": "text/csv"}
    csv = (
        "email,role\n"
        f"{world.outsider_email},learner\n"
        "nobody@nowhere.test,learner\n"
        f"{world.outsider_email},ta\n"
        "learner@world.test,professor\n"
        "learner2@world.test,ta\n"
        "learner@world.test,\n"
    )
    url = f"/api/v1/courses/{world.course}/enrollments/bulk"
    dry = ok(api.post(url + "?dry_run=true", data=csv, headers=h))
    assert dry["dry_run"] is True and dry["counts"]["enrolled"] == 1
    members = ok(
        api.get(f"/api/v1/courses/{world.course}/enrollments", headers=world.headers("instructor"))
    )
    assert world.outsider_email not in {m["email"] for m in members["items"]}, "a dry run wrote"
    report = ok(api.post(url, data=csv, headers=h))
    results = [(r["row"], r["result"]) for r in report["rows"]]
    assert results == [
        (2, "enrolled"),
        (3, "error"),
        (4, "error"),
        (5, "error"),
        (6, "updated"),
        (7, "unchanged"),
    ]
    messages = {r["row"]: r["message"] for r in report["rows"]}
    assert "sign up" in messages[3] and "row 2" in messages[4] and "role" in messages[5]
    assert report["counts"] == {"enrolled": 1, "updated": 1, "unchanged": 1, "error": 3}


def test_bulk_enrolment_from_json(api: FlaskClient, world: World) -> None:
    url = f"/api/v1/courses/{world.course}/enrollments/bulk"
    body = {"rows": [{"email": world.outsider_email}]}
    report = ok(api.post(url, json=body, headers=world.headers("instructor")))
    assert report["rows"][0]["result"] == "enrolled"


def test_malformed_csv_is_refused_and_changes_nothing(api: FlaskClient, world: World) -> None:
    h = {**world.headers("instructor"), "Content-Type": "text/csv"}
    url = f"/api/v1/courses/{world.course}/enrollments/bulk"
    before = ok(
        api.get(f"/api/v1/courses/{world.course}/enrollments", headers=world.headers("instructor"))
    )
    bad = {
        "no header": f"{world.outsider_email},learner\n",
        "extra field": f"email,role\n{world.outsider_email},learner,oops\n",
        "unknown column": "email,shoe\nx@y.z,42\n",
        "quote": f'email,role\n"{world.outsider_email},learner\n',
        "empty": "email,role\n",
        "binary": "email\n\xff\xfe".encode("latin-1"),
        "nul": "email\nx@y.z\x00\n",
    }
    for name, data in bad.items():
        body = problem(api.post(url, data=data, headers=h), 422)
        assert body["errors"], name
    problem(api.post(url, data="email\nx@y.z\n", headers={**h, "Content-Type": "text/plain"}), 415)
    after = ok(
        api.get(f"/api/v1/courses/{world.course}/enrollments", headers=world.headers("instructor"))
    )
    assert after == before
