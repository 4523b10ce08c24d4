"""The learner portal: sign up, log in, answer, see the result; CSRF and rate limits."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import torch
from flask.testing import FlaskClient
from sqlalchemy import select

from exercises.catalog import load_builtin_catalog
from exercises.spec import ExerciseSpec
from service.assignments import ItemSpec, create_assignment
from service.authoring import save_version
from service.catalog import upsert_exercise
from service.config import Settings
from service.courses import create_course, rotate_join_code
from service.data.models import (
    Assignment,
    Exercise,
    ExerciseVersion,
    Submission,
    Variant,
    utcnow,
)
from service.data.session import session_scope
from service.users import create_user
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


# ---- the portal's pages, feedback, graph and policies (inline grading, no browser) ----------


def signed_up(client: FlaskClient) -> None:
    token = csrf(client.get("/signup").get_data(as_text=True))
    resp = client.post(
        "/signup",
        data={
            "email": f"p{id(client)}@example.test",
            "password": "long-enough",
            "csrf_token": token,
        },
    )
    assert resp.status_code == 302


def submission_id(location: str) -> int:
    found = re.search(r"submission=(\d+)", location)
    assert found, location
    return int(found.group(1))


def own_numbers(page: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r'data-name="(\w+)">([^<]+)<', page)}


def test_exercise_page_has_math_code_and_forward_graph(client: FlaskClient) -> None:
    signed_up(client)
    page = client.get("/exercises/sigmoid-neuron").get_data(as_text=True)
    assert '<div class="math block">' in page and 'class="math inline"' in page
    assert '<code class="language-python">' in page
    p = own_numbers(page)
    z = p["w"] * p["x"] + p["b"]
    # The graph shows each node's forward value, computed without torch.
    assert re.search(r'data-node="z".*?value ' + re.escape(f"{z:.4g}") + "<", page, re.S)
    assert "∂L/∂" not in page.split('id="result"')[0]  # no gradients before grading


def test_wrong_answer_shows_diagnosis_and_gradients_on_the_graph(client: FlaskClient) -> None:
    signed_up(client)
    page = client.get("/exercises/sigmoid-neuron").get_data(as_text=True)
    p = own_numbers(page)
    truth = torch_grads(p["x"], p["w"], p["b"])
    y_hat = 1 / (1 + math.exp(-(p["w"] * p["x"] + p["b"])))
    form = {
        "part-w": repr(-2 * (1 - y_hat) * p["x"]),  # the sigmoid's derivative forgotten
        "part-b": "0",
        "part-x": repr(truth["x"]),
        "csrf_token": csrf(page),
    }
    resp = client.post("/exercises/sigmoid-neuron", data=form)
    result = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Score: 33%" in result
    assert 'data-diagnosis="sigmoid_derivative_forgotten"' in result
    assert 'data-diagnosis="zero_for_small_gradient"' in result
    broke = re.search(r'<g class="node [^"]*broke[^"]*" data-node="(\w+)"', result)
    assert broke and broke.group(1) == "y_hat"
    # Autograd's gradient at the leaf w (from the worker's graph) and the learner's value.
    leaf = result.split('data-node="w"', 2)[2].split("</g>")[0]
    assert f"∂L/∂w {truth['w']:.4g}" in leaf and "w: you" in leaf and "✗" in leaf


def test_feedback_fragment_and_status_follow_the_submission(client: FlaskClient) -> None:
    signed_up(client)
    page = client.get("/exercises/sigmoid-neuron").get_data(as_text=True)
    resp = client.post("/exercises/sigmoid-neuron", data={"part-w": "1", "csrf_token": csrf(page)})
    sid = submission_id(resp.headers["Location"])
    status = client.get(f"/submissions/{sid}.json").get_json()
    assert status["status"] == "graded" and status["feedback"] == "shown"
    fragment = client.get(f"/submissions/{sid}/feedback").get_data(as_text=True)
    assert 'id="result"' in fragment and 'id="history"' in fragment and "<html" not in fragment


def test_formula_preview_uses_the_safe_parser(client: FlaskClient) -> None:
    signed_up(client)
    ok = client.get("/exercises/sigmoid-neuron-formula/preview?formula=y_hat*(1-y_hat)*x")
    assert ok.get_json()["ok"] is True and "\\hat{y}" in ok.get_json()["latex"]
    bad = client.get("/exercises/sigmoid-neuron-formula/preview?formula=__import__('os')")
    assert bad.get_json()["ok"] is False


def test_tensor_answer_from_the_grid_of_inputs(client: FlaskClient) -> None:
    signed_up(client)
    page = client.get("/exercises/linear-layer").get_data(as_text=True)
    values = {k: json.loads(v) for k, v in re.findall(r'data-name="(\w+)">([^<]+)<', page)}
    W, x, b, t = (torch.tensor(values[k], dtype=torch.float64) for k in "Wxbt")
    W.requires_grad_(), b.requires_grad_()
    (((W @ x + b) - t) ** 2).sum().backward()
    form = {"csrf_token": csrf(page)}
    for (i, j), g in np.ndenumerate(W.grad.numpy()):  # type: ignore[union-attr]
        form[f"part-W-{i}-{j}"] = repr(float(g))
    for i, g in enumerate(b.grad.tolist()):  # type: ignore[union-attr]
        form[f"part-b-{i}"] = repr(g)
    resp = client.post("/exercises/linear-layer", data=form)
    assert "Score: 100%" in client.get(resp.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/exercises/sigmoid-neuron", "/join", "/logout"], ids=["answer", "join", "logout"]
)
def test_every_portal_form_rejects_a_post_without_csrf(client: FlaskClient, path: str) -> None:
    signed_up(client)
    resp = client.post(path, data={"part-w": "1", "code": "X"})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)


HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
    "[click](javascript:alert(3)) <iframe src=javascript:alert(4)></iframe>"
)


def test_exercise_text_cannot_inject_script(client: FlaskClient, settings: Settings) -> None:
    base = next(e for e in load_builtin_catalog() if e.slug == "sigmoid-neuron").model_dump()
    base.update(slug="hostile", title="<script>alert(5)</script>", statement=HOSTILE)
    base["parts"][0]["label"] = '<svg onload="alert(6)">w</svg>'
    with session_scope(settings.database_url) as db:
        upsert_exercise(db, ExerciseSpec.model_validate(base))
    signed_up(client)
    page = client.get("/exercises/hostile").get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", page)
    assert all("src=" in s for s in scripts), scripts  # only the bundles, nothing inline
    for raw in ("<img", "<iframe", "<svg onload", 'href="javascript'):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert (
        "script-src 'self'" in client.get("/exercises/hostile").headers["Content-Security-Policy"]
    )


def test_code_page_allows_the_editor_style_by_nonce_only(client: FlaskClient) -> None:
    signed_up(client)
    resp = client.get("/exercises/sigmoid-neuron-code")
    nonce = re.search(r'data-style-nonce="([^"]+)"', resp.get_data(as_text=True))
    assert nonce
    policy = resp.headers["Content-Security-Policy"]
    assert f"style-src 'self' 'nonce-{nonce.group(1)}'" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy
    assert "nonce" not in client.get("/exercises/sigmoid-neuron").headers["Content-Security-Policy"]


def _course_with_assignment(settings: Settings, feedback: str) -> str:
    with session_scope(settings.database_url) as db:
        teacher = create_user(db, f"t-{feedback}@example.test", "teach-autograd", "instructor")
        course = create_course(db, teacher, f"C-{feedback}", "Autograd")
        create_assignment(
            db,
            course,
            [ItemSpec("sigmoid-neuron")],
            title="Quiz",
            due_at=utcnow() + timedelta(days=2),
            feedback=feedback,
        )
        return rotate_join_code(db, course)


def join(client: FlaskClient, code: str) -> Any:
    token = csrf(client.get("/join").get_data(as_text=True))
    return client.post("/join", data={"code": code, "csrf_token": token})


def test_join_by_code_lists_the_course_and_its_assignment(
    client: FlaskClient, settings: Settings
) -> None:
    code = _course_with_assignment(settings, "immediate")
    signed_up(client)
    wrong = join(client, "NOPE")
    assert wrong.status_code == 404 and "no course has this join code" in wrong.get_data(
        as_text=True
    )
    assert join(client, code.lower()).status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "Autograd" in home and "Quiz" in home and "due " in home
    assert 'value="0"' in home.split('data-assignment="')[1]


def test_exam_feedback_stays_hidden_until_the_due_date(
    client: FlaskClient, settings: Settings
) -> None:
    code = _course_with_assignment(settings, "after_due")
    signed_up(client)
    join(client, code)
    home = client.get("/").get_data(as_text=True)
    aid = re.search(r'data-assignment="(\d+)"', home)
    assert aid
    url = f"/exercises/sigmoid-neuron?assignment={aid.group(1)}"
    page = client.get(url).get_data(as_text=True)
    p = own_numbers(page)
    grads = torch_grads(p["x"], p["w"], p["b"])
    form = {f"part-{k}": repr(v) for k, v in grads.items()} | {"csrf_token": csrf(page)}
    resp = client.post(url, data=form)
    result = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "data-feedback-hidden" in result and "Score:" not in result and "∂L/∂w" not in result
    sid = submission_id(resp.headers["Location"])
    status = client.get(f"/submissions/{sid}.json").get_json()
    assert status["score"] is None and status["parts"] == {}
    home = client.get("/").get_data(as_text=True)
    assert "data-solved>0<" in home  # the exam's full marks do not show as progress yet


# ---- integration with the instructor API: feedback policy, course exercises, exams ------------


def _exam_answered_in_full(client: FlaskClient, settings: Settings) -> tuple[int, int]:
    """A learner joins a course whose exam (feedback after the due date) holds the sigmoid
    neuron and answers it with full marks; returns (assignment id, submission id)."""
    code = _course_with_assignment(settings, "after_due")
    signed_up(client)
    join(client, code)
    aid = re.search(r'data-assignment="(\d+)"', client.get("/").get_data(as_text=True))
    assert aid
    url = f"/exercises/sigmoid-neuron?assignment={aid.group(1)}"
    page = client.get(url).get_data(as_text=True)
    p = own_numbers(page)
    grads = torch_grads(p["x"], p["w"], p["b"])
    form = {f"part-{k}": repr(v) for k, v in grads.items()} | {"csrf_token": csrf(page)}
    resp = client.post(url, data=form)
    assert resp.status_code == 302
    return int(aid.group(1)), submission_id(resp.headers["Location"])


def _history_scores(page: str) -> list[str]:
    table = page.split('id="history"', 1)[1].split("</table>", 1)[0]
    return [cell.strip() for cell in re.findall(r"<td[^>]*data-score-cell[^>]*>(.*?)</td>", table)]


def test_hidden_exam_work_shows_no_score_anywhere_in_the_portal(
    client: FlaskClient, settings: Settings
) -> None:
    aid, sid = _exam_answered_in_full(client, settings)
    # The live status: its grading's progress, nothing of its verdict.
    status = client.get(f"/submissions/{sid}.json").get_json()
    assert status["status"] == "graded" and status["feedback"] == "hidden"
    assert status["score"] is None and status["correct"] is None and status["parts"] == {}
    assert "details" not in status
    pages = {
        "exam page": client.get(f"/exercises/sigmoid-neuron?assignment={aid}&submission={sid}"),
        "practice page": client.get(f"/exercises/sigmoid-neuron?submission={sid}"),
        "live fragment": client.get(f"/submissions/{sid}/feedback"),
    }
    for where, resp in pages.items():
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200, where
        assert "data-feedback-hidden" in html and "Score:" not in html, where
        assert "100%" not in html and "∂L/∂w" not in html and "<dt>Autograd" not in html, where
        assert "solved-badge" not in html and "part-result" not in html, where
        assert _history_scores(html) == ["hidden"], where
    home = client.get("/").get_data(as_text=True)
    recent = home.split('id="recent-title"', 1)[1].split("</section>", 1)[0]
    assert "graded" in recent and "%" not in recent and "feedback hidden" in recent
    assert "data-solved>0<" in home and "100%" not in home
    neuron = home.split('data-slug="sigmoid-neuron"', 1)[1].split("</li>", 1)[0]
    assert "attempted" in neuron and "solved" not in neuron and "%" not in neuron

    # Once the due date has passed, the same places show the verdict.
    with session_scope(settings.database_url) as db:
        exam = db.get(Assignment, aid)
        assert exam is not None
        exam.opens_at = utcnow() - timedelta(days=2)
        exam.due_at = utcnow() - timedelta(minutes=1)
    status = client.get(f"/submissions/{sid}.json").get_json()
    assert status["feedback"] == "shown" and status["score"] == 1.0
    page = client.get(f"/exercises/sigmoid-neuron?submission={sid}").get_data(as_text=True)
    assert "Score: 100%" in page and _history_scores(page) == ["100%"]
    home = client.get("/").get_data(as_text=True)
    assert "data-solved>1<" in home
    assert "100%" in home.split('id="recent-title"', 1)[1].split("</section>", 1)[0]


def test_the_portal_shows_submissions_to_their_owner_only(
    client: FlaskClient, factory: Factory
) -> None:
    learner, instructor = factory.user_with_token(), factory.user_with_token("instructor")
    sid = client.post(
        "/api/v1/exercises/sigmoid-neuron/submissions",
        json={"answers": {"w": 1, "b": 1, "x": 1}},
        headers=learner["headers"],
    ).get_json()["id"]
    login(client, instructor["email"], instructor["password"])
    assert client.get(f"/submissions/{sid}.json").status_code == 404
    assert client.get(f"/submissions/{sid}/feedback").status_code == 404


def _course_exercise(settings: Settings) -> str:
    """A course with an exercise authored in it; returns the course's join code."""
    data = next(e for e in load_builtin_catalog() if e.slug == "sigmoid-neuron-formula")
    spec = data.model_dump(mode="json") | {"slug": "course-only", "title": "Course-only neuron"}
    with session_scope(settings.database_url) as db:
        teacher = create_user(db, "author@example.test", "teach-autograd", "instructor")
        course = create_course(db, teacher, "C-own", "Own exercises")
        save_version(db, course, teacher, ExerciseSpec.model_validate(spec))
        return rotate_join_code(db, course)


