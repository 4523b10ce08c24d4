"""What a freshly forked child does, as root, before it reads any untrusted byte."""

from __future__ import annotations

import math
import os
import resource
import signal
from dataclasses import dataclass

from worker.sandbox import jailfs, linux, seccomp

MIB = 1024 * 1024
CHILD_NAMESPACES = linux.CLONE_NEWNET | linux.CLONE_NEWNS | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS


@dataclass(frozen=True)
class JailPlan:
    """Which defences the zygote found available; each child applies all of them."""

    uid: int
    namespaces: bool  # new network, mount, IPC and UTS namespaces, private /tmp
    pid_namespace: bool  # the zygote forks each child as PID 1 of a new PID namespace
    drop_privileges: bool  # setresuid/setresgid to `uid`, empty groups, no capabilities
    seccomp: bool
    arch: str
    headroom_mb: int  # address space torch needs above the zygote's size
    max_tasks: int  # RLIMIT_NPROC: threads of the sandbox uid
    tmpfs_bytes: int


def _limit(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def apply_rlimits(plan: JailPlan, limits: dict[str, float], base_vm_bytes: int) -> None:
    """CPU, address space, file size, open files, tasks; no core dumps, locked memory, queues."""
    # soft == hard: at the limit the kernel sends SIGKILL, which PID 1 cannot ignore
    # (SIGXCPU, sent at a soft limit below the hard one, is ignored by a namespace's init).
    # A backstop one second past the limit: the zygote's CPU clock check normally kills first.
    _limit(resource.RLIMIT_CPU, math.ceil(limits["cpu_seconds"]) + 1)
    memory = base_vm_bytes + (plan.headroom_mb + int(limits["memory_mb"])) * MIB
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    _limit(resource.RLIMIT_NOFILE, max(8, int(limits["open_files"])))
    _limit(resource.RLIMIT_NPROC, plan.max_tasks)
    for which in (resource.RLIMIT_CORE, resource.RLIMIT_MEMLOCK, resource.RLIMIT_MSGQUEUE):
        _limit(which, 0)


def _drop_privileges(uid: int) -> None:
    linux.drop_bounding_capabilities()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # leaving uid 0 clears the permitted and effective capabilities
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(0, "could not drop to the sandbox uid")


def enter(plan: JailPlan, limits: dict[str, float], base_vm_bytes: int) -> None:
    """Namespaces, private /tmp, rlimits, unprivileged uid, no_new_privs, seccomp; or raise."""
    os.setsid()  # its own session and process group: kill(0, ...) reaches only itself
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    if plan.namespaces:
        linux.unshare(CHILD_NAMESPACES)
        jailfs.mount_private_tmp(plan.uid, plan.tmpfs_bytes, with_proc=plan.pid_namespace)
    os.environ.clear()
    os.environ.update({"TMPDIR": os.getcwd(), "HOME": os.getcwd(), "LC_ALL": "C.UTF-8"})
    apply_rlimits(plan, limits, base_vm_bytes)
    if plan.drop_privileges:
        _drop_privileges(plan.uid)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)  # /proc/self/{mem,environ,fd} become root's
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    if plan.seccomp:
        # Built (and cached) in the zygote for PID 1, so a child only pays for the syscall.
        linux.seccomp_set_filter(seccomp.build_filter(plan.arch, os.getpid()))
