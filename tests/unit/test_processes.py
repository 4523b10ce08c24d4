"""The dev supervisor's stop (service/processes.py): nothing it started outlives it."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from service import processes


def test_stop_kills_what_is_left_of_a_group_whose_leader_ignored_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "STOP_SECONDS", 0.5)
    # A leader that ignores SIGTERM with a child of its own, like a web server's main
    # process whose worker processes would keep serving once it is killed.
    leader = subprocess.Popen(
        ["sh", "-c", 'trap "" TERM; sleep 300 & echo $!; wait'],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert leader.stdout is not None
    with leader.stdout:
        child = int(leader.stdout.readline())
    assert psutil.pid_exists(child)
    processes._stop([leader])
    assert leader.returncode is not None
    end = time.monotonic() + 5
    while psutil.pid_exists(child) and time.monotonic() < end:
        if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    gone = not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert gone, "the leader's child outlived the stop"
