"""The zygote: a clean-exec'd process that imports torch once and forks one jailed child per job.

It never reads a job or a result: the worker passes it file descriptors, it passes
them on to the child. It forks each child ahead of time (the "spare"), which enters
the whole jail while the zygote waits for the next job; the job's limits and
descriptors are then handed over to it. It enforces the wall-clock and CPU deadlines
with SIGKILL and reports the child's fate (wait status, rusage) back to the worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import os
import select
import shutil
import signal
import site
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from worker.sandbox import heap, linux, protocol, seccomp
from worker.sandbox.jail import ZYGOTE_NAMESPACES, JailPlan
from worker.sandbox.probe import probe, required_missing

_PRELOADED = (
    "worker.sandbox.child",
    "collections",
    "fractions",
    "functools",
    "itertools",
    "math",
    "random",
    "statistics",
    "json",
    "torch.nn.functional",
    "torch.optim",
)
_POLL_SECONDS = 0.05  # how often a running child's CPU clock is checked
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds(pid: int) -> float:
    """The CPU time so far of another process, from its process CPU clock."""
    return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)


def _warm_up() -> None:
    import numpy  # noqa: F401  (pre-imported so learners' imports cost nothing)
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    for name in _PRELOADED:
        importlib.import_module(name)

    x = torch.tensor([0.5, -1.5], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    loss = torch.sigmoid((w * x).sum()) ** 2
    loss.backward()
    torch.autograd.grad(torch.tanh(x).sum(), x)
    torch.optim.SGD([w], lr=0.1).step()
    torch.nn.functional.mse_loss(x, w).backward()
    _warm_up_job_path()


_WARM_UP_SOURCE = """
import torch

def solve(w, b, x):
    w, b, x = (t.clone().requires_grad_(True) for t in (w, b, x))
    with torch.enable_grad():
        torch.sigmoid(w * x + b).sum().backward()
    return {"dw": w.grad, "db": b.grad, "dx": [x.grad.tolist(), 1.5, None, True, "x"]}
"""


def _warm_up_job_path() -> None:
    """Run a fixed, trusted job through the child's own code, many times, here.

    CPython 3.11 rewrites ("quickens") bytecode as it warms up, and torch initialises
    some of its state on first use; done here, neither writes to (and copies) pages in
    every child. This is the zygote's own constant job: it never reads a real one.
    """
    from worker.sandbox import child

    tensor = {"__tensor__": [0.5, -1.0], "dtype": "float64", "requires_grad": False}
    job = {"entry": "solve", "driver": "call", "calls": [{"w": tensor, "b": tensor, "x": tensor}]}
    limits = {"memory_mb": 256, "file_size_bytes": 1 << 20}
    for _ in range(64):
        result = child.run_job({**job, "source": _WARM_UP_SOURCE}, limits)
        child.encode_report(result)
    sys.modules.pop("submission", None)
    child.linecache.cache.pop(child.FILENAME, None)


@dataclass
class _Spare:
    """A child forked ahead of its job: jailed, or on its way there, waiting for the hand-over."""

    pid: int
    pidfd: int
    handover: socket.socket  # the zygote's end; the job's limits and descriptors go through it
    setup_r: int  # the child reports "ok" (or why the jail failed) on this pipe
    workdir: str | None
    base_rss: int  # the zygote's resident size when it forked the child

    def close(self) -> None:
        """Close the zygote's descriptors for this child (after it has been reaped)."""
        self.handover.close()
        for fd in (self.pidfd, self.setup_r):
            os.close(fd)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


