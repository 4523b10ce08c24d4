"""Regrade jobs whose messages the broker lost (Redis restarted empty; a publish that failed
while it was down) are found by the sweeper and complete, each submission regraded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults.harness import LEARNERS
from tests.integration.faults.scenarios import regrade_broker_loss
from tests.integration.faults.servers import PrivateRedis

PER_LEARNER = 2


@pytest.mark.integration
def test_regrade_jobs_lost_by_the_broker_are_sent_again_and_complete(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    report = regrade_broker_loss(tmp_path, database_url, private_redis, per_learner=PER_LEARNER)
    figures, notes = report.tally, report.notes
    context = f"{figures}\n{notes}\n{report.logs}"
    answers = LEARNERS * PER_LEARNER
    assert report.codes() == {202: answers}, context
    # The fault really lost work: the first job's batches were waiting in Redis when it died;
    # the second job was accepted with Redis down (its batches never reached a broker).
    assert notes["regrade messages in redis before"] > 0, context
    assert notes["regrade POSTs"] == [202, 202], context
    assert report.settled, context
    first, second = notes["jobs"]
    for job in (first, second):
        assert job["total"] == job["done"] == answers and job["failed"] == 0, context
    # The grader bug (every score 1.0) put right once, by whichever job came first.
    assert first["changed"] + second["changed"] == answers, context
    assert figures.graded == answers and figures.wrong == figures.lost == 0, context
    # One history row per submission and job: the original grading, and one per regrade.
    assert notes["history rows per submission and job"] == [(1, 3 * answers)], context
