"""Batch grading: one claim, one write, each submission judged on its own."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from service.data.models import Submission, SubmissionStatus
from service.data.session import session_scope
from tests.support import Factory
from worker import grading

NEURON = "sigmoid-neuron"
WRONG = {"answers": {"w": 1, "b": 1, "x": 1}}


class Hold:
    """A dispatcher that only remembers: submissions stay queued for the test to grade."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def enqueue(self, submission_id: int, queue: str) -> bool:
        self.ids.append(submission_id)
        return True


@pytest.fixture
def queued(app: Flask, factory: Factory) -> tuple[str, list[int]]:
    hold = Hold()
    app.extensions["gradschool.dispatcher"] = hold
    client = app.test_client()
    learner = factory.user_with_token()
    for _ in range(4):
        r = client.post(
            f"/api/v1/exercises/{NEURON}/submissions", json=WRONG, headers=learner["headers"]
        )
        assert r.status_code == 202, r.get_json()
    return app.config["GRADSCHOOL"].database_url, hold.ids


def _rows(url: str, ids: list[int]) -> dict[int, Any]:
    with session_scope(url) as db:
        rows = db.execute(
            sa.select(
                Submission.id, Submission.status, Submission.score, Submission.grading_attempts
            ).where(Submission.id.in_(ids))
        ).all()
    return {r.id: r for r in rows}


def test_a_batch_grades_each_gradable_submission_once(queued: tuple[str, list[int]]) -> None:
    url, ids = queued
    assert grading.grade_batch(url, ids[:1]) == {ids[0]: "graded"}
    outcomes = grading.grade_batch(url, [*ids, 999_999])
    # Already graded and unknown ids are skipped; the rest graded in the one batch.
    assert outcomes == {ids[0]: "skipped", **{i: "graded" for i in ids[1:]}, 999_999: "skipped"}
    rows = _rows(url, ids)
    assert all(r.status == SubmissionStatus.GRADED and r.score == 0.0 for r in rows.values())
    assert [r.grading_attempts for r in rows.values()] == [1, 1, 1, 1]
    assert grading.grade_batch(url, ids) == dict.fromkeys(ids, "skipped")  # a re-delivery


def test_a_claim_taken_over_mid_batch_is_not_overwritten(
    queued: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queued
    real = grading._grade_one

    def grade_then_lose_one(database_url: str, c: Any, *args: Any) -> dict[str, Any]:
        if c.id == ids[1]:  # another worker re-claims this one while we grade it
            with session_scope(url) as db:
                db.execute(
                    sa.update(Submission)
                    .where(Submission.id == c.id)
                    .values(claim_token="someone-else")
                )
        return real(database_url, c, *args)

    monkeypatch.setattr(grading, "_grade_one", grade_then_lose_one)
    outcomes = grading.grade_batch(url, ids)
    assert outcomes[ids[1]] == "skipped"
    assert [outcomes[i] for i in ids if i != ids[1]] == ["graded"] * 3
    assert _rows(url, ids)[ids[1]].status == SubmissionStatus.RUNNING  # the other worker's


def test_a_grading_defect_fails_its_submission_only(
    queued: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queued
    real = grading._judge

    def judge(database_url: str, c: Any, *args: Any) -> Any:
        if c.id == ids[2]:
            raise ZeroDivisionError("a bug in a grader")
        return real(database_url, c, *args)

    monkeypatch.setattr(grading, "_judge", judge)
    with pytest.raises(grading.GradingFailed, match=str(ids[2])):
        grading.grade_batch(url, ids)
    rows = _rows(url, ids)
    assert rows[ids[2]].status == SubmissionStatus.FAILED
    assert [rows[i].status for i in ids if i != ids[2]] == [SubmissionStatus.GRADED] * 3


def test_a_database_fault_mid_batch_keeps_what_was_graded_and_is_raised(
    queued: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queued
    real = grading._judge

    def judge(database_url: str, c: Any, *args: Any) -> Any:
        if c.id == ids[2]:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection lost"))
        return real(database_url, c, *args)

    monkeypatch.setattr(grading, "_judge", judge)
    with pytest.raises(sa.exc.OperationalError):
        grading.grade_batch(url, ids)
    rows = _rows(url, ids)
    assert [rows[i].status for i in ids] == [
        SubmissionStatus.GRADED,
        SubmissionStatus.GRADED,
        SubmissionStatus.RUNNING,  # claimed, not written: the retry re-claims these
        SubmissionStatus.RUNNING,
    ]
    monkeypatch.setattr(grading, "_judge", real)
    assert grading.grade_batch(url, ids) == {
        ids[0]: "skipped",
        ids[1]: "skipped",
        ids[2]: "graded",
        ids[3]: "graded",
    }


def test_a_poison_submission_is_failed_after_too_many_claims(
    queued: tuple[str, list[int]],
) -> None:
    url, ids = queued
    with session_scope(url) as db:
        db.execute(
            sa.update(Submission)
            .where(Submission.id == ids[0])
            .values(grading_attempts=grading.MAX_GRADING_ATTEMPTS)
        )
    outcomes = grading.grade_batch(url, ids[:2])
    assert outcomes == {ids[0]: "skipped", ids[1]: "graded"}
    assert _rows(url, ids[:1])[ids[0]].status == SubmissionStatus.FAILED


def test_a_variants_reference_is_computed_once_per_process(
    queued: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queued  # four answers of one learner: one variant, no reference stored yet
    real = grading.with_graph
    computed: list[str] = []

    def counting(spec: Any, *args: Any) -> Any:
        computed.append(spec.slug)
        return real(spec, *args)

    monkeypatch.setattr(grading, "with_graph", counting)
    grading.grade_batch(url, ids[:2])
    grading.grade_batch(url, ids[2:])
    assert computed == [NEURON]