def test_a_course_exercise_is_not_found_for_non_members(
    client: FlaskClient, settings: Settings
) -> None:
    code = _course_exercise(settings)
    signed_up(client)
    for path in (
        "/exercises/course-only",
        "/exercises/course-only?variant=worked-example",
        "/exercises/course-only/preview?formula=x",
    ):
        assert client.get(path).status_code == 404, path
    page = client.get("/exercises/sigmoid-neuron").get_data(as_text=True)
    refused = client.post("/exercises/course-only", data={"csrf_token": csrf(page)})
    assert refused.status_code == 404
    assert "course-only" not in client.get("/").get_data(as_text=True)
    with session_scope(settings.database_url) as db:  # no numbers were drawn for the outsider
        drawn = db.scalars(
            select(Variant.id)
            .join(ExerciseVersion, Variant.exercise_version_id == ExerciseVersion.id)
            .join(Exercise, ExerciseVersion.exercise_id == Exercise.id)
            .where(Exercise.slug == "course-only")
        ).all()
        assert drawn == []
    # Members see it in their catalog and may open it, its worked example and its preview.
    join(client, code)
    assert 'data-slug="course-only"' in client.get("/").get_data(as_text=True)
    assert client.get("/exercises/course-only").status_code == 200
    assert client.get("/exercises/course-only?variant=worked-example").status_code == 200
    assert client.get("/exercises/course-only/preview?formula=x").get_json()["ok"] is True


