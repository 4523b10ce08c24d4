"""Ten times the workers' capacity at once: backpressure at the configured depth, fast reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults.scenarios import overload
from tests.integration.faults.servers import PrivateRedis

DEPTH = 40
THREADS = 24
RATE = 2  # gradings per second while the burst arrives: the workers' capacity


@pytest.mark.integration
def test_a_burst_beyond_capacity_is_refused_at_the_depth_and_the_rest_graded(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    report = overload(
        tmp_path,
        database_url,
        private_redis,
        submissions=300,
        rate=RATE,
        depth=DEPTH,
        threads=THREADS,
    )
    figures, notes = report.tally, report.notes
    context = f"{figures}\n{notes}\n{report.logs}"
    assert notes["rate limit replies"], context  # the worker's capacity really was capped
    assert notes["times capacity"] >= 10, context
    # Backpressure: refusals, each with Retry-After, and none before the queue could be full.
    assert notes["429"] > 0, context
    assert notes["429 without Retry-After"] == 0, context
    assert notes["429 for another reason"] == 0, context  # e.g. a learner's own rate limit
    assert notes["accepted before first 429"] >= DEPTH, context
    # The queue stopped growing at the depth (give or take the POSTs in flight).
    assert DEPTH <= notes["max queued sampled"] <= DEPTH + THREADS, context
    assert set(report.codes()) == {202, 429}, context
    # Reads stayed fast: with a full queue, and (less so: 2 shared cores) while the web was
    # saturated by the burst's POSTs.
    assert notes["queued after burst"] >= DEPTH // 2, context
    assert notes["GET p95 s, full queue"] < 0.5, context
    assert notes["GETs"] >= 5, context
    assert notes["GET p50 s"] < 1.0 and notes["GET p95 s"] < 2.0, context
    # Everything accepted was graded in the end, once; and the queue takes POSTs again.
    assert report.settled, context
    assert figures.lost == 0 and figures.wrong == 0 and figures.duplicated == 0, context
    assert figures.graded == figures.submissions == figures.rows, context
    assert notes["after burst"] == [202], context
