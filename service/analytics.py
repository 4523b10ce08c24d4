"""Per exercise and part statistics over a course's assignment submissions: attempts, solve
rate, median attempts to solve, the most common wrong answers and diagnoses."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.data.models import (
    Assignment,
    Course,
    Exercise,
    ExerciseVersion,
    Submission,
    SubmissionStatus,
)

TOP = 5
MAX_ANSWER_CHARS = 80


@dataclass
class PartStats:
    """How one part was answered."""

    name: str
    answered: int = 0
    correct: int = 0
    wrong_answers: Counter[str] = field(default_factory=Counter)
    diagnoses: Counter[str] = field(default_factory=Counter)
    diagnosis_messages: dict[str, str] = field(default_factory=dict)


@dataclass
class ExerciseStats:
    """How one exercise went."""

    slug: str
    title: str
    attempts: int = 0
    learners: int = 0
    solved: int = 0
    median_attempts_to_solve: float | None = None
    parts: dict[str, PartStats] = field(default_factory=dict)

    @property
    def solve_rate(self) -> float | None:
        """Learners who solved it / learners who tried it."""
        return self.solved / self.learners if self.learners else None


def _answer_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= MAX_ANSWER_CHARS else text[: MAX_ANSWER_CHARS - 1] + "…"


def course_analytics(
    db: Session, course: Course, *, assignment_id: int | None = None, exercise: str | None = None
) -> list[ExerciseStats]:
    """Statistics per exercise answered in the course's assignments (optionally narrowed)."""
    query = (
        select(Submission, Exercise.slug, Exercise.title)
        .join(ExerciseVersion, Submission.exercise_version_id == ExerciseVersion.id)
        .join(Exercise, ExerciseVersion.exercise_id == Exercise.id)
        .join(Assignment, Submission.assignment_id == Assignment.id)
        .where(Assignment.course_id == course.id, Submission.status == SubmissionStatus.GRADED)
        .order_by(Submission.id)
    )
    if assignment_id is not None:
        query = query.where(Submission.assignment_id == assignment_id)
    if exercise is not None:
        query = query.where(Exercise.slug == exercise)
    stats: dict[str, ExerciseStats] = {}
    tries: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    solved_after: dict[str, dict[int, int]] = defaultdict(dict)
    for submission, slug, title in db.execute(query):
        ex = stats.setdefault(slug, ExerciseStats(slug, title))
        ex.attempts += 1
        tries[slug][submission.user_id] += 1
        if submission.score is not None and submission.score >= 1.0:
            solved_after[slug].setdefault(submission.user_id, tries[slug][submission.user_id])
        answers = (submission.answer or {}).get("answers") or {}
        for part in (submission.verdict or {}).get("parts", []):
            name = part["part"]
            ps = ex.parts.setdefault(name, PartStats(name))
            ps.answered += 1
            if part["correct"]:
                ps.correct += 1
                continue
            given = answers.get(name, part.get("given"))
            if given is not None:
                ps.wrong_answers[_answer_text(given)] += 1
            diagnosis = part.get("diagnosis")
            if diagnosis and diagnosis.get("code"):
                ps.diagnoses[diagnosis["code"]] += 1
                ps.diagnosis_messages.setdefault(diagnosis["code"], diagnosis.get("message", ""))
    for slug, ex in stats.items():
        ex.learners = len(tries[slug])
        ex.solved = len(solved_after[slug])
        if solved_after[slug]:
            ex.median_attempts_to_solve = float(statistics.median(solved_after[slug].values()))
    return sorted(stats.values(), key=lambda s: s.slug)


def as_dict(ex: ExerciseStats) -> dict[str, Any]:
    """Plain data for the API."""
    return {
        "exercise": ex.slug,
        "title": ex.title,
        "attempts": ex.attempts,
        "learners": ex.learners,
        "solved": ex.solved,
        "solve_rate": ex.solve_rate,
        "median_attempts_to_solve": ex.median_attempts_to_solve,
        "parts": [
            {
                "part": p.name,
                "answered": p.answered,
                "correct": p.correct,
                "correct_rate": p.correct / p.answered if p.answered else None,
                "common_wrong_answers": [
                    {"answer": a, "count": n} for a, n in p.wrong_answers.most_common(TOP)
                ],
                "diagnoses": [
                    {"code": c, "count": n, "message": p.diagnosis_messages.get(c, "")}
                    for c, n in p.diagnoses.most_common(TOP)
                ],
            }
            for p in ex.parts.values()
        ],
    }
