"""Regrade jobs the broker lost are sent again by the sweeper, and a regrade delivered twice
(or sent again while the first delivery still runs) counts and records each submission once.

Every test runs on SQLite and on PostgreSQL, with the fixtures of test_grading.py.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from service.assignments import ItemSpec, create_assignment
from service.background import REGRADE_TASK
from service.config import Settings
from service.courses import create_course, enrol
from service.coursework import submit_to_assignment
from service.data.models import (
    Course,
    CourseRole,
    JobStatus,
    RegradeAttempt,
    RegradeJob,
    Submission,
    SubmissionStatus,
    SubmissionVerdict,
    User,
    utcnow,
)
from service.data.session import session_scope
from service.regrade import start_regrade, target_ids
from service.users import create_user
from tests.worker.test_grading import NEURON, WRONG, Hold, pg_database, settings  # noqa: F401
from worker import grading, regrading
from worker.sandbox.errors import SandboxError
from worker.sweeper import sweep

ANSWERS = 6
PASSWORD = "correct-horse"
GRACE = 60.0  # seconds: both of the sweeper's grace periods in these tests


@dataclass(frozen=True)
class Work:
    """A course with an assignment and a learner's graded answers to it."""

    url: str
    course_id: int
    instructor_id: int
    assignment_id: int
    ids: list[int]


@pytest.fixture
def work(settings: Settings) -> Work:  # noqa: F811
    url, tag = settings.database_url, uuid.uuid4().hex[:8]
    with session_scope(url) as db:
        instructor = create_user(
            db, f"instructor-{tag}@example.test", "correct-horse", "instructor"
        )
        learner = create_user(db, f"learner-{tag}@example.test", "correct-horse")
        course = create_course(db, instructor, f"regrade-{tag}", "Regrades")
        enrol(db, course, learner, CourseRole.LEARNER)
        assignment = create_assignment(db, course, [ItemSpec(NEURON)], title="Week 1")
        ids = [
            submit_to_assignment(db, Hold(), learner, assignment, NEURON, WRONG).id
            for _ in range(ANSWERS)
        ]
        made = Work(url, course.id, instructor.id, assignment.id, ids)
    assert set(grading.grade_batch(url, ids).values()) == {"graded"}
    return made


class Lost:
    """A broker that takes every batch and then loses it (a restart without persistence)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[int]]] = []

    def send(self, task: str, args: list[Any], queue: str) -> bool:
        assert task == REGRADE_TASK
        self.sent.append((args[0], list(args[1])))
        return True


class Recorder:
    """What the sweeper publishes, by task."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], str]] = []

    @contextmanager
    def producer_or_acquire(self) -> Iterator[object]:
        yield object()

    def send_task(self, name: str, args: list[Any], queue: str, **_: Any) -> None:
        self.sent.append((name, list(args), queue))

    def regrades(self) -> dict[int, list[int]]:
        """Submission ids re-sent per job."""
        found: dict[int, list[int]] = {}
        for name, args, _ in self.sent:
            if name == REGRADE_TASK:
                found.setdefault(args[0], []).extend(args[1])
        return found


def start(work: Work, runner: Any) -> int:
    """A regrade of the whole assignment, as the API starts it; returns the job's id."""
    with session_scope(work.url) as db:
        course, user = db.get(Course, work.course_id), db.get(User, work.instructor_id)
        assert course is not None and user is not None
        scope, target, rows = target_ids(db, course, assignment_id=work.assignment_id)
        return start_regrade(db, runner, course, user, scope, target, rows).id


def age(url: str, job_ids: list[int], seconds: float) -> None:
    """Pretend the jobs last progressed `seconds` ago."""
    with session_scope(url) as db:
        db.execute(
            sa.update(RegradeJob)
            .where(RegradeJob.id.in_(job_ids))
            .values(updated_at=utcnow() - timedelta(seconds=seconds))
        )


def job_row(url: str, job_id: int) -> tuple[Any, ...]:
    with session_scope(url) as db:
        job = db.get(RegradeJob, job_id)
        assert job is not None
        return (job.status, job.total, job.done, job.failed, job.changed, job.finished_at)


