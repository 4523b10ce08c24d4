"""Regrades keep history; gradebooks and analytics read the graded work (workers inline)."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update

from service.data.models import Submission, Variant
from service.data.session import session_scope
from tests.service.api.helpers import neuron_grads, ok, problem
from tests.service.api.world import NEURON, World


def submit(api: FlaskClient, world: World, role: str, answers: dict[str, Any]) -> dict[str, Any]:
    body = {"exercise": NEURON, "answers": answers}
    url = f"/api/v1/assignments/{world.assignment}/submissions"
    return ok(api.post(url, json=body, headers=world.headers(role)), 202)  # type: ignore[no-any-return]


def params(api: FlaskClient, world: World, role: str) -> dict[str, float]:
    got = ok(api.get(f"/api/v1/exercises/{NEURON}", headers=world.headers(role)))
    return got["variant"]["params"]  # type: ignore[no-any-return]


def test_regrade_fixes_a_wrong_reference_and_keeps_the_old_verdict(
    api: FlaskClient, world: World
) -> None:
    right = neuron_grads(params(api, world, "learner2"))
    sub = submit(api, world, "learner2", right)
    sub2 = submit(api, world, "learner2", right)
    # A grader bug marked the second one wrong (and stored a wrong reference).
    wrong = {"score": 0.0, "parts": [{"part": "w", "correct": False, "message": "bug"}]}
    with session_scope(f"sqlite:///{world.database}") as db:
        db.execute(
            update(Submission).where(Submission.id == sub2["id"]).values(score=0.0, verdict=wrong)
        )
        db.execute(
            update(Variant)
            .where(Variant.user_id == world.users["learner2"])
            .values(reference={"values": {"w": 1.0, "b": 1.0, "x": 1.0}, "candidates": {}})
        )
    h = world.headers("instructor")
    assert ok(api.get(f"/api/v1/submissions/{sub2['id']}", headers=h))["score"] == 0.0
    url = f"/api/v1/courses/{world.course}/regrade-jobs"
    job = ok(api.post(url, json={"assignment_id": world.assignment}, headers=h), 202)
    assert job["scope"] == "assignment" and job["total"] == 3
    done = ok(api.get(f"{url}/{job['id']}", headers=h))
    assert done["status"] == "done" and done["done"] == 3 and done["changed"] == 1
    assert done["progress"] == 1.0
    assert ok(api.get(f"/api/v1/submissions/{sub2['id']}", headers=h))["score"] == 1.0
    history = ok(api.get(f"/api/v1/submissions/{sub2['id']}/verdicts", headers=h))["items"]
    assert [(v["number"], v["score"], v["current"]) for v in history] == [
        (1, 0.0, False),
        (2, 1.0, True),
    ]
    assert history[1]["regrade_job_id"] == job["id"]
    untouched = ok(api.get(f"/api/v1/submissions/{sub['id']}/verdicts", headers=h))["items"]
    assert [v["score"] for v in untouched] == [1.0, 1.0]
    again = ok(api.post(url, json={"submission_id": sub2["id"]}, headers=h), 202)
    assert again["total"] == 1 and again["changed"] == 0
    assert len(ok(api.get(f"/api/v1/submissions/{sub2['id']}/verdicts", headers=h))["items"]) == 3


def test_regrade_targets_are_checked(api: FlaskClient, world: World) -> None:
    url = f"/api/v1/courses/{world.course}/regrade-jobs"
    h = world.headers("instructor")
    problem(api.post(url, json={}, headers=h), 422)
    problem(api.post(url, json={"submission_id": 1, "assignment_id": 1}, headers=h), 422)
    problem(api.post(url, json={"submission_id": 999}, headers=h), 404)
    problem(api.post(url, json={"exercise": NEURON, "version": 99}, headers=h), 404)
    job = ok(api.post(url, json={"exercise": NEURON, "version": 1}, headers=h), 202)
    assert job["scope"] == "exercise_version" and job["total"] == 1
    other = f"/api/v1/courses/{world.other_course}/regrade-jobs"
    oh = world.headers("other_instructor")
    problem(api.post(other, json={"submission_id": world.submission}, headers=oh), 404)
    problem(api.get(f"{other}/{job['id']}", headers=oh), 404)


def test_gradebook_json_and_csv(api: FlaskClient, world: World) -> None:
    right = neuron_grads(params(api, world, "learner2"))
    submit(api, world, "learner2", {"w": 0, "b": 0, "x": 0})
    submit(api, world, "learner2", right)
    h = world.headers("ta")
    book = ok(api.get(f"/api/v1/assignments/{world.assignment}/gradebook", headers=h))
    assert [e["slug"] for e in book["exercises"]] == [NEURON, "tanh-neuron", world.exercise]
    rows = {r["email"]: r for r in book["rows"]}
    assert set(rows) == {"learner@world.test", "learner2@world.test"}, "staff have no row"
    cell = rows["learner2@world.test"]["exercises"][NEURON]
    assert cell == {**cell, "score": 1.0, "attempts": 2, "late": False}
    assert rows["learner2@world.test"]["score"] == 0.25  # weights 1, 2, 1
    assert rows["learner@world.test"]["score"] == 0.0
    text = api.get(f"/api/v1/assignments/{world.assignment}/gradebook.csv", headers=h)
    assert text.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    by_email = {r["email"]: r for r in table}
    assert by_email["learner2@world.test"][f"{NEURON}:score"] == "1.0000"
    assert by_email["learner2@world.test"]["score"] == "0.2500"
    course = ok(api.get(f"/api/v1/courses/{world.course}/gradebook", headers=h))
    assert [a["id"] for a in course["assignments"]] == [world.assignment, world.empty_assignment]
    row = next(r for r in course["rows"] if r["email"] == "learner2@world.test")
    assert row["scores"][str(world.assignment)] == 0.25 and row["average"] == 0.125
    course_csv = api.get(f"/api/v1/courses/{world.course}/gradebook.csv", headers=h)
    lines = course_csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("user_id,email,1: Week 1") and len(lines) == 3


def test_analytics_per_exercise_and_part(api: FlaskClient, world: World) -> None:
    right = neuron_grads(params(api, world, "learner2"))
    submit(api, world, "learner2", {"w": 0, "b": 0, "x": 0})
    submit(api, world, "learner2", {**right, "w": -right["w"]})
    submit(api, world, "learner2", right)
    stats = ok(api.get(f"/api/v1/courses/{world.course}/analytics", headers=world.headers("ta")))
    neuron = next(e for e in stats["exercises"] if e["exercise"] == NEURON)
    assert neuron["attempts"] == 4 and neuron["learners"] == 2 and neuron["solved"] == 1
    assert neuron["solve_rate"] == 0.5 and neuron["median_attempts_to_solve"] == 3.0
    w = next(p for p in neuron["parts"] if p["part"] == "w")
    assert w["answered"] == 4 and w["correct"] == 1
    wrong = {a["answer"]: a["count"] for a in w["common_wrong_answers"]}
    assert wrong["0"] == 1 and wrong["1"] == 1
    narrowed = ok(
        api.get(
            f"/api/v1/courses/{world.course}/analytics?exercise=tanh-neuron",
            headers=world.headers("ta"),
        )
    )
    assert narrowed["exercises"] == []
