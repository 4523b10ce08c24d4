"""A learner in headless Chromium against the real web and worker: sign up, answer the sigmoid
neuron wrong then right, a formula with its live preview, code in the editor, a course joined
by code, phone width, the keyboard, and exercise text that tries to run script."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from exercises.catalog import load_builtin_catalog
from exercises.spec import ExerciseSpec
from service.assignments import ItemSpec, create_assignment
from service.catalog import upsert_exercise
from service.courses import create_course, rotate_join_code
from service.data.models import utcnow
from service.data.session import session_scope
from service.users import create_user
from tests.browser.conftest import Session
from tests.integration.stack import Stack
from tests.integration.test_end_to_end import oracle

pytestmark = pytest.mark.browser

SOLUTION = """import math


def grads(x, w, b):
    y = 1 / (1 + math.exp(-(w * x + b)))
    dz = -2 * (1 - y) * y * (1 - y)
    return {"w": dz * x, "b": dz, "x": dz * w}
"""


def params_on_page(s: Session) -> dict[str, float]:
    """The learner's own numbers, read from the values table."""
    cells = s.page.locator("td.param").all()
    return {c.get_attribute("data-name"): float(c.inner_text()) for c in cells}


def sigmoid_forgotten(p: dict[str, float]) -> float:
    """dL/dw with the sigmoid's derivative left out of the chain (a known misconception)."""
    y_hat = 1 / (1 + math.exp(-(p["w"] * p["x"] + p["b"])))
    return -2 * (1 - y_hat) * p["x"]


def test_sigmoid_wrong_then_right_with_diagnosis_graph_and_progress(session: Session) -> None:
    s, page = session, session.page
    s.sign_up("ada@example.test")
    assert page.locator("[data-solved]").inner_text() == "0"
    s.screenshot("dashboard-new-learner")

    page.get_by_role("link", name="Gradients of a single sigmoid neuron").click()
    page.wait_for_selector("html[data-portal-ready]", state="attached")
    # The statement's math is typeset by KaTeX, the listing highlighted, the graph drawn.
    assert page.locator(".statement .katex").count() >= 3
    assert page.locator("pre.listing code .tok-keyword").count() >= 1
    assert page.locator(".statement svg [data-node=y_hat]").count() == 1
    s.screenshot("exercise-sigmoid")

    p = params_on_page(s)
    truth = oracle(p)
    page.get_by_label("∂L/∂w").fill(repr(sigmoid_forgotten(p)))
    page.get_by_label("∂L/∂b").fill("0")
    page.get_by_label("∂L/∂x").fill(f"{truth['x']:.6e}")
    page.get_by_role("button", name="Submit answer").click()
    s.wait_graded()
    result = page.locator("#result")
    assert "Score: 33%" in result.locator("[data-score]").inner_text()
    assert result.locator("[data-part=w]").get_attribute("class") == "part-result wrong"
    assert result.locator("[data-part=x]").get_attribute("class") == "part-result right"
    # The diagnosis names where the chain broke; the graph marks that node.
    diagnosis = result.locator("[data-part=w] .diagnosis")
    assert diagnosis.get_attribute("data-diagnosis") == "sigmoid_derivative_forgotten"
    assert "y_hat" in diagnosis.inner_text()
    assert result.locator("[data-part=b] [data-diagnosis=zero_for_small_gradient]").count() == 1
    broke = result.locator("svg g.broke")
    assert broke.get_attribute("data-node") == "y_hat"
    assert "the chain broke here" in (broke.text_content() or "")
    # Autograd's gradient beside the learner's value at the leaf w.
    leaf_w = result.locator("svg g[data-node=w]")
    leaf_text = leaf_w.text_content() or ""
    assert f"{truth['w']:.4g}" in leaf_text and "✗" in leaf_text
    s.screenshot("feedback-diagnosis")

    for name in ("w", "b", "x"):
        page.get_by_label(f"∂L/∂{name}").fill(f"{truth[name]:.6e}")
    page.get_by_role("button", name="Submit answer").click()
    s.wait_graded()
    assert result.locator("[data-score]").inner_text() == "Score: 100%"
    assert page.locator("#history tbody tr").count() == 2
    result.get_by_role("link", name="See your progress").click()
    page.wait_for_selector("html[data-portal-ready]", state="attached")
    assert page.locator("[data-solved]").inner_text() == "1"
    assert "✔ solved" in page.locator("[data-slug=sigmoid-neuron]").inner_text()
    mastery = page.locator("rect.fill[data-topic=chain-rule]")
    assert int(mastery.get_attribute("data-percent") or "0") > 0
    s.screenshot("dashboard-progress")


