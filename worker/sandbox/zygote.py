"""The zygote: a clean-exec'd process that imports torch once and forks one jailed child per job.

It never reads a job or a result: the worker passes it file descriptors, it passes
them on to the child. It enforces the wall-clock and CPU deadlines with SIGKILL and
reports the child's fate (wait status, rusage) back to the worker.
"""

from __future__ import annotations

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
from typing import Any

from worker.sandbox import linux, protocol, seccomp
from worker.sandbox.jail import JailPlan
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


class Zygote:
    """The zygote's state: its control socket, jail plan and the descriptors it keeps."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.sock = socket.socket(fileno=int(config["ctrl_fd"]))
        self.insecure = bool(config["insecure"])
        features = probe(int(config["uid"]))
        self.features = features
        self.missing = required_missing(features)
        _warm_up()
        if len(os.listdir("/proc/self/task")) != 1:
            raise RuntimeError("the zygote must be single-threaded before it forks")
        # Opened before the pivot: the jail has no host /proc.
        self.devnull = os.open("/dev/null", os.O_RDWR)
        self.statm = os.open("/proc/self/statm", os.O_RDONLY)
        self.pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
        namespaces = not self.missing or self._all(features, "net", "mount", "ipc", "uts")
        if namespaces:
            try:
                from worker.sandbox.jailfs import build_root

                prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
                keep = [*config["keep"], *prefixes, *site.getsitepackages()]
                build_root(int(config["uid"]), keep, config["hide"])
            except OSError as exc:
                namespaces = False
                self.missing.append(f"jail root filesystem ({exc})")
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
        )
        if self.plan.seccomp:
            seccomp.build_filter(self.plan.arch, 1 if self.plan.pid_namespace else os.getpid())
        gc.collect()
        gc.freeze()  # children then never touch (and copy) the zygote's objects while collecting

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
        while True:
            message, fds = protocol.receive(self.sock)
            if message is None:
                return
            if message.get("type") == "run" and len(fds) == 4:
                self.run(message["limits"], fds)
            else:
                for fd in fds:
                    os.close(fd)

    def _arrange_child_fds(self, fds: list[int], setup_w: int) -> None:
        sources = [self.devnull, fds[2], fds[3], fds[1], fds[0], setup_w]
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 200 + i) for i, fd in enumerate(sources)]
        for target, fd in enumerate(high):
            os.dup2(fd, target, inheritable=True)
        os.closerange(len(high), 1 << 20)

    def _fork(
        self, limits: dict[str, Any], fds: list[int], setup_w: int, workdir: str | None
    ) -> int:
        vm, _rss = self.sizes()
        if self.plan.pid_namespace:
            linux.unshare(linux.CLONE_NEWPID)  # only the next child enters it, as its PID 1
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    self.sock.detach()  # its number may be reused below; never close it twice
                    self._arrange_child_fds(fds, setup_w)
                    from worker.sandbox.child import serve

                    serve(self.plan, limits, vm, workdir)
                finally:
                    os._exit(122)
        finally:
            if self.plan.pid_namespace:
                linux.setns(self.pidns, linux.CLONE_NEWPID)  # back to forking into our own
        return pid

    def run(self, limits: dict[str, Any], fds: list[int]) -> None:
        """Fork the child for one job, supervise it, report how it ended."""
        setup_r, setup_w = os.pipe()
        workdir = None if self.plan.namespaces else tempfile.mkdtemp(prefix="gradschool-job-")
        if workdir is not None and self.plan.drop_privileges:
            os.chown(workdir, self.plan.uid, self.plan.uid)
        _vm, base_rss = self.sizes()
        started = time.monotonic()
        pid = self._fork(limits, fds, setup_w, workdir)
        for fd in [*fds, setup_w]:
            os.close(fd)
        protocol.send(self.sock, {"type": "started"})
        reason, setup = self._supervise(pid, setup_r, started, limits)
        _pid, status, usage = os.wait4(pid, 0)
        wall = time.monotonic() - started
        while chunk := os.read(setup_r, 4096):
            setup += chunk[: 8192 - len(setup)]
        os.close(setup_r)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        protocol.send(
            self.sock,
            {
                "type": "done",
                "wait_status": status,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
                "base_rss_kb": base_rss // 1024,
                "wall_seconds": wall,
                "reason": reason,
                "setup": setup.decode(errors="replace"),
            },
        )

    def _supervise(
        self, pid: int, setup_r: int, started: float, limits: dict[str, Any]
    ) -> tuple[str | None, bytes]:
        pidfd = os.pidfd_open(pid)
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

        try:
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
        finally:
            os.close(pidfd)


def main(config: dict[str, Any]) -> None:
    """Entry point of the zygote process (see host.launch_command)."""
    Zygote(config).serve()
