"""The process-wide sandbox of a worker process, and the readiness report."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import threading
from functools import lru_cache
from typing import Any

from worker.sandbox.errors import SandboxError
from worker.sandbox.host import Sandbox, launch_command, zygote_environment
from worker.sandbox.settings import settings_from_env

_lock = threading.Lock()
_instance: Sandbox | None = None
_owner_pid = 0


def get_sandbox() -> Sandbox:
    """This worker process's Sandbox, started on first use (a forked process gets its own)."""
    global _instance, _owner_pid
    with _lock:
        if _instance is None or _owner_pid != os.getpid():
            settings = settings_from_env(os.environ)
            _instance = Sandbox(settings.maxima, settings.insecure_dev_mode, settings=settings)
            _owner_pid = os.getpid()
        return _instance


def close_sandbox() -> None:
    """Stop this process's sandbox, if it started one (also run at interpreter exit)."""
    global _instance
    with _lock:
        box, _instance = _instance, None
        if box is not None and _owner_pid == os.getpid():
            box.close()  # a forked process must not stop its parent's zygote


atexit.register(close_sandbox)


@lru_cache(maxsize=4)
def _probe(uid: int) -> dict[str, Any]:
    command = launch_command("worker.sandbox.probe", {"uid": uid})
    done = subprocess.run(
        command, env=zygote_environment(), capture_output=True, timeout=60, cwd="/", check=False
    )
    if done.returncode != 0:
        raise SandboxError(
            f"the sandbox probe failed: {done.stderr.decode(errors='replace')[-500:]}"
        )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def sandbox_status() -> dict[str, Any]:
    """Which isolation features the kernel offers here: {"secure", "missing", "features", ...}."""
    settings = settings_from_env(os.environ)
    report = dict(_probe(settings.uid))
    report["insecure_dev_mode"] = settings.insecure_dev_mode
    report["usable"] = report["secure"] or settings.insecure_dev_mode
    return report