def test_formula_answer_with_live_preview(session: Session) -> None:
    s, page = session, session.page
    s.sign_up()
    s.go("/exercises/sigmoid-neuron-formula")
    box = page.get_by_label("∂L/∂w")
    preview = page.locator("#preview-dloss_dw")
    box.fill("-2 * (1 - y_hat) * y_hat * (1 -")
    page.wait_for_selector("#preview-dloss_dw[data-state=error]")
    box.fill("-2 * (1 - y_hat) * y_hat * (1 - y_hat) * x")
    page.wait_for_selector("#preview-dloss_dw[data-state=ok] .katex")
    assert "ŷ" in preview.inner_text() or "y" in preview.inner_text()
    s.screenshot("formula-preview")
    page.get_by_role("button", name="Submit answer").click()
    s.wait_graded()
    assert page.locator("#result [data-score]").inner_text() == "Score: 100%"


def test_code_answer_in_the_editor(session: Session) -> None:
    s, page = session, session.page
    s.sign_up()
    s.go("/exercises/sigmoid-neuron-code")
    page.wait_for_selector("html[data-editor-ready] .cm-editor .cm-content")
    editor = page.get_by_role("textbox", name="Your code")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(SOLUTION)
    assert page.locator(".cm-editor .tok-keyword").count() >= 2  # highlighted as Python
    s.screenshot("code-editor")
    page.get_by_role("button", name="Submit answer").click()
    s.wait_graded()
    assert page.locator("#result [data-score]").inner_text() == "Score: 100%", page.locator(
        "#result"
    ).inner_text()


def _course(stack: Stack, feedback: str = "immediate") -> str:
    """A course with an assignment on the sigmoid neuron, due in a week; its join code."""
    with session_scope(stack.env["DATABASE_URL"]) as db:
        teacher = create_user(
            db, f"teacher-{id(db)}-{feedback}@example.test", "teach-autograd", "instructor"
        )
        course = create_course(db, teacher, f"AUTOGRAD-{feedback}", "Autograd from scratch")
        create_assignment(
            db,
            course,
            [ItemSpec("sigmoid-neuron"), ItemSpec("sigmoid-neuron-formula")],
            title="Week 1: the chain rule",
            due_at=utcnow() + timedelta(days=7),
            feedback=feedback,
        )
        return rotate_join_code(db, course)


def test_join_course_by_code_and_assignment_progress(session: Session, stack: Stack) -> None:
    s, page = session, session.page
    code = _course(stack)
    s.sign_up()
    page.get_by_role("link", name="Join a course").first.click()
    page.get_by_label("Course code").fill("not-a-code")
    page.get_by_role("button", name="Join").click()
    assert "no course has this join code" in page.locator(".flash.error").inner_text()
    # The form page answered 404, which Chromium logs; that one console line is expected.
    assert [e for e in s.errors if "404" not in e] == []
    s.errors.clear()
    page.get_by_label("Course code").fill(code.lower())
    page.get_by_role("button", name="Join").click()
    page.wait_for_url(stack.base_url + "/")
    card = page.locator("[data-assignment]")
    assert "Week 1: the chain rule" in card.inner_text() and "due" in card.inner_text()
    assert card.locator("progress").get_attribute("value") == "0"

    card.get_by_role("link", name="Gradients of a single sigmoid neuron").click()
    page.wait_for_selector("html[data-portal-ready]", state="attached")
    assert "Week 1: the chain rule" in page.locator(".assignment-banner").inner_text()
    truth = oracle(params_on_page(s))
    for name in ("w", "b", "x"):
        page.get_by_label(f"∂L/∂{name}").fill(f"{truth[name]:.6e}")
    page.get_by_role("button", name="Submit answer").click()
    s.wait_graded()
    s.go("/")
    card = page.locator("[data-assignment]")
    assert card.locator("progress").get_attribute("value") == "1"
    assert "score 50%" in card.inner_text()
    s.screenshot("dashboard-course")