def test_practice_on_an_exercise_an_exam_hides_is_refused_with_a_form_message(
    client: FlaskClient, settings: Settings, factory: Factory
) -> None:
    code = _course_with_assignment(settings, "after_due")
    learner = factory.user_with_token()
    login(client, learner["email"], learner["password"])
    join(client, code)
    api = client.post(
        "/api/v1/exercises/sigmoid-neuron/submissions",
        json={"answers": {"w": "0.5", "b": "0", "x": "0"}},
        headers=learner["headers"],
    )
    assert api.status_code == 409
    page = client.get("/exercises/sigmoid-neuron").get_data(as_text=True)
    notice = page.split("data-practice-closed", 1)[1].split("</p>", 1)[0]
    assert "Quiz" in notice and "?assignment=" in notice  # where to answer it instead
    for query in ("", "?variant=worked-example"):
        resp = client.post(
            f"/exercises/sigmoid-neuron{query}",
            data={"part-w": "0.5", "part-b": "0", "part-x": "0", "csrf_token": csrf(page)},
        )
        html = resp.get_data(as_text=True)
        assert resp.status_code == 409, query
        form = html.split('id="answer-form"', 1)[1].split("</form>", 1)[0]
        message = re.search(r'<p class="form-error[^"]*" role="alert"[^>]*>(.*?)</p>', form, re.S)
        assert message and message.group(1).strip() == api.get_json()["detail"], query
        assert 'value="0.5"' in form, query  # the learner's answer is kept
        assert 'id="result"' in html and "Internal" not in html
    with session_scope(settings.database_url) as db:
        assert db.scalars(select(Submission.id)).all() == []
