"""Turn how a child ended (measured outside it) and the bytes it wrote into a typed CodeRun.

The child's own report is only believed for what it is: raw outputs and an error
message. Timeouts, kills, output limits and resource figures come from the zygote
and from this process. Strings are cleaned (no NUL, no lone surrogate) and
non-finite numbers spelled as strings, so a CodeRun always stores as strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import signal
from dataclasses import dataclass
from typing import Any

from exercises.codejob import CodeRun, RunStatus, SandboxLimits
from worker.sandbox.errors import SandboxError

_CHILD_STATUSES = {"ok", "error", "forbidden", "memory", "output_limit"}
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
JAIL_SETUP_FAILED = 121


@dataclass
class Capture:
    """Bytes read from one of the child's pipes, up to a cap."""

    cap: int
    data: bytearray
    over: bool = False

    def add(self, chunk: bytes) -> None:
        """Keep what fits under the cap; remember if there was more."""
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.over = True
        self.data += chunk[: max(room, 0)]


def clean_text(text: str) -> str:
    """Text safe to store anywhere: no NUL bytes, no lone surrogates."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def clean_data(value: Any) -> Any:
    """JSON data with every string cleaned and every non-finite float spelled as a string."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _NONFINITE[repr(value)]
    if isinstance(value, list):
        return [clean_data(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(key): clean_data(item) for key, item in value.items()}
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_result(raw: bytes) -> dict[str, Any] | None:
    """The child's report if it is well formed, else None (something else wrote to the pipe)."""
    try:
        report = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(report, dict) or report.get("status") not in _CHILD_STATUSES:
        return None
    if not isinstance(report.get("outputs"), list):
        return None
    error, line = report.get("error"), report.get("error_line")
    if not (error is None or isinstance(error, str)):
        return None
    if not (line is None or (type(line) is int and line > 0)):
        return None
    return report


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def decide(
    done: dict[str, Any], limits: SandboxLimits, result: Capture, stdout: Capture, stderr: Capture
) -> CodeRun:
    """The CodeRun for one finished job; raises SandboxError if the jail itself failed."""
    status_word = int(done["wait_status"])
    setup = str(done.get("setup", ""))
    ready, _, start_kb = setup.partition(" ")
    if ready != "ok" and done.get("reason") is None:
        raise SandboxError(f"the sandbox could not set up the jail: {setup or 'no report'}")
    base_kb = int(start_kb) if start_kb.isdigit() else int(done["base_rss_kb"])
    stdout_text = clean_text(stdout.data.decode("utf-8", "replace"))
    stderr_text = clean_text(stderr.data.decode("utf-8", "replace"))
    cpu = float(done["cpu_seconds"])

    def finish(
        status: RunStatus,
        error: str | None,
        outputs: list[Any] | None = None,
        line: int | None = None,
    ) -> CodeRun:
        return CodeRun(
            status,
            outputs or [],
            stdout=stdout_text,
            stderr=stderr_text,
            error=error,
            error_line=line,
            cpu_seconds=round(cpu, 6),
            wall_seconds=round(float(done["wall_seconds"]), 6),
            peak_memory_kb=max(0, int(done["maxrss_kb"]) - base_kb),
        )

    reason = done.get("reason")
    signalled = os.WIFSIGNALED(status_word)
    signum = os.WTERMSIG(status_word) if signalled else 0
    # rusage rounds CPU time down a little against the scheduler clock that RLIMIT_CPU uses
    over_cpu = cpu >= 0.95 * limits.cpu_seconds
    if reason == "wall":
        return finish("timeout", f"your code ran longer than {limits.wall_seconds:g} s")
    if reason == "cpu" or (signum in (signal.SIGKILL, signal.SIGXCPU) and over_cpu):
        message = f"your code used more than {limits.cpu_seconds:g} s of CPU time"
        return finish("timeout", message)
    for name, capture in (
        ("results", result),
        ("printed output", stdout),
        ("error output", stderr),
    ):
        if capture.over:
            message = f"your code's {name} went over the limit of {capture.cap} bytes"
            return finish("output_limit", message)
    if signum == signal.SIGSYS:
        message = "your code made a system call the sandbox does not allow"
        return finish("forbidden", message)
    if signum == signal.SIGXFSZ:
        message = f"your code wrote more than the {limits.file_size_bytes} bytes files may hold"
        return finish("output_limit", message)
    if signalled:
        message = f"your code was stopped by {_signal_name(signum)}"
        return finish("killed", message)
    code = os.WEXITSTATUS(status_word)
    report = parse_result(bytes(result.data)) if result.data else None
    if report is None or code != 0:
        if code == 0 and not result.data:
            message = "your code ended the program (exit code 0) before returning a result"
        elif code != 0:
            message = f"your code ended the program with exit code {code} before returning a result"
        else:
            message = "the sandbox could not read your code's results (something else was written)"
        return finish("error", message)
    error = report.get("error")
    text = None if error is None else clean_text(error)
    return finish(report["status"], text, clean_data(report["outputs"]), report.get("error_line"))