@pytest.mark.parametrize("session", [(390, 844)], indirect=True)
def test_phone_width_and_keyboard_only(session: Session) -> None:
    s, page = session, session.page
    s.sign_up()
    s.go("/exercises/tanh-neuron")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than a phone"
    s.screenshot("exercise-phone")
    # Keyboard only: the skip link comes first, then the answer is typed and sent with Enter.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    first = page.locator("#answer-form input[type=text]").first
    first.focus()
    page.keyboard.type("1e-3")
    page.keyboard.press("Enter")
    s.wait_graded()
    assert page.locator("#result .part-result").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


HOSTILE = "window.__pwned = 1"


def test_exercise_text_cannot_run_script(session: Session, stack: Stack) -> None:
    base = next(e for e in load_builtin_catalog() if e.slug == "sigmoid-neuron")
    data = base.model_dump(mode="json")
    data.update(
        slug="hostile-text",
        title="Hostile <script>window.__pwned = 1</script> title",
        statement=(
            f'<script>{HOSTILE}</script> <img src=x onerror="{HOSTILE}">\n\n'
            f"[click me](javascript:{HOSTILE}) and $\\href{{javascript:{HOSTILE}}}{{x}}$\n\n"
            f'<iframe src="javascript:{HOSTILE}"></iframe>'
        ),
    )
    data["parts"][0]["label"] = f'<svg onload="{HOSTILE}">w</svg> $w$'
    with session_scope(stack.env["DATABASE_URL"]) as db:
        upsert_exercise(db, ExerciseSpec.model_validate(data))
    s, page = session, session.page
    s.sign_up()
    s.go("/exercises/hostile-text")
    page.locator(".statement .katex").first.wait_for()
    assert page.evaluate("window.__pwned") is None
    statement = page.locator(".statement .prose")
    assert "<script>" in statement.inner_text()  # shown as text, not run
    assert statement.locator("script, img, iframe, a[href^='javascript']").count() == 0
    assert page.locator("#answer-form svg").count() == 0
    s.screenshot("hostile-text")
    # Clicking what KaTeX drew for \href runs nothing either.
    statement.locator(".katex").last.click()
    assert page.evaluate("window.__pwned") is None


def test_an_exam_hides_its_feedback_live_and_closes_practice(
    session: Session, stack: Stack
) -> None:
    s, page = session, session.page
    code = _course(stack, feedback="after_due")
    s.sign_up()
    s.go("/join")
    page.get_by_label("Course code").fill(code)
    page.get_by_role("button", name="Join").click()
    page.wait_for_url(stack.base_url + "/")
    card = page.locator("[data-assignment]")
    assert "feedback after the due date" in card.inner_text()
    card.get_by_role("link", name="Gradients of a single sigmoid neuron").click()
    page.wait_for_selector("html[data-portal-ready]", state="attached")
    assert "practise outside" not in page.locator(".assignment-banner").inner_text()
    truth = oracle(params_on_page(s))
    for name in ("w", "b", "x"):
        page.get_by_label(f"∂L/∂{name}").fill(f"{truth[name]:.6e}")
    page.get_by_role("button", name="Submit answer").click()
    s.wait_graded()
    # Swapped in live when grading ends: the status, and nothing of the verdict.
    result = page.locator("#result")
    assert result.get_attribute("data-status") == "graded"
    assert result.locator("[data-feedback-hidden]").count() == 1
    assert result.locator("[data-score], .part-result, svg").count() == 0
    assert page.locator("#history [data-score-cell]").all_inner_texts() == ["hidden"]
    s.screenshot("exam-feedback-hidden")

    # Practice on the same exercise would tell whether the exam answer is right: refused.
    s.go("/exercises/sigmoid-neuron")
    assert "Week 1: the chain rule" in page.locator("[data-practice-closed]").inner_text()
    page.get_by_label("∂L/∂w").fill("0.5")
    page.get_by_role("button", name="Submit answer").click()
    page.wait_for_selector("html[data-portal-ready]", state="attached")
    refusal = page.locator("#answer-form [role=alert]")
    assert "whose feedback is hidden" in refusal.inner_text()
    assert page.get_by_label("∂L/∂w").input_value() == "0.5"  # the answer is kept
    s.screenshot("exam-practice-closed")
    # The refused form answered 409, which Chromium logs; that one console line is expected.
    assert [e for e in s.errors if "409" not in e] == []
    s.errors.clear()
    page.locator("[data-practice-closed] a").click()
    page.wait_for_selector("html[data-portal-ready]", state="attached")
    assert "Week 1: the chain rule" in page.locator(".assignment-banner").inner_text()
