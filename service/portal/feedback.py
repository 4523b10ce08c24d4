"""What the learner sees of a submission: status, per-part feedback, and the annotated graph.

Everything starts from `service.coursework.submission_view_for`, as in the API, so an
assignment's feedback policy decides here too; where it shows feedback, the portal adds the
learner's own values and autograd's, and the graph with the gradient at every node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from exercises.spec import ExerciseSpec, PartSpec
from service.coursework import submission_view_for
from service.data.models import Submission, SubmissionStatus, User
from service.portal.graph import Graph, add_gradients, annotate, forward_graph


@dataclass(frozen=True)
class Attempt:
    """One submission as its viewer may see it.

    `view` comes from `service.coursework.submission_view_for`, the policy's one door: while
    the assignment hides feedback it has the status but no score, correctness or verdict.
    Templates read the numbers from `view`, never from `submission` (whose columns hold
    everything, hidden or not); `submission` is there for where and when it was answered.
    """

    submission: Submission
    view: dict[str, Any]

    @property
    def hidden(self) -> bool:
        """True while the feedback policy hides this work's verdict from the viewer."""
        return bool(self.view["feedback"] == "hidden")


def attempts_as_seen(db: Session, submissions: Iterable[Submission], viewer: User) -> list[Attempt]:
    """The submissions, each with the view of it that `viewer` may see now."""
    return [Attempt(s, submission_view_for(db, s, viewer)) for s in submissions]


def reveals_answers(submission: Submission, visible: bool) -> bool:
    """Whether autograd's values are shown beside the learner's.

    Once graded, and where the assignment's feedback policy shows feedback at all
    (`service.coursework.submission_view_for`): practice and ordinary homework reveal the
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


def feedback(spec: ExerciseSpec, attempt: Attempt) -> dict[str, Any]:
    """Everything the result panel shows for one submission, as the feedback policy allows.

    Hidden work keeps the view's status and the policy's message, and nothing of the verdict:
    no parts, expected values, diagnoses, grader output or graph with gradients.
    """
    view = dict(attempt.view)
    if attempt.hidden:
        view.update(
            {
                "hidden": True,
                "reveal": False,
                "parts_list": [],
                "graph": None,
                "details": {},
                "diagnosed": [],
            }
        )
        return view
    submission = attempt.submission
    reveal = reveals_answers(submission, True)
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
