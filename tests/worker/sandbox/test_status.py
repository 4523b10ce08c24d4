"""Readiness report, refusal without kernel features, and the insecure development mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from worker.sandbox import sandbox_status

WITHOUT_SYS_ADMIN = """
import json, logging, sys
from exercises.codejob import CodeJob, SandboxLimits
from worker.sandbox import Sandbox, SandboxUnavailable
logging.basicConfig(stream=sys.stdout, format="LOG %(levelname)s %(message)s")
try:
    Sandbox(SandboxLimits())
    refused = None
except SandboxUnavailable as exc:
    refused = exc.missing
box = Sandbox(SandboxLimits(), insecure_dev_mode=True)
source = "import socket\\ndef f():\\n    socket.socket()\\n"
run = box.run(CodeJob(source, "f", "call", [{}]))
box.close()
print(json.dumps({"refused": refused, "status": run.status}))
"""


def test_status_reports_every_feature_here() -> None:
    status = sandbox_status()
    assert status["secure"] is True and status["missing"] == [] and status["usable"]
    for name in ("net_namespace", "pid_namespace", "seccomp", "setuid", "private_tmpfs"):
        assert status["features"][name]["ok"], name


@pytest.mark.skipif(
    shutil.which("setpriv") is None and not os.environ.get("CI"),
    reason="needs util-linux setpriv (in CI its absence is a failure)",
)
def test_refuses_without_cap_sys_admin_unless_insecure_dev_mode() -> None:
    done = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", sys.executable, "-c", WITHOUT_SYS_ADMIN],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    report = json.loads(lines[-1])
    assert report["refused"] and any(m.startswith("net_namespace") for m in report["refused"])
    assert report["status"] == "forbidden"  # seccomp still applies without namespaces
    assert sum("LOG WARNING running untrusted code WITHOUT" in line for line in lines) == 1
