"""Thin ctypes wrappers for the Linux calls Python 3.11 lacks: unshare, setns, mount, prctl."""

from __future__ import annotations

import ctypes
import os
import platform

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

SECCOMP_SET_MODE_FILTER = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


# A PyDLL call keeps the GIL held across fork(): see fork_without_python_hooks.
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.restype = ctypes.c_int
_fork.argtypes = []


def fork_without_python_hooks() -> int:
    """fork(2) through the C library, without CPython's own before/after-fork work.

    os.fork() runs PyOS_AfterFork_Child and every os.register_at_fork handler in the
    child (threading's, random's reseed, torch's get_num_threads, logging's...). In a
    torch-loaded zygote they allocate and touch about 450 pages of the shared heap:
    1.5 ms and 450 copy-on-write faults per child. They exist to repair state that
    other threads held at the fork. Only for a process that is single-threaded (the
    zygote checks it): the calling thread, which holds the GIL and is the only one,
    simply continues in the child; pthread_atfork handlers of C libraries still run.
    The caller reseeds `random` in the child itself.
    """
    pid = _fork()
    if pid < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"fork: {os.strerror(errno)}")
    return int(pid)


def command_line_area() -> tuple[int, int]:
    """(start, end) of this process's argv strings, which /proc/<pid>/cmdline shows."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[45]), int(fields[46])  # arg_start and arg_end: fields 48 and 49


PR_SET_NAME = 15


def rename_command_line(area: tuple[int, int], name: bytes) -> None:
    """Overwrite the argv strings in place and set the thread name: ps and /proc show `name`."""
    _libc.prctl(
        PR_SET_NAME, ctypes.cast(ctypes.c_char_p(name[:15]), ctypes.c_void_p).value, 0, 0, 0
    )
    start, end = area
    if end - start > len(name):
        ctypes.memset(start, 0, end - start)
        ctypes.memmove(start, name, len(name))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_SECCOMP = {"x86_64": 317, "aarch64": 277}


def machine() -> str:
    """The CPU architecture as the kernel names it (x86_64, aarch64...)."""
    return platform.machine()


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _path(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    """Move this process into new namespaces (CLONE_NEW* flags)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace open at fd."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); raises OSError naming the target."""
    result = _libc.mount(
        _path(source), os.fsencode(target), _path(fstype), flags, data.encode() if data else None
    )
    _check(result, f"mount {target}")


def umount2(target: str, flags: int) -> None:
    """umount2(2)."""
    _check(_libc.umount2(os.fsencode(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (no libc wrapper)."""
    number = _PIVOT_ROOT.get(machine())
    if number is None:
        raise OSError(0, f"pivot_root: unsupported architecture {machine()}")
    result = _libc.syscall(number, os.fsencode(new_root), os.fsencode(put_old))
    _check(int(result), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    """prctl(2) for options that return 0 on success."""
    _check(_libc.prctl(option, arg2, arg3, 0, 0), f"prctl({option})")


def seccomp_set_filter(program: bytes) -> None:
    """Install a classic-BPF seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)."""
    prepare_filter(program)
    install_prepared_filter()


_prepared: list[object] = []  # [syscall number, buffer, struct sock_fprog] of prepare_filter


def prepare_filter(program: bytes) -> None:
    """Lay out a filter for install_prepared_filter (done once, in the zygote)."""
    number = _SECCOMP.get(machine())
    if number is None:
        raise OSError(0, f"seccomp: unsupported architecture {machine()}")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _prepared[:] = [number, buffer, fprog]


def install_prepared_filter() -> None:
    """Install the filter laid out by prepare_filter: one syscall, next to no Python."""
    if not _prepared:
        raise OSError(0, "seccomp: no filter was prepared")
    number, _buffer, fprog = _prepared
    result = _libc.syscall(number, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog))  # type: ignore[arg-type]
    _check(int(result), "seccomp")


def last_capability() -> int:
    """The kernel's highest capability number (read before the jail hides /proc/sys)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # the loop below ends at the kernel's first EINVAL anyway


def drop_bounding_capabilities(last: int) -> None:
    """Drop capabilities 0..last from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(last + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the kernel's last capability
                break
            _check(-1, f"drop capability {cap}")
