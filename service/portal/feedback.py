"""What the learner sees of a submission: status, per-part feedback, and the annotated graph.

The API's submission view stays as it is; the portal adds the learner's own values and
autograd's, and the graph with the gradient at every node, after grading.
"""

from __future__ import annotations

from typing import Any

from exercises.spec import ExerciseSpec, PartSpec
from service.coursework import HIDDEN_MESSAGE
from service.data.models import Submission, SubmissionStatus
from service.portal.graph import Graph, add_gradients, annotate, forward_graph
from service.submissions import submission_view


def reveals_answers(submission: Submission, visible: bool) -> bool:
    """Whether autograd's values are shown beside the learner's.

    Once graded, and where the assignment's feedback policy shows feedback at all
    (`service.coursework.can_see_feedback`): practice and ordinary homework reveal the
    correct gradient at every node, which is the point of the graph; an exam hides it.
    """
    return visible and submission.status == SubmissionStatus.GRADED


def _part_spec(spec: ExerciseSpec, name: str) -> PartSpec | None:
    return next((p for p in spec.parts if p.name == name), None)


def _choice_text(part: PartSpec | None, choice: Any) -> Any:
    if part is None or part.input != "choice":
        return choice
    texts = {c.id: c.text for c in part.choices}
    if isinstance(choice, list):
        return [texts.get(str(c), c) for c in choice]
    return texts.get(str(choice), choice)


def _without(message: str, diagnosis: dict[str, Any] | None) -> str:
    """The part's message without the diagnosis' own text (shown beside it in full)."""
    said = (diagnosis or {}).get("message") or ""
    if said and said in message and message.strip() != said.strip():
        return message.replace(said, "").strip()
    return message


def part_feedback(spec: ExerciseSpec, submission: Submission, reveal: bool) -> list[dict[str, Any]]:
    """Each part's verdict with its label, the learner's value and (if revealed) autograd's."""
    out = []
    for verdict in (submission.verdict or {}).get("parts", []):
        part = _part_spec(spec, verdict["part"])
        out.append(
            {
                "name": verdict["part"],
                "label": part.label if part else verdict["part"],
                "input": part.input if part else "number",
                "wrt": part.wrt if part else None,
                "of": part.of if part else None,
                "correct": verdict["correct"],
                "score": verdict.get("score", 1.0 if verdict["correct"] else 0.0),
                "message": _without(verdict["message"], verdict.get("diagnosis")),
                "diagnosis": verdict.get("diagnosis"),
                "given": _choice_text(part, verdict.get("given")),
                "expected": _choice_text(part, verdict.get("expected")) if reveal else None,
            }
        )
    return out


def feedback_graph(
    spec: ExerciseSpec,
    params: dict[str, Any],
    reference: dict[str, Any] | None,
    parts: list[dict[str, Any]],
    reveal: bool,
) -> Graph | None:
    """The forward graph with autograd's gradient at each node and the learner's answers."""
    graph = forward_graph(spec, params)
    if graph is None:
        return None
    if reveal and reference and isinstance(reference.get("graph"), dict):
        add_gradients(graph, reference["graph"])
    answers = [
        {"part": p["name"], "wrt": p["wrt"], "given": p["given"], "correct": p["correct"]}
        for p in parts
        if p["wrt"] and p["input"] in ("number", "tensor") and p["given"] is not None
    ]
    diagnoses = [p["diagnosis"] for p in parts if p["diagnosis"] and not p["correct"]]
    annotate(graph, answers, diagnoses)
    return graph


def feedback(spec: ExerciseSpec, submission: Submission, visible: bool) -> dict[str, Any]:
    """Everything the result panel shows for one submission (`visible`: the feedback policy)."""
    view = submission_view(submission)
    if not visible:
        hidden_message = HIDDEN_MESSAGE.get(
            submission.assignment.feedback.value if submission.assignment else "", ""
        )
        view.update(
            {
                "hidden": True,
                "score": None,
                "correct": None,
                "parts_list": [],
                "graph": None,
                "message": hidden_message,
                "details": {},
                "diagnosed": [],
            }
        )
        return view
    reveal = reveals_answers(submission, visible)
    parts = part_feedback(spec, submission, reveal)
    graded = submission.status == SubmissionStatus.GRADED
    variant = submission.variant
    view.update(
        {
            "hidden": False,
            "parts_list": parts,
            "reveal": reveal,
            "graph": feedback_graph(spec, variant.params, variant.reference, parts, reveal)
            if graded
            else None,
            "diagnosed": [p for p in parts if p["diagnosis"] and not p["correct"]],
            "details": view.get("details") or {},
        }
    )
    return view
