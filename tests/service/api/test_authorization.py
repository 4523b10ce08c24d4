"""The authorization matrix: every operation of the OpenAPI document against every role.

Only the roles listed for an operation may succeed (2xx); every other role gets 401
(anonymous), 403 or 404, as problem+json. An operation missing from the table fails
the test, so a new endpoint cannot ship without its row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.service.api.world import NEURON, ROLES, World, authored_spec

ANY_USER = frozenset({"learner", "ta", "other_instructor", "instructor", "admin"})
MEMBERS = frozenset({"learner", "ta", "instructor", "admin"})
STAFF = frozenset({"ta", "instructor", "admin"})
INSTRUCTORS = frozenset({"instructor", "admin"})
SITE_INSTRUCTORS = frozenset({"other_instructor", "instructor", "admin"})
EVERYONE = frozenset(ROLES)

Request = Callable[[World, str], tuple[str, str, dict[str, Any]]]


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def get(path: str) -> Request:
    return lambda w, role: ("GET", path.format(w=w), {})


def call(method: str, path: str, **kwargs: Any) -> Request:
    return lambda w, role: (method, path.format(w=w), kwargs)


def _assignment_submit(w: World, role: str) -> tuple[str, str, dict[str, Any]]:
    body: dict[str, Any] = {"exercise": NEURON, "answers": {"w": 1, "b": 1, "x": 1}}
    if role != "learner":
        body["learner_id"] = w.users["learner"]
    return "POST", f"/api/v1/assignments/{w.assignment}/submissions", {"json": body}


def _token_revoke(w: World, role: str) -> tuple[str, str, dict[str, Any]]:
    token = w.token_ids.get(role, 1)
    return "DELETE", f"/api/v1/tokens/{token}", {}


def _yaml(slug: str, **changes: Any) -> dict[str, Any]:
    return {"json": authored_spec(slug, **changes)}


C = "/api/v1/courses/{w.course}"
A = "/api/v1/assignments/{w.assignment}"

MATRIX: dict[str, tuple[Request, frozenset[str]]] = {
    "openapi_json": (get("/api/v1/openapi.json"), EVERYONE),
    "me": (get("/api/v1/me"), ANY_USER),
    "token_list": (get("/api/v1/tokens"), ANY_USER),
    "token_create": (call("POST", "/api/v1/tokens", json={"name": "script"}), ANY_USER),
    "token_revoke": (_token_revoke, ANY_USER),
    "exercise_list": (get("/api/v1/exercises"), ANY_USER),
    "exercise_detail": (get("/api/v1/exercises/{w.exercise}"), MEMBERS),
    "create_submission": (
        call("POST", "/api/v1/exercises/{w.exercise}/submissions", json={"answers": {"w": 1}}),
        MEMBERS,
    ),
    "course_list": (get("/api/v1/courses"), ANY_USER),
    "course_create": (
        call("POST", "/api/v1/courses", json={"code": "new-1", "title": "New"}),
        SITE_INSTRUCTORS,
    ),
    "course_detail": (get(C), MEMBERS),
    "course_update": (call("PATCH", C, json={"title": "Renamed"}), INSTRUCTORS),
    "join_code_rotate": (call("POST", C + "/join-code"), INSTRUCTORS),
    "course_join": (
        lambda w, role: ("POST", "/api/v1/courses/join", {"json": {"join_code": w.join_code}}),
        ANY_USER,
    ),
    "enrollment_list": (get(C + "/enrollments"), STAFF),
    "enrollment_create": (
        lambda w, role: (
            "POST",
            f"/api/v1/courses/{w.course}/enrollments",
            {"json": {"email": w.outsider_email}},
        ),
        INSTRUCTORS,
    ),
    "enrollment_bulk": (
        lambda w, role: (
            "POST",
            f"/api/v1/courses/{w.course}/enrollments/bulk",
            {"data": f"email,role\n{w.outsider_email},ta\n", "content_type": "text/csv"},
        ),
        INSTRUCTORS,
    ),
    "enrollment_update": (
        lambda w, role: (
            "PATCH",
            f"/api/v1/courses/{w.course}/enrollments/{w.users['learner2']}",
            {"json": {"role": "ta"}},
        ),
        INSTRUCTORS,
    ),
    "enrollment_delete": (
        lambda w, role: (
            "DELETE",
            f"/api/v1/courses/{w.course}/enrollments/{w.users['learner2']}",
            {},
        ),
        INSTRUCTORS,
    ),
    "assignment_list": (get(C + "/assignments"), MEMBERS),
    "assignment_create": (
        call(
            "POST",
            C + "/assignments",
            json={"title": "Quiz", "exercises": [{"slug": NEURON}], "feedback": "never"},
        ),
        INSTRUCTORS,
    ),
    "assignment_detail": (get(A), MEMBERS),
    "assignment_update": (call("PATCH", A, json={"max_attempts": 5}), INSTRUCTORS),
    "assignment_delete": (call("DELETE", "/api/v1/assignments/{w.empty_assignment}"), INSTRUCTORS),
    "extension_list": (get(A + "/extensions"), STAFF),
    "extension_put": (
        lambda w, role: (
            "PUT",
            f"/api/v1/assignments/{w.assignment}/extensions/{w.users['learner']}",
            {"json": {"due_at": later(10), "extra_attempts": 2}},
        ),
        STAFF,
    ),
    "extension_delete": (
        lambda w, role: (
            "DELETE",
            f"/api/v1/assignments/{w.assignment}/extensions/{w.users['learner2']}",
            {},
        ),
        STAFF,
    ),
    "assignment_submit": (_assignment_submit, MEMBERS),
    "submission_list": (get("/api/v1/submissions?course={w.course}"), MEMBERS),
    "submission_detail": (get("/api/v1/submissions/{w.submission}"), MEMBERS),
    "submission_verdicts": (get("/api/v1/submissions/{w.submission}/verdicts"), STAFF),
    "course_exercise_list": (get(C + "/exercises"), STAFF),
    "course_exercise_detail": (get(C + "/exercises/{w.exercise}"), STAFF),
    "exercise_dry_run": (
        lambda w, role: (
            "POST",
            f"/api/v1/courses/{w.course}/exercises/dry-run",
            _yaml("dry-one", difficulty=3),
        ),
        INSTRUCTORS,
    ),
    "exercise_dry_run_detail": (get(C + "/exercise-dry-runs/{w.dry_run}"), INSTRUCTORS),
    "course_exercise_create": (
        lambda w, role: ("POST", f"/api/v1/courses/{w.course}/exercises", _yaml("brand-new")),
        INSTRUCTORS,
    ),
    "course_exercise_update": (
        lambda w, role: (
            "PUT",
            f"/api/v1/courses/{w.course}/exercises/{w.exercise}",
            _yaml(w.exercise, difficulty=4),
        ),
        INSTRUCTORS,
    ),
    "regrade_create": (
        call("POST", C + "/regrade-jobs", json={"assignment_id": 1}),
        INSTRUCTORS,
    ),
    "regrade_list": (get(C + "/regrade-jobs"), STAFF),
    "regrade_detail": (get(C + "/regrade-jobs/{w.regrade_job}"), STAFF),
    "assignment_gradebook": (get(A + "/gradebook"), STAFF),
    "assignment_gradebook_csv": (get(A + "/gradebook.csv"), STAFF),
    "course_gradebook": (get(C + "/gradebook"), STAFF),
    "course_gradebook_csv": (get(C + "/gradebook.csv"), STAFF),
    "course_analytics_view": (get(C + "/analytics"), STAFF),
}


def operation_ids(client: FlaskClient) -> set[str]:
    doc = client.get("/api/v1/openapi.json").get_json()
    return {op["operationId"] for methods in doc["paths"].values() for op in methods.values()}


def test_every_operation_has_a_row(api: FlaskClient) -> None:
    ids = operation_ids(api)
    assert ids - set(MATRIX) == set(), "operations without a row in the matrix"
    assert set(MATRIX) - ids == set(), "rows for operations that do not exist"


def _send(client: FlaskClient, world: World, role: str, request: Request) -> Any:
    method, path, kwargs = request(world, role)
    return client.open(path, method=method, headers=world.headers(role), **kwargs)


@pytest.mark.parametrize("op_id", sorted(MATRIX))
def test_only_allowed_roles_succeed(op_id: str, fresh_api: Any) -> None:
    request, allowed = MATRIX[op_id]
    shared: tuple[World, FlaskClient] | None = None
    outcomes: dict[str, int] = {}
    for role in ROLES:
        # Reads share one world; each write gets a world of its own.
        world, client = shared or fresh_api(role)
        method, _, _ = request(world, role)
        if method == "GET":
            shared = (world, client)
        resp = _send(client, world, role, request)
        outcomes[role] = resp.status_code
        if role in allowed:
            assert 200 <= resp.status_code < 300, (role, resp.status_code, resp.get_data(True))
        else:
            want = {401} if role == "anonymous" else {403, 404}
            assert resp.status_code in want, (role, resp.status_code, resp.get_data(True))
            assert resp.mimetype == "application/problem+json"
            assert resp.get_json()["detail"]
    assert {r for r, s in outcomes.items() if s < 300} == set(allowed)
