"""The worker's side: start a zygote by a clean exec, send it jobs, collect the runs."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from exercises.codejob import CodeJob, CodeRun, SandboxLimits
from exercises.model import plain
from worker.sandbox import outcome, protocol
from worker.sandbox.errors import SandboxCrashed, SandboxError, SandboxUnavailable
from worker.sandbox.settings import SandboxSettings

logger = logging.getLogger(__name__)

_SANDBOX_DIR = Path(__file__).resolve().parent
# Runs in the fresh interpreter: make `worker` and `worker.sandbox` bare packages so that
# neither the worker's own __init__ (Celery, settings) nor the host side is executed there.
BOOTSTRAP = (
    "import importlib, json, sys, types\n"
    "config = json.loads(sys.argv[1])\n"
    "for name, path in config['packages']:\n"
    "    module = types.ModuleType(name); module.__path__ = [path]; sys.modules[name] = module\n"
    "importlib.import_module(config['main']).main(config)\n"
)
_START_TIMEOUT = 120.0
_GRACE_SECONDS = 10.0  # beyond the wall limit, before the zygote itself is presumed hung
MAX_SOURCE_BYTES = 1024 * 1024


def zygote_environment() -> dict[str, str]:
    """The whole environment of a zygote: allocator and threading knobs, never a secret."""
    return {
        "PYTHONMALLOC": "malloc",  # with the hugetlb tunable: fork+exit ~3 ms instead of ~11
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
        "OPENBLAS_NUM_THREADS": "1",  # numpy's BLAS would start a thread; forking then deadlocks
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LC_ALL": "C.UTF-8",
        "PATH": "/usr/bin:/bin",
    }


def _project_packages() -> list[str]:
    """Directories of this project's packages, hidden from the child wherever they are installed."""
    paths: list[str] = []
    for name in ("worker", "exercises", "service", "migrations"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths.extend(str(p) for p in spec.submodule_search_locations)
    return paths


def launch_command(main: str, extra: dict[str, Any]) -> list[str]:
    """argv for a clean interpreter running `main` with the bootstrap above."""
    config = {
        "main": main,
        "packages": [["worker", str(_SANDBOX_DIR.parent)], ["worker.sandbox", str(_SANDBOX_DIR)]],
        **extra,
    }
    return [sys.executable, "-B", "-s", "-P", "-c", BOOTSTRAP, json.dumps(config)]


class _NotStarted(SandboxCrashed):
    """The zygote was gone before it forked the job's child."""


class Sandbox:
    """One zygote serving jobs one at a time (run() holds a lock; use one Sandbox per core)."""

    def __init__(
        self,
        maxima: SandboxLimits,
        insecure_dev_mode: bool = False,
        *,
        settings: SandboxSettings | None = None,
    ) -> None:
        self.maxima = maxima
        self.insecure_dev_mode = insecure_dev_mode
        self.settings = settings or SandboxSettings(maxima, insecure_dev_mode)
        self.ready: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self.restarts = -1
        # The zygote's report on the last job's child (wait status, rusage incl. page faults)
        self.last_report: dict[str, Any] = {}
        with self._lock:
            self._start()

    @property
    def zygote_pid(self) -> int | None:
        """The zygote's pid, or None when it is not running."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {
            "ctrl_fd": theirs.fileno(),
            "uid": self.settings.uid,
            "headroom_mb": self.settings.headroom_mb,
            "max_tasks": self.settings.max_tasks,
            "tmpfs_bytes": max(2 * self.maxima.file_size_bytes, 1024 * 1024),
            "insecure": self.insecure_dev_mode,
            "keep": [],
            "hide": _project_packages(),
        }
        self._process = subprocess.Popen(
            launch_command("worker.sandbox.zygote", config),
            env=zygote_environment(),
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )
        theirs.close()
        self._sock = ours
        self.restarts += 1
        ready = self._wait_ready()
        self.ready = ready
        missing = list(ready["missing"])
        if missing and not self.insecure_dev_mode:
            self._stop()
            raise SandboxUnavailable(missing)
        if missing:
            logger.warning("code sandbox in INSECURE dev mode, without: %s", "; ".join(missing))

    @property
    def _control(self) -> socket.socket:
        if self._sock is None:
            raise SandboxCrashed("the sandbox zygote is not running")
        return self._sock

    def _wait_ready(self) -> dict[str, Any]:
        sock = self._control
        sock.settimeout(_START_TIMEOUT)
        try:
            message, _fds = protocol.receive(sock)
        except (OSError, ValueError) as exc:
            self._stop()
            raise SandboxError(f"the sandbox zygote did not start: {exc}") from exc
        sock.settimeout(None)
        if message is None or message.get("type") != "ready":
            code = self._process.wait(timeout=10) if self._process is not None else None
            self._stop()
            raise SandboxError(f"the sandbox zygote exited during start-up (exit code {code})")
        return message

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def close(self) -> None:
        """Stop the zygote (it exits when its socket closes)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def run(self, job: CodeJob) -> CodeRun:
        """Run one job in a fresh jailed child; learner faults come back as statuses."""
        body = json.dumps(
            {"source": job.source, "entry": job.entry, "driver": job.driver, "calls": job.calls},
            allow_nan=False,
        ).encode()
        if len(job.source.encode()) > MAX_SOURCE_BYTES:
            return CodeRun("error", [], error=f"the code is longer than {MAX_SOURCE_BYTES} bytes")
        limits = job.limits.clamp(self.maxima)
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                logger.warning("code sandbox zygote is not running; starting a new one")
                self._stop()
                self._start()
            if self.ready["missing"]:
                logger.warning(
                    "running untrusted code WITHOUT: %s (SANDBOX_INSECURE_DEV_MODE)",
                    "; ".join(self.ready["missing"]),
                )
            try:
                return self._run_locked(body, limits)
            except _NotStarted as exc:
                # The zygote died while idle: the job never ran, so it is safe to run it anew.
                logger.warning("code sandbox zygote was gone (%s); restarting it", exc)
                self._kill()
                self._start()
                try:
                    return self._run_locked(body, limits)
                except SandboxCrashed:
                    self._kill()
                    raise
            except SandboxCrashed:
                self._kill()
                raise

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
        self._stop()

    def _run_locked(self, body: bytes, limits: SandboxLimits) -> CodeRun:
        job_fd = os.memfd_create("gradschool-job", os.MFD_CLOEXEC)
        os.write(job_fd, body)
        os.lseek(job_fd, 0, os.SEEK_SET)
        result_r, result_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            message = {"type": "run", "limits": plain(limits)}  # as asdict, without deepcopy
            protocol.send(self._control, message, [job_fd, result_w, out_w, err_w])
        except OSError as exc:
            for fd in (result_r, out_r, err_r):
                os.close(fd)
            raise _NotStarted(f"the sandbox zygote is gone: {exc}") from exc
        finally:
            for fd in (job_fd, result_w, out_w, err_w):
                os.close(fd)
        captures = {
            result_r: outcome.Capture(limits.output_bytes, bytearray()),
            out_r: outcome.Capture(limits.output_bytes, bytearray()),
            err_r: outcome.Capture(limits.output_bytes, bytearray()),
        }
        done = self._collect(captures, limits)
        self.last_report = done
        return outcome.decide(done, limits, captures[result_r], captures[out_r], captures[err_r])

    def _collect(
        self, captures: dict[int, outcome.Capture], limits: SandboxLimits
    ) -> dict[str, Any]:
        sock = self._control
        selector = selectors.DefaultSelector()
        for fd in captures:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + limits.wall_seconds + _GRACE_SECONDS
        done: dict[str, Any] | None = None
        started = kill_sent = False
        try:
            while done is None or selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxCrashed("the sandbox zygote stopped answering")
                for key, _events in selector.select(remaining):
                    if key.fileobj is sock:
                        try:
                            message, fds = protocol.receive(sock)
                        except OSError:
                            message, fds = None, []
                        for fd in fds:
                            os.close(fd)
                        if message is None and not started:
                            raise _NotStarted("the sandbox zygote died before the job started")
                        if message is None:
                            raise SandboxCrashed("the sandbox zygote died during a job")
                        started = True
                        if message.get("type") == "done":
                            done = message
                            selector.unregister(sock)
                            deadline = min(deadline, time.monotonic() + _GRACE_SECONDS)
                        continue
                    fd = int(key.fd)
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        selector.unregister(fd)
                        continue
                    captures[fd].add(chunk)
                    if captures[fd].over and not kill_sent and done is None:
                        protocol.send(sock, {"type": "kill", "reason": "output"})
                        kill_sent = True
        finally:
            selector.close()
            for fd in captures:
                os.close(fd)
        return done if done is not None else {}
