"""Assignments: dates, attempts, late policy, extensions, feedback visibility, on-behalf work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from service.assignments import feedback_visible
from service.data.models import Assignment, FeedbackPolicy
from tests.service.api.helpers import neuron_grads, ok, problem
from tests.service.api.world import NEURON, World


def at(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def make(api: FlaskClient, world: World, **fields: Any) -> dict[str, Any]:
    body = {"title": "Quiz", "exercises": [{"slug": NEURON}], **fields}
    url = f"/api/v1/courses/{world.course}/assignments"
    created: dict[str, Any] = ok(api.post(url, json=body, headers=world.headers("instructor")), 201)
    return created


def answer(
    api: FlaskClient, world: World, assignment: int, role: str = "learner", **extra: Any
) -> Any:
    params = ok(api.get(f"/api/v1/exercises/{NEURON}", headers=world.headers(role)))["variant"][
        "params"
    ]
    body = {"exercise": NEURON, "answers": neuron_grads(params), **extra}
    return api.post(
        f"/api/v1/assignments/{assignment}/submissions", json=body, headers=world.headers(role)
    )


def test_feedback_policy_is_one_decision() -> None:
    now = datetime.now(UTC)
    a = Assignment(feedback=FeedbackPolicy.AFTER_DUE, due_at=now + timedelta(hours=1))
    assert feedback_visible(None, now)
    assert not feedback_visible(a, now)
    assert feedback_visible(a, now + timedelta(hours=2))
    assert not feedback_visible(a, now + timedelta(hours=2), due=now + timedelta(hours=3))
    assert not feedback_visible(Assignment(feedback=FeedbackPolicy.NEVER), now)
    assert feedback_visible(Assignment(feedback=FeedbackPolicy.IMMEDIATE), now)


def test_an_exam_hides_feedback_from_the_learner_but_not_from_staff(
    api: FlaskClient, world: World
) -> None:
    exam = make(api, world, feedback="after_due", due_at=at(1))
    sub = ok(answer(api, world, exam["id"]), 202)
    assert sub["feedback"] == "hidden" and sub["score"] is None and sub["parts"] == {}
    mine = ok(api.get(f"/api/v1/submissions/{sub['id']}", headers=world.headers("learner")))
    assert mine["status"] == "graded" and mine["score"] is None and mine["parts"] == {}
    assert mine["feedback_available_at"] is not None and "after the due date" in mine["message"]
    listed = ok(
        api.get(f"/api/v1/submissions?assignment={exam['id']}", headers=world.headers("learner"))
    )
    assert [s["score"] for s in listed["items"]] == [None]
    staff = ok(api.get(f"/api/v1/submissions/{sub['id']}", headers=world.headers("ta")))
    assert staff["score"] == 1.0 and staff["parts"]["w"]["correct"] is True


def test_never_means_never_and_immediate_shows_at_once(api: FlaskClient, world: World) -> None:
    def score(sub: dict[str, Any]) -> Any:
        got = ok(api.get(f"/api/v1/submissions/{sub['id']}", headers=world.headers("learner")))
        return got["score"]

    now = make(api, world)
    assert score(ok(answer(api, world, now["id"]), 202)) == 1.0
    never = make(api, world, feedback="never")
    assert score(ok(answer(api, world, never["id"]), 202)) is None


def test_dates_and_attempts_refuse_with_409(api: FlaskClient, world: World) -> None:
    later = make(api, world, opens_at=at(1), due_at=at(2))
    problem(answer(api, world, later["id"]), 404)  # learners do not see it before it opens
    past = make(api, world, opens_at=at(-2), due_at=at(-1))
    assert "was due" in problem(answer(api, world, past["id"]), 409)["detail"]
    limited = make(api, world, max_attempts=1)
    ok(answer(api, world, limited["id"]), 202)
    assert "attempts" in problem(answer(api, world, limited["id"]), 409)["detail"]
    # An extension gives learner one more attempt, and a later due date.
    url = f"/api/v1/assignments/{limited['id']}/extensions/{world.users['learner']}"
    ok(api.put(url, json={"extra_attempts": 1}, headers=world.headers("ta")), 201)
    ok(answer(api, world, limited["id"]), 202)
    url = f"/api/v1/assignments/{past['id']}/extensions/{world.users['learner']}"
    ok(api.put(url, json={"due_at": at(1)}, headers=world.headers("instructor")), 201)
    ok(answer(api, world, past["id"]), 202)


def test_late_penalty_counts_in_the_gradebook(api: FlaskClient, world: World) -> None:
    late = make(
        api, world, opens_at=at(-2), due_at=at(-1), late_policy="penalty", late_penalty=0.25
    )
    sub = ok(answer(api, world, late["id"]), 202)
    got = ok(api.get(f"/api/v1/submissions/{sub['id']}", headers=world.headers("learner")))
    assert got["late"] is True and got["score"] == 1.0, "the penalty is the gradebook's"
    book = ok(api.get(f"/api/v1/assignments/{late['id']}/gradebook", headers=world.headers("ta")))
    row = next(r for r in book["rows"] if r["user_id"] == world.users["learner"])
    assert row["exercises"][NEURON]["late"] is True
    assert row["score"] == 0.75 and row["exercises"][NEURON]["score"] == 0.75
    closed = make(
        api, world, opens_at=at(-3), due_at=at(-2), late_policy="accept", late_until=at(-1)
    )
    assert "closed" in problem(answer(api, world, closed["id"]), 409)["detail"]


def test_staff_submit_on_a_learners_behalf(api: FlaskClient, world: World) -> None:
    past = make(api, world, opens_at=at(-2), due_at=at(-1))
    learner = world.users["learner"]
    sub = ok(answer(api, world, past["id"], role="ta", learner_id=learner), 202)
    assert sub["learner_id"] == learner and sub["submitted_by_id"] == world.users["ta"]
    problem(answer(api, world, past["id"], role="ta"), 422)  # staff must name the learner
    problem(answer(api, world, past["id"], role="learner2", learner_id=learner), 403)
    problem(answer(api, world, past["id"], role="ta", learner_id=world.users["ta"]), 422)


def test_invalid_assignments_name_the_field_and_change_nothing(
    api: FlaskClient, world: World
) -> None:
    url = f"/api/v1/courses/{world.course}/assignments"
    h = world.headers("instructor")
    before = ok(api.get(url, headers=h))
    cases = [
        ({"title": "x", "exercises": [{"slug": "no-such-thing"}]}, "exercises.0.slug"),
        ({"title": "x", "exercises": []}, "exercises"),
        (
            {"title": "x", "exercises": [{"slug": NEURON}], "due_at": "2030-01-01T00:00:00"},
            "due_at",
        ),
        (
            {"title": "x", "exercises": [{"slug": NEURON}], "opens_at": at(2), "due_at": at(1)},
            "due_at",
        ),
        ({"title": "x", "exercises": [{"slug": NEURON}], "feedback": "after_due"}, "feedback"),
        ({"title": "x", "exercises": [{"slug": NEURON}], "colour": "red"}, "colour"),
        ({"title": 5, "exercises": [{"slug": NEURON}]}, "title"),
        ({"title": "x", "exercises": [{"slug": NEURON}, {"slug": NEURON}]}, "exercises.1.slug"),
        ({"title": "x", "exercises": [{"slug": "b202-x"}]}, "exercises.0.slug"),
    ]
    for body, field in cases:
        got = problem(api.post(url, json=body, headers=h), 422)
        assert field in {e["field"] for e in got["errors"]}, (body, got)
    assert ok(api.get(url, headers=h)) == before


def test_deleting_an_assignment_with_work_is_refused(api: FlaskClient, world: World) -> None:
    problem(
        api.delete(f"/api/v1/assignments/{world.assignment}", headers=world.headers("instructor")),
        409,
    )


def test_practice_cannot_reveal_what_an_exam_hides(api: FlaskClient, world: World) -> None:
    exam = make(api, world, feedback="after_due", due_at=at(1))
    practice = {"answers": {"w": 1, "b": 1, "x": 1}}
    url = f"/api/v1/exercises/{NEURON}/submissions"
    body = problem(api.post(url, json=practice, headers=world.headers("learner")), 409)
    assert f"assignment {exam['id']}" in body["detail"]
    ok(api.post(url, json=practice, headers=world.headers("outsider")), 202)
    # Nor may another assignment with immediate feedback.
    problem(answer(api, world, world.assignment), 409)
    ok(answer(api, world, exam["id"]), 202)