def verdicts(url: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """Every history row of the submissions (ids of rows aside)."""
    with session_scope(url) as db:
        rows = db.execute(
            sa.select(
                SubmissionVerdict.submission_id,
                SubmissionVerdict.number,
                SubmissionVerdict.regrade_job_id,
                SubmissionVerdict.status,
                SubmissionVerdict.score,
                SubmissionVerdict.error,
            )
            .where(SubmissionVerdict.submission_id.in_(ids))
            .order_by(SubmissionVerdict.submission_id, SubmissionVerdict.number)
        ).all()
    return [tuple(r) for r in rows]


def test_the_sweeper_sends_again_regrade_jobs_the_broker_lost(
    settings: Settings,  # noqa: F811
    work: Work,
) -> None:
    url, ids = work.url, work.ids
    lost = Lost()
    queued = start(work, lost)  # its messages lost: still queued, nothing done
    running = start(work, lost)
    # A worker regraded half of it and was killed -9: running, 3 of 6 done.
    regrading.regrade_submissions(url, running, ids[:3])
    assert job_row(url, running)[:3] == (JobStatus.RUNNING, ANSWERS, 3)
    fresh = start(work, lost)  # lost too, but only just now: its message may be on its way
    age(url, [queued, running], 10 * GRACE)
    quick = dataclasses.replace(settings, sweep_after_seconds=GRACE, running_grace_seconds=GRACE)

    broker = Recorder()
    sweep(quick, broker)  # type: ignore[arg-type]
    resent = broker.regrades()
    assert resent.get(queued) == ids
    assert resent.get(running) == ids[3:]  # only the remainder
    assert fresh not in resent
    assert all(queue == "numeric" for name, _, queue in broker.sent if name == REGRADE_TASK)

    again = Recorder()
    sweep(quick, again)  # type: ignore[arg-type]
    assert queued not in again.regrades() and running not in again.regrades(), "marked as sent"

    # What the sweeper sent finishes the jobs (a worker runs the tasks).
    for name, args, _ in broker.sent:
        if name == REGRADE_TASK and args[0] in (queued, running):
            regrading.regrade_submissions(url, *args)
    for job in (queued, running):
        status, total, done, failed, _, finished_at = job_row(url, job)
        assert (status, total, done, failed) == (JobStatus.DONE, ANSWERS, ANSWERS, 0)
        assert finished_at is not None
    assert job_row(url, fresh)[:3] == (JobStatus.QUEUED, ANSWERS, 0)
    # One history row per submission for each job (and the original grading).
    rows = verdicts(url, ids)
    for job in (queued, running):
        assert sorted(r[0] for r in rows if r[2] == job) == ids
    assert [r[0] for r in rows if r[2] is None] == ids


def test_a_job_whose_every_submission_is_settled_is_finished_by_the_sweeper(
    settings: Settings,  # noqa: F811
    work: Work,
) -> None:
    url, ids = work.url, work.ids
    lost = Lost()
    job = start(work, lost)
    regrading.regrade_submissions(url, job, ids)
    # As if the worker died after the last regrade, before it marked the job done (as the
    # code before this test did in a transaction of its own).
    with session_scope(url) as db:
        db.execute(
            sa.update(RegradeJob)
            .where(RegradeJob.id == job)
            .values(status=JobStatus.RUNNING, finished_at=None)
        )
    age(url, [job], 10 * GRACE)
    broker = Recorder()
    quick = dataclasses.replace(settings, sweep_after_seconds=GRACE, running_grace_seconds=GRACE)
    sweep(quick, broker)  # type: ignore[arg-type]
    assert job not in broker.regrades(), "nothing left to send"
    status, total, done, _, _, finished_at = job_row(url, job)
    assert (status, total, done) == (JobStatus.DONE, ANSWERS, ANSWERS) and finished_at is not None


def _prepare_outcomes(work: Work, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the job started: one answer's verdict is wrong (the regrade changes it), one's
    regrade hits a grading defect (failed), one is being graded again when its turn comes
    (passed over)."""
    url, ids = work.url, work.ids
    with session_scope(url) as db:
        db.execute(sa.update(Submission).where(Submission.id == ids[1]).values(score=1.0))
        # No path makes a graded submission gradable again today; if one ever does, its
        # regrade is passed over (its grading uses the current code) and counted once.
        db.execute(
            sa.update(Submission)
            .where(Submission.id == ids[2])
            .values(status=SubmissionStatus.RUNNING)
        )
    real = regrading._judge

    def judge(target: Any) -> Any:
        if target.submission_id == ids[3]:
            raise ZeroDivisionError("a bug in a grader")
        return real(target)

    monkeypatch.setattr(regrading, "_judge", judge)


EXPECTED = (JobStatus.DONE, ANSWERS, ANSWERS - 1, 1, 1)  # status, total, done, failed, changed


def test_a_regrade_delivered_twice_counts_and_records_each_submission_once(
    settings: Settings,  # noqa: F811
    work: Work,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, ids = work.url, work.ids
    lost = Lost()
    job = start(work, lost)
    _prepare_outcomes(work, monkeypatch)
    ((job_id, batch),) = lost.sent
    assert (job_id, batch) == (job, ids)

    first = regrading.regrade_submissions(url, job, batch)
    assert first == {"changed": 1, "unchanged": 4, "failed": 1, "skipped": 0}
    once = (job_row(url, job), verdicts(url, ids))
    assert once[0][:5] == EXPECTED and once[0][5] is not None

    # Delivered again (a re-delivery, or the sweeper's copy of a batch that was only slow).
    second = regrading.regrade_submissions(url, job, batch)
    assert second == {"changed": 0, "unchanged": 0, "failed": 0, "skipped": ANSWERS}
    assert (job_row(url, job), verdicts(url, ids)) == once


def test_a_part_delivered_twice_while_the_job_is_open_counts_once(
    settings: Settings,  # noqa: F811
    work: Work,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job still open (other batches to come): the second copy of a batch meets each
    submission's own record, not a finished job."""
    url, ids = work.url, work.ids
    job = start(work, Lost())
    _prepare_outcomes(work, monkeypatch)
    part, rest = ids[:4], ids[4:]  # changed, passed over (running) and failed among the first
    first = regrading.regrade_submissions(url, job, part)
    assert first == {"changed": 1, "unchanged": 2, "failed": 1, "skipped": 0}
    opened = (job_row(url, job), verdicts(url, ids))
    assert opened[0][0] == JobStatus.RUNNING
    again = regrading.regrade_submissions(url, job, part)
    assert again == {"changed": 0, "unchanged": 0, "failed": 0, "skipped": len(part)}
    assert (job_row(url, job)[:5], verdicts(url, ids)) == (opened[0][:5], opened[1])
    regrading.regrade_submissions(url, job, rest)
    assert job_row(url, job)[:5] == EXPECTED


def test_a_regrade_delivered_twice_at_once_counts_each_submission_once(
    settings: Settings,  # noqa: F811
    work: Work,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, ids = work.url, work.ids
    job = start(work, Lost())
    _prepare_outcomes(work, monkeypatch)
    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(10)
            results.append(regrading.regrade_submissions(url, job, ids))
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert job_row(url, job)[:5] == EXPECTED
    # Between them, the two deliveries settled each submission once.
    assert sum(r["skipped"] for r in results) == ANSWERS
    rows = verdicts(url, ids)
    assert sorted(r[0] for r in rows if r[2] == job) == [i for i in ids if i != ids[2]]
    assert [r[0] for r in rows if r[2] is None] == [i for i in ids if i != ids[2]]


class WorkerLost(BaseException):
    """The process dies in the middle of a regrade (kill -9, a crash in native code): nothing
    after the raise runs, as nothing would."""


@pytest.mark.parametrize("fault", [WorkerLost, SandboxError], ids=["worker lost", "sandbox"])
def test_a_regrade_that_fails_every_time_is_given_up_and_the_job_ends(
    settings: Settings,  # noqa: F811
    work: Work,
    monkeypatch: pytest.MonkeyPatch,
    fault: type[BaseException],
) -> None:
    """One submission whose regrade never ends (its worker dies, or the sandbox fails, at each
    try) is tried MAX_REGRADE_ATTEMPTS times, then settled failed with its old verdict; the
    others, one of them after two failed tries, are regraded once each, and the job ends."""
    url, ids = work.url, work.ids
    job = start(work, Lost())
    real = regrading._judge
    tries: dict[int, int] = {}
    flaky = 2  # ids[1] fails its first two tries, then succeeds

    def judge(target: Any) -> Any:
        sid = target.submission_id
        tries[sid] = tries.get(sid, 0) + 1
        if sid == ids[0] or (sid == ids[1] and tries[sid] <= flaky):
            raise fault("lost")
        return real(target)

    monkeypatch.setattr(regrading, "_judge", judge)
    deliveries = 0
    while deliveries < 3 * regrading.MAX_REGRADE_ATTEMPTS:  # each raise: a delivery again
        deliveries += 1
        try:
            counts = regrading.regrade_submissions(url, job, ids)
        except (WorkerLost, SandboxError):
            continue
        break
    # ids[0] failed every try: the first MAX deliveries each ended on it; the next one gave
    # it up without judging it, went on to ids[1] (which failed twice more) and so on.
    assert tries[ids[0]] == regrading.MAX_REGRADE_ATTEMPTS
    assert tries[ids[1]] == flaky + 1
    assert all(tries[i] == 1 for i in ids[2:]), tries
    assert deliveries == regrading.MAX_REGRADE_ATTEMPTS + flaky + 1
    # The last delivery: ids[0] was given up by the 11th (of 13), the rest regraded now.
    assert counts == {"changed": 0, "unchanged": ANSWERS - 1, "failed": 0, "skipped": 1}
    status, total, done, failed, changed, finished_at = job_row(url, job)
    assert (status, total, done, failed, changed) == (JobStatus.DONE, ANSWERS, ANSWERS - 1, 1, 0)
    assert finished_at is not None
    given_up = [r for r in verdicts(url, ids) if r[0] == ids[0] and r[2] == job]
    assert [(r[3], r[4]) for r in given_up] == [(SubmissionStatus.FAILED, None)]
    assert f"given up after {regrading.MAX_REGRADE_ATTEMPTS} tries" in given_up[0][5]
    with session_scope(url) as db:
        kept = db.get(Submission, ids[0])
        assert kept is not None and (kept.status, kept.score) == (SubmissionStatus.GRADED, 0.0)
        # Every try's count is gone with its settlement.
        left = sa.select(sa.func.count()).where(RegradeAttempt.job_id == job)
        assert db.scalar(left) == 0
    # A late copy of the batch changes nothing.
    again = regrading.regrade_submissions(url, job, ids)
    assert again == {"changed": 0, "unchanged": 0, "failed": 0, "skipped": ANSWERS}


def test_a_defect_before_judging_settles_the_submission_failed_at_once(
    settings: Settings,  # noqa: F811
    work: Work,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its exercise or variant cannot be loaded (not a database or sandbox fault): failed
    with the reason in its history on the first try, not retried until the limit."""
    url, ids = work.url, work.ids
    job = start(work, Lost())
    real = regrading._target
    loads: list[int] = []

    def target(db: Any, submission_id: int, against: str) -> Any:
        loads.append(submission_id)
        if submission_id == ids[0]:
            raise LookupError("a missing exercise version")
        return real(db, submission_id, against)

    monkeypatch.setattr(regrading, "_target", target)
    counts = regrading.regrade_submissions(url, job, ids)
    assert counts == {"changed": 0, "unchanged": ANSWERS - 1, "failed": 1, "skipped": 0}
    assert sorted(loads) == sorted(ids)
    assert job_row(url, job)[:5] == (JobStatus.DONE, ANSWERS, ANSWERS - 1, 1, 0)
    failed = [r for r in verdicts(url, ids) if r[0] == ids[0] and r[2] == job]
    assert [(r[3], r[5]) for r in failed] == [
        (SubmissionStatus.FAILED, "regrade failed: a missing exercise version")
    ]
