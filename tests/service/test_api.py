"""The API contract of the foundation: catalog, variants, submissions, auth, problem+json."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from flask.testing import FlaskClient

from tests.support import Factory

SLUG = "sigmoid-neuron"


def torch_grads(
    x: float, w: float, b: float, dtype: torch.dtype = torch.float64
) -> dict[str, float]:
    """The oracle: the notes' neuron through autograd."""
    xt, wt, bt = (torch.tensor(v, dtype=dtype, requires_grad=True) for v in (x, w, b))
    loss = (1 - torch.sigmoid(wt * xt + bt)) ** 2
    loss.backward()
    return {"w": wt.grad.item(), "b": bt.grad.item(), "x": xt.grad.item()}  # type: ignore[union-attr]


def variant(client: FlaskClient, headers: dict[str, str], label: str = "seeded") -> dict[str, Any]:
    resp = client.get(f"/api/v1/exercises/{SLUG}?variant={label}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()["variant"]
    return body


def submit(client: FlaskClient, headers: dict[str, str], body: Any, **kw: Any) -> Any:
    return client.post(f"/api/v1/exercises/{SLUG}/submissions", json=body, headers=headers, **kw)


def graded(client: FlaskClient, headers: dict[str, str], resp: Any) -> dict[str, Any]:
    assert resp.status_code in (200, 202), resp.get_json()
    sid = resp.get_json()["id"]
    got = client.get(f"/api/v1/submissions/{sid}", headers=headers)
    assert got.status_code == 200
    body: dict[str, Any] = got.get_json()
    assert body["status"] == "graded", body
    return body


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body: dict[str, Any] = resp.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_no_token_is_401(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/exercises"), 401)
    assert_problem(client.get("/api/v1/exercises", headers={"Authorization": "Bearer nope"}), 401)
    assert_problem(client.get("/api/v1/exercises", headers={"Authorization": "Basic abc"}), 401)


def test_catalog_lists_the_sigmoid_neuron(client: FlaskClient, learner: dict[str, Any]) -> None:
    items = client.get("/api/v1/exercises", headers=learner["headers"]).get_json()["items"]
    slugs = {i["slug"] for i in items}
    assert SLUG in slugs


def test_variant_has_own_numbers_and_parts(client: FlaskClient, factory: Factory) -> None:
    a, b = factory.user_with_token(), factory.user_with_token()
    va, vb = variant(client, a["headers"]), variant(client, b["headers"])
    assert {p["name"] for p in va["parts"]} == {"w", "b", "x"}
    assert set(va["params"]) == {"x", "w", "b"}
    assert va["params"] != vb["params"], "two learners should get different numbers"
    assert variant(client, a["headers"])["params"] == va["params"], "a variant is stable"
    worked = variant(client, a["headers"], "worked-example")
    assert worked["params"] == {"x": 2, "w": 3, "b": 1} or worked["params"] == {
        "x": 2.0,
        "w": 3.0,
        "b": 1.0,
    }


def test_unknown_exercise_is_404(client: FlaskClient, learner: dict[str, Any]) -> None:
    assert_problem(client.get("/api/v1/exercises/nope", headers=learner["headers"]), 404)
    assert_problem(submit_to(client, learner, "nope", {"answers": {}}), 404)


def submit_to(client: FlaskClient, learner: dict[str, Any], slug: str, body: Any) -> Any:
    return client.post(
        f"/api/v1/exercises/{slug}/submissions", json=body, headers=learner["headers"]
    )


def test_right_answer_is_graded_right(client: FlaskClient, learner: dict[str, Any]) -> None:
    params = variant(client, learner["headers"])["params"]
    want = torch_grads(params["x"], params["w"], params["b"])
    resp = submit(client, learner["headers"], {"answers": want})
    assert resp.status_code == 202
    assert resp.headers["Location"].endswith(f"/api/v1/submissions/{resp.get_json()['id']}")
    body = graded(client, learner["headers"], resp)
    assert body["score"] == 1.0 and body["correct"] is True
    assert all(p["correct"] for p in body["parts"].values())
    assert body["attempt"] == 1


def test_worked_example_values(client: FlaskClient, learner: dict[str, Any]) -> None:
    answers = {"w": "-3.317e-6", "b": "-1.6585e-06", "x": -4.97555e-06}
    body = graded(
        client,
        learner["headers"],
        submit(client, learner["headers"], {"answers": answers, "variant": "worked-example"}),
    )
    assert body["score"] == 1.0


@pytest.mark.parametrize(
    "transform",
    [lambda g: 0.0, lambda g: -g, lambda g: 2 * g],
    ids=["zero", "sign-flipped", "doubled"],
)
def test_wrong_answers_are_wrong(
    client: FlaskClient, learner: dict[str, Any], transform: Any
) -> None:
    params = variant(client, learner["headers"])["params"]
    want = torch_grads(params["x"], params["w"], params["b"])
    answers = {k: transform(v) for k, v in want.items()}
    body = graded(
        client, learner["headers"], submit(client, learner["headers"], {"answers": answers})
    )
    assert body["score"] == 0.0
    assert not any(p["correct"] for p in body["parts"].values())
    assert all(p["message"] for p in body["parts"].values())


def test_float32_and_four_sig_figs_are_right(client: FlaskClient, learner: dict[str, Any]) -> None:
    params = variant(client, learner["headers"])["params"]
    f32 = torch_grads(params["x"], params["w"], params["b"], torch.float32)
    body = graded(client, learner["headers"], submit(client, learner["headers"], {"answers": f32}))
    assert body["score"] == 1.0
    f64 = torch_grads(params["x"], params["w"], params["b"])
    four = {k: f"{v:.3e}" for k, v in f64.items()}
    body = graded(client, learner["headers"], submit(client, learner["headers"], {"answers": four}))
    assert body["score"] == 1.0 and body["attempt"] == 2


@pytest.mark.parametrize(
    "bad",
    ["NaN", "inf", "-Infinity", "", "   ", "abc", "1e", True, None, [1], {"v": 1}, float("nan")],
)
def test_bad_part_values_get_a_message_not_a_500(
    client: FlaskClient, learner: dict[str, Any], bad: Any
) -> None:
    params = variant(client, learner["headers"])["params"]
    want = torch_grads(params["x"], params["w"], params["b"])
    answers: dict[str, Any] = {"w": bad, "b": want["b"], "x": want["x"]}
    if isinstance(bad, float) and math.isnan(bad):
        resp = client.post(
            f"/api/v1/exercises/{SLUG}/submissions",
            data='{"answers": {"w": NaN, "b": 1, "x": 1}}',
            headers={**learner["headers"], "Content-Type": "application/json"},
        )
        assert "NaN" in assert_problem(resp, 400)["detail"]
        return
    else:
        body = graded(
            client, learner["headers"], submit(client, learner["headers"], {"answers": answers})
        )
    assert body["parts"]["w"]["correct"] is False and body["parts"]["w"]["message"]
    assert body["parts"]["b"]["correct"] is True


def test_missing_part_is_wrong_with_a_message(client: FlaskClient, learner: dict[str, Any]) -> None:
    body = graded(
        client, learner["headers"], submit(client, learner["headers"], {"answers": {"w": 1}})
    )
    assert body["parts"]["x"]["correct"] is False and body["parts"]["x"]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ([1, 2], 422),
        ({"answers": [1, 2, 3]}, 422),
        ({"answers": {"q": 1}}, 422),
        ({"answers": {"w": 1}, "variant": "other"}, 422),
    ],
)
def test_malformed_bodies_are_4xx_problems(
    client: FlaskClient, learner: dict[str, Any], body: Any, status: int
) -> None:
    assert_problem(submit(client, learner["headers"], body), status)


