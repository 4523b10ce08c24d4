"""kill -9 of grading workers mid-backlog, with every message delivered twice: graded once each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults.scenarios import worker_kills
from tests.integration.faults.servers import PrivateRedis


@pytest.mark.integration
def test_killed_workers_lose_nothing_and_grade_each_submission_once(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    report = worker_kills(tmp_path, database_url, private_redis, submissions=120)
    figures = report.tally
    context = f"{report.tally}\n{report.notes}\n{report.logs}"
    assert report.codes() == {202: 120}, context
    # Every fault struck while submissions were still waiting or being graded.
    assert all(n > 0 for n in report.notes["ungraded at each fault"]), context
    assert report.settled, context
    assert figures.submissions == figures.rows == 120, context
    assert figures.lost == 0 and figures.wrong == 0, context
    assert figures.graded == 120, context
    # The database's own record: one result written per submission, despite duplicates and kills.
    assert figures.duplicated == 0 and figures.result_writes == 120, context
