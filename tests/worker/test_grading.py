"""Batch grading: one claim, one write, each submission judged on its own.

Every test runs on SQLite and on PostgreSQL (a database of this module's own, dropped
afterwards; skipped when no server answers at TEST_PG_ADMIN_URL): the write differs by
database (one constant statement on PostgreSQL, a CASE statement on SQLite).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from service.config import Settings
from service.data.models import Submission, SubmissionStatus
from service.data.session import close_all, get_engine, session_scope
from tests.integration.conftest import PG_ADMIN
from tests.integration.stack import load_database, scratch_database
from tests.support import Factory
from worker import grading

NEURON = "sigmoid-neuron"
WRONG = {"answers": {"w": 1, "b": 1, "x": 1}}


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database with the catalog, for this module's tests."""
    with ExitStack() as cleanup:
        try:
            url = cleanup.enter_context(scratch_database(PG_ADMIN, "gradschool_test", 3))
        except psycopg.OperationalError as err:
            if os.environ.get("CI"):
                raise  # CI has PostgreSQL: its absence is a failure there, not a skip
            pytest.skip(f"no PostgreSQL at {PG_ADMIN}: {err}")
        load_database(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The suite's SQLite settings, or the same on this module's PostgreSQL database."""
    if request.param == "sqlite":
        return settings
    pg_url: str = request.getfixturevalue("pg_database")
    return dataclasses.replace(settings, database_url=pg_url)


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


def _judging_fails(monkeypatch: pytest.MonkeyPatch, submission_id: int, error: Exception) -> Any:
    """Make judging raise `error` for one submission (the others judged as usual); returns the
    real judge."""
    real = grading._judge

    def judge(database_url: str, c: Any, *args: Any) -> Any:
        if c.id == submission_id:
            raise error
        return real(database_url, c, *args)

    monkeypatch.setattr(grading, "_judge", judge)
    return real


def test_a_grading_defect_fails_its_submission_only(
    queued: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queued
    _judging_fails(monkeypatch, ids[2], ZeroDivisionError("a bug in a grader"))
    with pytest.raises(grading.GradingFailed, match=str(ids[2])):
        grading.grade_batch(url, ids)
    rows = _rows(url, ids)
    assert rows[ids[2]].status == SubmissionStatus.FAILED
    assert [rows[i].status for i in ids if i != ids[2]] == [SubmissionStatus.GRADED] * 3


def test_a_database_fault_mid_batch_keeps_what_was_graded_and_is_raised(
    queued: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ids = queued
    real = _judging_fails(
        monkeypatch, ids[2], sa.exc.OperationalError("SELECT 1", {}, Exception("connection lost"))
    )
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


def _steal(url: str, submission_id: int, **values: Any) -> None:
    with session_scope(url) as db:
        db.execute(sa.update(Submission).where(Submission.id == submission_id).values(**values))


def test_the_write_keeps_only_results_whose_claim_holds(queued: tuple[str, list[int]]) -> None:
    url, ids = queued
    token, claimed = grading._claim(url, ids)
    assert [c.id for c in claimed] == ids
    _steal(url, ids[1], claim_token="someone-else")  # a re-delivery re-claimed it
    _steal(url, ids[3], status=SubmissionStatus.FAILED, error="given up")  # the poison guard
    graded_at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    # Keys out of order, nested: the verdict is stored as written, not re-ordered.
    verdict = {"score": 0.5, "parts": [{"zeta": 1, "alpha": {"y": 2, "b": None}}], "a": 'é"'}
    results: dict[int, dict[str, Any]] = {
        sid: {
            "status": SubmissionStatus.GRADED,
            "verdict": verdict,
            "score": 0.5,
            "error": None,
            "graded_at": graded_at,
        }
        for sid in ids[:2]
    }
    results.update(
        {
            sid: {"status": SubmissionStatus.FAILED, "error": "a defect", "graded_at": graded_at}
            for sid in [*ids[2:], 999_999]
        }
    )

    assert grading._finish(url, token, results) == {ids[0], ids[2]}

    with session_scope(url) as db:
        rows = {s.id: s for s in db.scalars(sa.select(Submission).where(Submission.id.in_(ids)))}
        graded, stolen, failed, gave_up = (rows[i] for i in ids)
        assert graded.status == SubmissionStatus.GRADED
        assert graded.verdict == verdict
        assert list(graded.verdict) == ["score", "parts", "a"]
        assert list(graded.verdict["parts"][0]) == ["zeta", "alpha"]
        assert list(graded.verdict["parts"][0]["alpha"]) == ["y", "b"]
        assert (graded.score, graded.error, graded.graded_at) == (0.5, None, graded_at)
        assert graded.updated_at >= graded.started_at
        assert failed.status == SubmissionStatus.FAILED
        assert (failed.verdict, failed.score, failed.error) == (None, None, "a defect")
        assert failed.graded_at == graded_at
        # Not written: the other worker's claim, and the submission failed meanwhile.
        assert (stolen.status, stolen.claim_token, stolen.verdict, stolen.graded_at) == (
            SubmissionStatus.RUNNING,
            "someone-else",
            None,
            None,
        )
        assert (gave_up.status, gave_up.error, gave_up.graded_at) == (
            SubmissionStatus.FAILED,
            "given up",
            None,
        )
    assert grading._finish(url, token, {}) == set()
    assert grading._finish(url, "not-the-token", results) == set()


def test_a_claim_returns_what_grading_needs(queued: tuple[str, list[int]]) -> None:
    url, ids = queued
    token, claimed = grading._claim(url, [ids[2], ids[0], ids[0], 999_999])
    assert [c.id for c in claimed] == [ids[0], ids[2]]  # sorted, duplicates and unknowns gone
    with session_scope(url) as db:
        for c in claimed:
            row = db.get_one(Submission, c.id)
            assert isinstance(c.answer, dict) and c.answer == row.answer
            assert (c.exercise_version_id, c.variant_id, c.queue) == (
                row.exercise_version_id,
                row.variant_id,
                "numeric",
            )
            assert c.created_at == row.created_at and c.created_at.tzinfo is not None
            assert (row.status, row.claim_token, row.grading_attempts) == (
                SubmissionStatus.RUNNING,
                token,
                1,
            )
            assert row.started_at is not None and row.started_at.tzinfo is not None
            assert abs(datetime.now(UTC) - row.started_at) < timedelta(minutes=5)
    assert grading._claim(url, [])[1] == []


# PostgreSQL only: on SQLite the write is a CASE statement whose text depends on the batch.
@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_batches_of_any_size_reuse_the_compiled_statements(
    queued: tuple[str, list[int]],
) -> None:
    url, ids = queued
    assert url.startswith("postgresql")
    close_all()  # a new engine, whose compiled cache earlier tests have not filled
    assert grading.grade_batch(url, ids[:1]) == {ids[0]: "graded"}  # compiles the batch path
    cache = get_engine(url)._compiled_cache
    assert cache is not None
    compiled = len(cache)
    assert grading.grade_batch(url, ids[1:3]) == dict.fromkeys(ids[1:3], "graded")
    assert grading.grade_batch(url, ids[3:]) == dict.fromkeys(ids[3:], "graded")
    assert len(cache) == compiled