class Zygote:
    """The zygote's state: its control socket, jail plan, spare child and kept descriptors."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.sock = socket.socket(fileno=int(config["ctrl_fd"]))
        self.insecure = bool(config["insecure"])
        features = probe(int(config["uid"]))
        self.features = features
        self.missing = required_missing(features)
        _warm_up()
        if len(os.listdir("/proc/self/task")) != 1:
            raise RuntimeError("the zygote must be single-threaded before it forks")
        # Opened or read before the pivot: the jail has no host /proc.
        self.devnull = os.open("/dev/null", os.O_RDWR)
        self.statm = os.open("/proc/self/statm", os.O_RDONLY)
        self.pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
        cap_last = linux.last_capability()
        self.command_line = linux.command_line_area()
        namespaces = not self.missing or self._all(features, "net", "mount", "ipc", "uts")
        if namespaces:
            try:
                from worker.sandbox.jailfs import build_root

                prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
                keep = [*config["keep"], *prefixes, *site.getsitepackages()]
                build_root(int(config["uid"]), keep, config["hide"])
                # Network, UTS and IPC namespaces are the zygote's, shared by its children
                # one after another (docs/SANDBOX.md says why that is safe).
                linux.unshare(ZYGOTE_NAMESPACES)
            except OSError as exc:
                namespaces = False
                self.missing.append(f"jail root filesystem and namespaces ({exc})")
        if not namespaces and not features["python_readable"]["ok"]:
            detail = features["python_readable"]["detail"]
            self.missing.append(f"lazy imports by learner code ({detail})")
        self.plan = JailPlan(
            uid=int(config["uid"]),
            namespaces=namespaces,
            pid_namespace=namespaces and bool(features["pid_namespace"]["ok"]),
            drop_privileges=bool(features["setuid"]["ok"]),
            seccomp=bool(features["seccomp"]["ok"]),
            arch=linux.machine(),
            headroom_mb=int(config["headroom_mb"]),
            max_tasks=int(config["max_tasks"]),
            tmpfs_bytes=int(config["tmpfs_bytes"]),
            cap_last=cap_last,
        )
        if self.plan.seccomp and self.plan.pid_namespace:
            linux.prepare_filter(seccomp.build_filter(self.plan.arch, 1))
        # What every child needs, done once here rather than in each child:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.environ.clear()  # allocator knobs were read at start-up; children get only these
        os.environ.update({"TMPDIR": "/tmp", "HOME": "/tmp", "LC_ALL": "C.UTF-8"})
        self.spare: _Spare | None = None
        gc.collect()
        gc.freeze()  # children then never touch (and copy) the zygote's objects while collecting
        heap.drain()  # children's allocations then land side by side (see heap.py)

    @staticmethod
    def _all(features: dict[str, Any], *names: str) -> bool:
        return all(features[f"{name}_namespace"]["ok"] for name in names)

    def sizes(self) -> tuple[int, int]:
        """(virtual size, resident size) of the zygote in bytes."""
        fields = os.pread(self.statm, 128, 0).split()
        return int(fields[0]) * _PAGE, int(fields[1]) * _PAGE

    def serve(self) -> None:
        """Announce readiness, then run jobs until the worker closes the socket."""
        vm, rss = self.sizes()
        protocol.send(
            self.sock,
            {
                "type": "ready",
                "pid": os.getpid(),
                "features": self.features,
                "missing": self.missing,
                "plan": self.plan.__dict__,
                "vm_bytes": vm,
                "rss_bytes": rss,
            },
        )
        try:
            while True:
                if self.spare is None:
                    self.spare = self._fork_spare()
                message, fds = protocol.receive(self.sock)
                if message is None:
                    return
                if message.get("type") == "run" and len(fds) == 4:
                    self.run(message["limits"], fds)
                else:
                    for fd in fds:
                        os.close(fd)
        finally:
            self._discard_spare()

    def _arrange_child_fds(self, handover: int, setup_w: int) -> None:
        sources = [self.devnull, self.devnull, self.devnull, self.devnull, handover, setup_w]
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 200 + i) for i, fd in enumerate(sources)]
        for target, fd in enumerate(high):
            os.dup2(fd, target, inheritable=True)
        os.closerange(len(high), 1 << 20)

    def _fork_spare(self) -> _Spare:
        """Fork the next job's child; it enters the jail and waits for the hand-over."""
        setup_r, setup_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        workdir = None if self.plan.namespaces else tempfile.mkdtemp(prefix="gradschool-job-")
        if workdir is not None and self.plan.drop_privileges:
            os.chown(workdir, self.plan.uid, self.plan.uid)
        vm, rss = self.sizes()
        if self.plan.pid_namespace:
            linux.unshare(linux.CLONE_NEWPID)  # only the next child enters it, as its PID 1
        try:
            pid = linux.fork_without_python_hooks()
            if pid == 0:
                try:
                    # Not a zygote: tools that look for zygotes by command line skip it.
                    linux.rename_command_line(self.command_line, b"gradschool-sandbox-child")
                    handover = theirs.fileno()
                    for sock in (self.sock, ours, theirs):
                        sock.detach()  # their numbers may be reused below; never close them
                    self._arrange_child_fds(handover, setup_w)
                    from worker.sandbox.child import serve

                    serve(self.plan, vm, workdir)
                finally:
                    os._exit(122)
        finally:
            if self.plan.pid_namespace:
                linux.setns(self.pidns, linux.CLONE_NEWPID)  # back to forking into our own
        os.close(setup_w)
        theirs.close()
        return _Spare(pid, os.pidfd_open(pid), ours, setup_r, workdir, rss)

    def _take_spare(self) -> _Spare:
        """The spare, alive (one found dead while idle is reaped and replaced)."""
        spare = self.spare or self._fork_spare()
        self.spare = None
        if select.select([spare.pidfd], [], [], 0)[0]:  # readable: it has exited
            os.wait4(spare.pid, 0)
            spare.close()
            spare = self._fork_spare()
        return spare

    def _discard_spare(self) -> None:
        spare, self.spare = self.spare, None
        if spare is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(spare.pidfd, signal.SIGKILL)
            os.wait4(spare.pid, 0)
            spare.close()

    def run(self, limits: dict[str, Any], fds: list[int]) -> None:
        """Hand one job to the spare child, supervise it, report how it ended."""
        spare = self._take_spare()
        started = time.monotonic()
        try:
            protocol.send(spare.handover, {"limits": limits}, fds)
        except OSError:
            pass  # it has just died; wait4 below says how
        finally:
            # Before the next spare is forked: it must never hold this job's descriptors.
            for fd in fds:
                os.close(fd)
            spare.handover.close()
        protocol.send(self.sock, {"type": "started"})
        # The next job's child is forked and jails itself now, while this one runs; it
        # gets nothing until this one is dead and reaped (docs/SANDBOX.md).
        try:
            self.spare = self._fork_spare()
        except OSError:
            self.spare = None  # tried again before the next job
        reason, setup = self._supervise(spare, started, limits)
        _pid, status, usage = os.wait4(spare.pid, 0)
        wall = time.monotonic() - started
        while chunk := os.read(spare.setup_r, 4096):
            setup += chunk[: 8192 - len(setup)]
        spare.close()
        protocol.send(
            self.sock,
            {
                "type": "done",
                "wait_status": status,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
                "base_rss_kb": spare.base_rss // 1024,
                "wall_seconds": wall,
                "reason": reason,
                "setup": setup.decode(errors="replace"),
                "minflt": usage.ru_minflt,
                "majflt": usage.ru_majflt,
            },
        )

    def _supervise(
        self, spare: _Spare, started: float, limits: dict[str, Any]
    ) -> tuple[str | None, bytes]:
        pid, pidfd, setup_r = spare.pid, spare.pidfd, spare.setup_r
        poller = select.poll()
        for fd in (pidfd, self.sock.fileno(), setup_r):
            poller.register(fd, select.POLLIN)
        deadline = started + float(limits["wall_seconds"])
        cpu_limit = float(limits["cpu_seconds"])
        reason: str | None = None
        setup = b""

        def kill(why: str) -> None:
            nonlocal reason
            if reason is None:
                reason = why
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kill("wall")
            wait = _POLL_SECONDS if reason is None else 1.0
            for fd, _event in poller.poll(max(0.0, min(remaining, wait)) * 1000):
                if fd == pidfd:
                    return reason, setup
                if fd == setup_r:
                    chunk = os.read(setup_r, 4096)
                    setup += chunk[: 8192 - len(setup)]
                    if not chunk:
                        poller.unregister(setup_r)
                else:
                    message, extra = protocol.receive(self.sock)
                    for stray in extra:
                        os.close(stray)
                    if message is None:  # the worker is gone: so are we
                        kill("worker gone")
                        os.wait4(pid, 0)
                        sys.exit(0)
                    if message.get("type") == "kill":
                        kill(str(message.get("reason", "request")))
            if reason is None:
                try:
                    if _cpu_seconds(pid) > cpu_limit:
                        kill("cpu")
                except OSError:
                    pass  # it has just exited; the pidfd says so on the next poll


def main(config: dict[str, Any]) -> None:
    """Entry point of the zygote process (see host.launch_command)."""
    Zygote(config).serve()
