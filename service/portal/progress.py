"""A learner's progress: best score per exercise, and mastery per topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exercises.spec import ExerciseSpec
from service.catalog import spec_of
from service.coursework import can_see_feedback
from service.data.models import Exercise, ExerciseVersion, Submission, User
from service.exercise_access import visible_exercises


@dataclass(frozen=True)
class ExerciseProgress:
    """One exercise of the catalog as this learner stands with it."""

    exercise: Exercise
    spec: ExerciseSpec
    attempts: int
    best: float | None  # the best graded score, 0..1

    @property
    def solved(self) -> bool:
        """Some attempt scored full marks."""
        return self.best is not None and self.best >= 1.0

    @property
    def mark(self) -> str:
        """ "solved", "attempted" or ""."""
        return "solved" if self.solved else ("attempted" if self.attempts else "")


@dataclass(frozen=True)
class TopicMastery:
    """How much of one topic the learner has solved."""

    topic: str
    solved: int
    total: int
    best_mean: float  # mean of best scores over the topic's exercises (unattempted count 0)

    @property
    def percent(self) -> int:
        """Mastery as a whole percentage (the mean best score)."""
        return round(100 * self.best_mean)


def catalog_progress(db: Session, user: User) -> list[ExerciseProgress]:
    """Every exercise the user may see (the catalog and their courses' own), with this
    learner's attempt count and best score.

    Every attempt counts as attempted (its status is never hidden), but a score counts only
    where the feedback policy shows it to the learner (`can_see_feedback`): an exam's score
    must not leak through the dashboard's marks and mastery.
    """
    rows = db.execute(
        select(
            ExerciseVersion.exercise_id,
            Submission.id,
            Submission.score,
            Submission.assignment_id,
        )
        .join(Submission, Submission.exercise_version_id == ExerciseVersion.id)
        .where(Submission.user_id == user.id)
    ).all()
    # The policy's answer depends on the assignment, the learner and the viewer (here one
    # and the same), not on the submission: ask once per assignment.
    shown: dict[int | None, bool] = {None: True}
    stats: dict[int, tuple[int, float | None]] = {}
    for exercise_id, submission_id, score, assignment_id in rows:
        if assignment_id not in shown:
            submission = db.get(Submission, submission_id)
            shown[assignment_id] = submission is not None and can_see_feedback(db, submission, user)
        attempts, best = stats.get(exercise_id, (0, None))
        if shown[assignment_id] and score is not None:
            best = score if best is None else max(best, score)
        stats[exercise_id] = (attempts + 1, best)
    items = [
        ExerciseProgress(e, spec_of(e.current_version), *stats.get(e.id, (0, None)))
        for e in visible_exercises(db, user)
    ]
    return sorted(items, key=lambda i: (i.spec.difficulty, i.spec.title))


def topic_mastery(items: list[ExerciseProgress]) -> list[TopicMastery]:
    """Mastery per topic, topics in the order they first appear in the catalog."""
    by_topic: dict[str, list[ExerciseProgress]] = {}
    for item in items:
        for topic in item.spec.topics:
            by_topic.setdefault(topic, []).append(item)
    return [
        TopicMastery(
            topic,
            sum(1 for i in group if i.solved),
            len(group),
            sum(i.best or 0.0 for i in group) / len(group),
        )
        for topic, group in by_topic.items()
    ]


def summary(items: list[ExerciseProgress]) -> dict[str, Any]:
    """Totals for the dashboard's headline."""
    return {
        "solved": sum(1 for i in items if i.solved),
        "attempted": sum(1 for i in items if i.attempts and not i.solved),
        "total": len(items),
    }
