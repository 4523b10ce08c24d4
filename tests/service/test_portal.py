"""The learner portal: sign up, log in, answer, see the result; CSRF and rate limits."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.service.test_api import torch_grads
from tests.support import Factory


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str) -> Any:
    token = csrf(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_anonymous_is_sent_to_login(client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_signup_then_answer_the_neuron(client: FlaskClient) -> None:
    token = csrf(client.get("/signup").get_data(as_text=True))
    resp = client.post(
        "/signup",
        data={"email": "new@example.test", "password": "long-enough", "csrf_token": token},
    )
    assert resp.status_code == 302
    index = client.get("/").get_data(as_text=True)
    assert "The sigmoid neuron" in index or "sigmoid" in index.lower()
    page = client.get("/exercises/sigmoid-neuron").get_data(as_text=True)
    values = dict(re.findall(r'data-name="(\w+)">([^<]+)<', page))
    assert set(values) >= {"x", "w", "b"}
    grads = torch_grads(float(values["x"]), float(values["w"]), float(values["b"]))
    form = {f"part-{k}": repr(v) for k, v in grads.items()} | {"csrf_token": csrf(page)}
    resp = client.post("/exercises/sigmoid-neuron", data=form)
    assert resp.status_code == 302
    result = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Score: 100%" in result
    status_url = re.search(r'data-status-url="([^"]+)"', result)
    assert status_url
    assert client.get(status_url.group(1)).get_json()["score"] == 1.0
    assert "solved" in client.get("/").get_data(as_text=True)


def test_signup_errors_are_form_messages(client: FlaskClient) -> None:
    token = csrf(client.get("/signup").get_data(as_text=True))
    resp = client.post("/signup", data={"email": "bad", "password": "x", "csrf_token": token})
    assert resp.status_code == 400 and "valid email" in resp.get_data(as_text=True)


def test_login_wrong_password_and_right(client: FlaskClient, factory: Factory) -> None:
    user = factory.user_with_token()
    assert login(client, user["email"], "wrong-password").status_code == 401
    assert login(client, user["email"], user["password"]).status_code == 302


def test_post_without_csrf_token_is_rejected(client: FlaskClient, factory: Factory) -> None:
    user = factory.user_with_token()
    resp = client.post("/login", data={"email": user["email"], "password": user["password"]})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)


def test_login_is_rate_limited(client: FlaskClient, factory: Factory) -> None:
    user = factory.user_with_token()
    codes = [login(client, user["email"], "wrong-password").status_code for _ in range(12)]
    assert codes[:10] == [401] * 10
    assert codes[-1] == 429


def test_security_headers(client: FlaskClient) -> None:
    resp = client.get("/login")
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_other_learners_submission_status_is_404(client: FlaskClient, factory: Factory) -> None:
    a, b = factory.user_with_token(), factory.user_with_token()
    sid = client.post(
        "/api/v1/exercises/sigmoid-neuron/submissions",
        json={"answers": {"w": 1}},
        headers=a["headers"],
    ).get_json()["id"]
    login(client, b["email"], b["password"])
    assert client.get(f"/submissions/{sid}.json").status_code == 404