def test_non_json_body_is_400(client: FlaskClient, learner: dict[str, Any]) -> None:
    resp = client.post(
        f"/api/v1/exercises/{SLUG}/submissions", data="w=1", headers=learner["headers"]
    )
    assert_problem(resp, 400)
    resp = client.post(
        f"/api/v1/exercises/{SLUG}/submissions",
        data="{not json",
        headers={**learner["headers"], "Content-Type": "application/json"},
    )
    assert_problem(resp, 400)


def test_huge_body_is_413(client: FlaskClient, learner: dict[str, Any]) -> None:
    resp = submit(client, learner["headers"], {"answers": {"w": "1" * 400_000}})
    assert_problem(resp, 413)


def test_another_learners_submission_is_404(client: FlaskClient, factory: Factory) -> None:
    a, b = factory.user_with_token(), factory.user_with_token()
    sid = submit(client, a["headers"], {"answers": {"w": 1, "b": 1, "x": 1}}).get_json()["id"]
    assert client.get(f"/api/v1/submissions/{sid}", headers=a["headers"]).status_code == 200
    assert_problem(client.get(f"/api/v1/submissions/{sid}", headers=b["headers"]), 404)
    assert_problem(client.get("/api/v1/submissions/999999", headers=a["headers"]), 404)


def test_idempotency_key_returns_the_same_submission(
    client: FlaskClient, learner: dict[str, Any]
) -> None:
    headers = {**learner["headers"], "Idempotency-Key": "abc-123"}
    first = submit(client, headers, {"answers": {"w": 1, "b": 1, "x": 1}})
    second = submit(client, headers, {"answers": {"w": 1, "b": 1, "x": 1}})
    assert first.status_code == 202 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    third = submit(client, learner["headers"], {"answers": {"w": 1, "b": 1, "x": 1}})
    assert third.get_json()["id"] != first.get_json()["id"]


