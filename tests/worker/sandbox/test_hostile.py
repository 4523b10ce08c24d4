"""Every hostile program gets a clean status, the zygote survives, and the next job is right."""

from __future__ import annotations

import os

import pytest

from exercises.codejob import CodeJob
from tests.worker.sandbox.conftest import MAXIMA, assert_normal_run, normal_job
from tests.worker.sandbox.hostile_programs import HOSTILE, Hostile
from worker.sandbox import Sandbox


def test_the_suite_covers_every_threat_line() -> None:
    assert {h.threat_line for h in HOSTILE} == {1, 2, 3, 4, 5, 6, 7}
    assert len(HOSTILE) >= 40
    assert len({h.id for h in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.id for h in HOSTILE])
def test_hostile_program(sandbox: Sandbox, hostile: Hostile) -> None:
    zygote = sandbox.zygote_pid
    run = sandbox.run(CodeJob(hostile.source, "solve", "call", [{}], MAXIMA))
    assert run.status in hostile.expected, run
    if hostile.extra_check is not None:
        problem = hostile.extra_check(run.to_dict())
        assert problem is None, (problem, run)
    assert run.status == "ok" or run.error, "every failure carries a message"
    assert sandbox.zygote_pid == zygote and zygote is not None
    os.kill(zygote, 0)  # still alive
    assert_normal_run(sandbox.run(normal_job()))
