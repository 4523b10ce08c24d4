"""What a freshly forked child does, as root, before it can receive any job."""

from __future__ import annotations

import math
import os
import resource
import signal
from dataclasses import dataclass

from worker.sandbox import jailfs, linux, seccomp

MIB = 1024 * 1024
# The zygote itself sits in a network, UTS and IPC namespace of its own (see
# ZYGOTE_NAMESPACES); each child adds a mount namespace (its private /tmp and /proc)
# and is PID 1 of a PID namespace of its own.
ZYGOTE_NAMESPACES = linux.CLONE_NEWNET | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
# Without the seccomp filter (insecure development mode only) a child could make
# sockets and SysV/POSIX IPC objects, so it then gets network and IPC namespaces of its own.
UNFILTERED_CHILD_NAMESPACES = linux.CLONE_NEWNET | linux.CLONE_NEWIPC


@dataclass(frozen=True)
class JailPlan:
    """Which defences the zygote found available; each child applies all of them."""

    uid: int
    namespaces: bool  # private network, mount, IPC and UTS namespaces, private /tmp
    pid_namespace: bool  # the zygote forks each child as PID 1 of a new PID namespace
    drop_privileges: bool  # setresuid/setresgid to `uid`, empty groups, no capabilities
    seccomp: bool
    arch: str
    headroom_mb: int  # address space torch needs above the zygote's size
    max_tasks: int  # RLIMIT_NPROC: threads of the sandbox uid
    tmpfs_bytes: int
    cap_last: int = 40  # highest capability number of this kernel (read by the zygote)

    @property
    def child_namespaces(self) -> int:
        """The namespaces each child unshares for itself (the zygote's cover the rest)."""
        if not self.namespaces:
            return 0
        return linux.CLONE_NEWNS | (0 if self.seccomp else UNFILTERED_CHILD_NAMESPACES)


def _limit(which: int, value: int) -> None:
    """soft = hard = value, never above the hard limit the child already has.

    A child receives its job after it dropped to the sandbox uid, so it can only lower
    a limit; the zygote's own limits (normally unlimited) are the ceiling.
    """
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def apply_static_rlimits(plan: JailPlan) -> None:
    """The limits every job shares: tasks, and no core dumps, locked memory or queues."""
    _limit(resource.RLIMIT_NPROC, plan.max_tasks)
    for which in (resource.RLIMIT_CORE, resource.RLIMIT_MEMLOCK, resource.RLIMIT_MSGQUEUE):
        _limit(which, 0)


def apply_job_rlimits(plan: JailPlan, limits: dict[str, float], base_vm_bytes: int) -> None:
    """The job's own limits: CPU, address space, file size, open files.

    Called when the job is handed over, before any byte of it is read.
    """
    # soft == hard: at the limit the kernel sends SIGKILL, which PID 1 cannot ignore
    # (SIGXCPU, sent at a soft limit below the hard one, is ignored by a namespace's init).
    # A backstop one second past the limit: the zygote's CPU clock check normally kills first.
    _limit(resource.RLIMIT_CPU, math.ceil(limits["cpu_seconds"]) + 1)
    memory = base_vm_bytes + (plan.headroom_mb + int(limits["memory_mb"])) * MIB
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    _limit(resource.RLIMIT_NOFILE, max(8, int(limits["open_files"])))


def _drop_privileges(plan: JailPlan) -> None:
    linux.drop_bounding_capabilities(plan.cap_last)
    os.setgroups([])
    os.setresgid(plan.uid, plan.uid, plan.uid)
    os.setresuid(plan.uid, plan.uid, plan.uid)  # leaving uid 0 clears every capability
    if os.getuid() != plan.uid or os.geteuid() != plan.uid:
        raise OSError(0, "could not drop to the sandbox uid")


def enter(plan: JailPlan) -> None:
    """Mount namespace and private /tmp, rlimits, unprivileged uid, no_new_privs, seccomp.

    Raises on any failure. The zygote has already reset the signal handlers, set the
    environment children get, and (with namespaces) moved itself into the network,
    UTS and IPC namespaces its children share.
    """
    os.setsid()  # its own session and process group: kill(0, ...) reaches only itself
    if plan.namespaces:
        linux.unshare(plan.child_namespaces)
        jailfs.mount_private_tmp(plan.uid, plan.tmpfs_bytes, with_proc=plan.pid_namespace)
    apply_static_rlimits(plan)
    if plan.drop_privileges:
        _drop_privileges(plan)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)  # /proc/self/{mem,environ,fd} become root's
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    if plan.seccomp and plan.pid_namespace:
        # Built and prepared for the syscall in the zygote, for PID 1: the child only
        # pays for the syscall itself.
        linux.install_prepared_filter()
    elif plan.seccomp:
        linux.seccomp_set_filter(seccomp.build_filter(plan.arch, os.getpid()))