def test_revoked_and_expired_tokens_are_refused(
    client: FlaskClient, factory: Factory, settings: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from service.data.models import ApiToken
    from service.data.session import session_scope

    a, b = factory.user_with_token(), factory.user_with_token()
    with session_scope(settings.database_url) as db:
        db.execute(
            update(ApiToken)
            .where(ApiToken.user_id == a["user_id"])
            .values(revoked_at=datetime.now(UTC))
        )
        db.execute(
            update(ApiToken)
            .where(ApiToken.user_id == b["user_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(client.get("/api/v1/exercises", headers=a["headers"]), 401)
    assert (
        "expired"
        in assert_problem(client.get("/api/v1/exercises", headers=b["headers"]), 401)["detail"]
    )


def test_unknown_route_and_method_are_problems(
    client: FlaskClient, learner: dict[str, Any]
) -> None:
    assert_problem(client.get("/api/v1/nothing-here", headers=learner["headers"]), 404)
    assert_problem(client.delete("/api/v1/exercises", headers=learner["headers"]), 405)


def test_idempotency_key_reused_for_a_different_answer_is_422(
    client: FlaskClient, learner: dict[str, Any]
) -> None:
    headers = {**learner["headers"], "Idempotency-Key": "key-1"}
    first = submit(client, headers, {"answers": {"w": 1, "b": 1, "x": 1}})
    assert first.status_code == 202
    other = submit(client, headers, {"answers": {"w": 2, "b": 1, "x": 1}})
    assert assert_problem(other, 422)["type"].endswith("idempotency-key-reused")
    elsewhere = client.post(
        "/api/v1/exercises/sigmoid-neuron-formula/submissions",
        json={"answers": {"w": 1, "b": 1, "x": 1}},
        headers=headers,
    )
    assert assert_problem(elsewhere, 422)["type"].endswith("idempotency-key-reused")
    again = submit(client, headers, {"answers": {"w": 1, "b": 1, "x": 1}})
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
