"""The child's life after the fork: enter the jail, wait for a job, run it, report.

The zygote forks a child ahead of time (a "spare") and it enters the whole jail
before it can receive anything. File descriptors, arranged by the zygote before
`serve` runs: 0 to 3 /dev/null, 4 the hand-over socket, 5 the setup pipe to the zygote.

When a job comes, the zygote sends its limits (trusted data from the worker) and the
worker's four descriptors over the hand-over socket. The child puts them in place
(1 stdout pipe, 2 stderr pipe, 3 results pipe, 4 the job, a memfd: the socket goes),
lowers its rlimits to the job's, reports "ok" on the setup pipe and closes it, and
only then reads the job.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import linecache
import os
import random
import socket
import sys
import types
from typing import Any, NoReturn

from worker.sandbox import codec, jail
from worker.sandbox.drivers import DRIVERS, LearnerMistake

RESULT_FD, JOB_FD, HANDOVER_FD, SETUP_FD = 3, 4, 4, 5
SETUP_FAILED = 121
FILENAME = "<submission>"
MAX_MESSAGE = 2000
_GRADABLE = "return numbers, lists, dicts or tensors"
_encode_json = json.JSONEncoder(
    allow_nan=False, ensure_ascii=False
).encode  # bound before any learner code


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _stream(fd: int) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(
        io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )


def _safe_text(value: object) -> str:
    try:
        text = str(value)
    except BaseException:  # a learner's __str__ may raise anything, even SystemExit
        return "<the message could not be shown>"
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def _learner_line(exc: BaseException, source_lines: list[str]) -> tuple[int | None, str]:
    line: int | None = None
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == FILENAME:
            line, where = tb.tb_lineno, code.co_name
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        line, where = exc.lineno, ""
    if line is None:
        return None, ""
    text = source_lines[line - 1].strip() if 0 < line <= len(source_lines) else ""
    scope = f", in {where}" if where and where != "<module>" else ""
    return line, f"\n  at line {line}{scope}: {text}"


def classify(exc: BaseException, limits: dict[str, Any], source_lines: list[str]) -> dict[str, Any]:
    """An exception raised by (or through) learner code -> status, message and learner line."""
    name = type.__dict__["__name__"].__get__(type(exc))
    message = _safe_text(exc)
    line, at = _learner_line(exc, source_lines)
    status = "error"
    if isinstance(exc, SyntaxError):
        text = f"{name}: {exc.msg}"
    elif isinstance(exc, LearnerMistake):
        text = message
    elif isinstance(exc, codec.UnencodableResult):
        text = f"your code returned {message}, which cannot be graded ({_GRADABLE})"
    elif isinstance(exc, MemoryError) or "can't allocate memory" in message:
        status = "memory"
        text = f"your code ran out of memory (limit {int(limits['memory_mb'])} MB): {name}"
    elif isinstance(exc, OSError) and exc.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
        status = "forbidden"
        text = f"your code tried something the sandbox does not allow: {name}: {message}"
    elif isinstance(exc, OSError) and exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        status = "output_limit"
        size = int(limits["file_size_bytes"])
        if exc.errno == errno.EFBIG:
            text = f"your code wrote a file larger than the {size} bytes allowed"
        else:
            text = "your code filled the sandbox's small scratch disk (/tmp)"
    elif isinstance(exc, SystemExit):
        text = "your code called exit() (SystemExit) before returning a result"
    else:
        text = f"{name}: {message}" if message else name
    return {"status": status, "error": text + at, "error_line": line}


def run_job(job: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    """Compile and run the learner's source with the job's driver; never raises."""
    source = str(job.get("source", ""))
    lines = source.splitlines()
    outputs: list[Any] = []
    try:
        code = compile(source, FILENAME, "exec", dont_inherit=True)
        linecache.cache[FILENAME] = (len(source), None, [s + "\n" for s in lines], FILENAME)
        module = types.ModuleType("submission")
        sys.modules["submission"] = module
        exec(code, module.__dict__)
        entry = str(job["entry"])
        if entry not in module.__dict__:
            raise LearnerMistake(f"your code does not define `{entry}`")
        driver = DRIVERS[str(job["driver"])]
        for output in driver(entry, module.__dict__[entry], list(job["calls"])):
            outputs.append(output)
    except BaseException as exc:  # learner code may raise anything; it all becomes a status
        return {"outputs": outputs, **classify(exc, limits, lines)}
    return {"status": "ok", "outputs": outputs, "error": None, "error_line": None}


def _resident_kb() -> int:
    """Resident size now, the base from which the job's peak memory is counted."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0


