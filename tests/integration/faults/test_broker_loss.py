"""Redis killed and restarted empty while submissions wait in it: every submission graded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults.scenarios import broker_restarts
from tests.integration.faults.servers import PrivateRedis


@pytest.mark.integration
def test_submissions_lost_by_the_broker_are_found_and_graded(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    report = broker_restarts(
        tmp_path, database_url, private_redis, submissions=100, during_outage=20
    )
    figures, notes = report.tally, report.notes
    context = f"{figures}\n{notes}\n{report.logs}"
    # The fault really lost work: messages were waiting in Redis when it died, none after.
    assert notes["messages lost per restart"][0] > 0, context
    assert notes["keys loaded at restart"] == [0], context
    # With the broker down, a submission is still accepted: the row is the source of truth.
    assert report.codes() == {202: 120}, context
    assert report.settled, context
    assert figures.submissions == figures.rows == 120, context
    assert figures.lost == 0 and figures.wrong == 0 and figures.graded == 120, context
    assert figures.duplicated == 0, context