def _failure(status: str, message: str) -> bytes:
    report: dict[str, Any] = {"status": status, "outputs": [], "error": message, "error_line": None}
    return _encode_json(report).encode()


def _read_job() -> dict[str, Any]:
    chunks = []
    while chunk := os.read(JOB_FD, 1 << 20):
        chunks.append(chunk)
    os.close(JOB_FD)
    job = json.loads(b"".join(chunks))
    if not isinstance(job, dict):
        raise ValueError("the job must be a JSON object")
    return job


def encode_report(result: dict[str, Any]) -> bytes:
    """The report as strict JSON, or an error report if the results cannot be encoded."""
    try:
        return _encode_json(result).encode()
    except (ValueError, TypeError, RecursionError) as exc:
        return _failure("error", f"your code's results could not be encoded: {exc}")


def _receive_job() -> dict[str, Any] | None:
    """Wait for the hand-over: the job's limits and descriptors; None if the zygote is gone."""
    handover = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=HANDOVER_FD)
    try:
        data, fds, _flags, _address = socket.recv_fds(handover, 65536, 4)
    finally:
        handover.detach()  # fd 4 is replaced below (or the process ends)
    if not data:
        return None
    if len(fds) != 4:
        raise OSError(0, f"the hand-over brought {len(fds)} descriptors, not 4")
    job, result, out, err = fds
    for fd, target in ((out, 1), (err, 2), (result, RESULT_FD), (job, JOB_FD)):
        os.dup2(fd, target)  # dup2 onto 4 closes the hand-over socket
    for fd in fds:
        os.close(fd)
    limits = json.loads(data)["limits"]
    if not isinstance(limits, dict):
        raise ValueError("the hand-over must carry the job's limits")
    return limits


def serve(plan: jail.JailPlan, base_vm_bytes: int, workdir: str | None) -> NoReturn:
    """Run in the forked child: jail, wait for the job, report setup, run it, write, _exit."""
    random.seed()  # the zygote forks without CPython's at-fork hooks, which would reseed
    try:
        if workdir is not None:
            os.chdir(workdir)
            os.environ.update({"TMPDIR": workdir, "HOME": workdir})
        jail.enter(plan)
    except BaseException as exc:  # report any setup failure to the zygote, never run a job
        os.write(SETUP_FD, f"jail setup failed: {exc!r}".encode()[:4000])
        os._exit(SETUP_FAILED)
    try:
        limits = _receive_job()
        if limits is None:
            os._exit(0)  # the zygote is closing: no job will come
        jail.apply_job_rlimits(plan, limits, base_vm_bytes)
        sys.stdout = _stream(1)
        sys.stderr = _stream(2)
    except BaseException as exc:
        os.write(SETUP_FD, f"jail setup failed: {exc!r}".encode()[:4000])
        os._exit(SETUP_FAILED)
    os.write(SETUP_FD, f"ok {_resident_kb()}".encode())  # before any untrusted byte is read
    os.close(SETUP_FD)
    result = run_job(_read_job(), limits)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # the learner may have broken it: theirs
            stream.flush()
    payload = encode_report(result)
    if len(payload) > int(limits["output_bytes"]):
        size = int(limits["output_bytes"])
        payload = _failure("output_limit", f"your code's results are larger than {size} bytes")
    _write_all(RESULT_FD, payload)
    os._exit(0)
