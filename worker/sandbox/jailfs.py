"""The jail's filesystem: built once by the zygote, then each child mounts its own /tmp and /proc.

The zygote moves into a private mount namespace and pivots into a new root: a
read-only tmpfs holding /usr (and the top-level links into it), the Python
installation and virtualenv (so learners' lazy imports still work as an
unprivileged uid), a few /dev nodes, an allow-listed /etc and empty /tmp and /proc.
Everything else (the project tree, /root, /home, /run with its sockets, /var with the
database, the host's /tmp and /proc) does not exist in there, and the project's own
packages are covered by empty directories even where they sit inside site-packages.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from worker.sandbox import linux

_RO_BIND = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID
_DEVICES = ("null", "zero", "random", "urandom")
_ETC_COPIED = ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf", "os-release")
STAGING = "/tmp"  # mount point of the new root inside the zygote's private namespace


def _bind_readonly(source_fd: int, target: str, *, nodev: bool = True) -> None:
    linux.mount(f"/proc/self/fd/{source_fd}", target, None, linux.MS_BIND | linux.MS_REC)
    flags = _RO_BIND | (linux.MS_NODEV if nodev else 0) | (linux.MS_NOEXEC if not nodev else 0)
    linux.mount(None, target, None, flags)


def _make_mountpoint(root: str, path: str, *, is_dir: bool) -> str:
    target = root + path
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        with open(target, "w"):
            pass
    return target


def _write_etc(root: str, uid: int) -> None:
    etc = root + "/etc"
    os.makedirs(etc, mode=0o755, exist_ok=True)
    for name in _ETC_COPIED:
        try:
            with open("/etc/" + name, "rb") as f:
                data = f.read()
        except OSError:
            continue  # optional on minimal images
        with open(f"{etc}/{name}", "wb") as f:
            f.write(data)
    with open(f"{etc}/passwd", "w") as f:
        f.write(
            f"root:x:0:0:root:/:/nonexistent\nsandbox:x:{uid}:{uid}:sandbox:/tmp:/nonexistent\n"
        )
    with open(f"{etc}/group", "w") as f:
        f.write(f"root:x:0:\nsandbox:x:{uid}:\n")


def _kept_trees(extra: Iterable[str]) -> list[str]:
    """Top-most distinct directories to expose, outside /usr (which is exposed whole)."""
    trees: list[str] = []
    for path in sorted({os.path.realpath(p) for p in extra}):
        if path == "/usr" or path.startswith("/usr/") or not os.path.isdir(path):
            continue
        if any(path == t or path.startswith(t + "/") for t in trees):
            continue
        trees.append(path)
    return trees


def build_root(uid: int, keep: Iterable[str], hide: Iterable[str]) -> None:
    """Pivot this process (the zygote) into the read-only jail root; the host tree is dropped."""
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    # Open every source first: the staging tmpfs may cover it (a venv under /tmp in CI).
    sources: list[tuple[str, int, bool]] = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr"):
        if os.path.isdir(top) and not os.path.islink(top):
            sources.append((top, os.open(top, os.O_PATH), True))
    for tree in _kept_trees(keep):
        sources.append((tree, os.open(tree, os.O_PATH), True))
    for dev in _DEVICES:
        if stat.S_ISCHR(os.stat("/dev/" + dev).st_mode):
            sources.append(("/dev/" + dev, os.open("/dev/" + dev, os.O_PATH), False))
    tops = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
    links = {top: os.readlink(top) for top in tops if os.path.islink(top)}
    hidden = [os.path.realpath(p) for p in hide if os.path.isdir(p)]

    root = STAGING
    linux.mount("jail", root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m,mode=755")
    for top, target in links.items():
        os.symlink(target, root + top)
    _write_etc(root, uid)
    for name in ("tmp", "proc"):
        os.mkdir(f"{root}/{name}", 0o755)
    for path, fd, is_dir in sources:
        _bind_readonly(fd, _make_mountpoint(root, path, is_dir=is_dir), nodev=is_dir)
        os.close(fd)
    for path in hidden:
        if os.path.isdir(root + path):
            linux.mount(
                "hidden", root + path, "tmpfs", linux.MS_RDONLY | linux.MS_NOSUID, "size=4k"
            )
    linux.mount(
        None, root, None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    )
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def mount_private_tmp(uid: int, size_bytes: int, *, with_proc: bool) -> None:
    """In a child's new mount namespace: a fresh small tmpfs as /tmp (cwd) and its own /proc."""
    options = f"size={size_bytes},nr_inodes=256,mode=700,uid={uid},gid={uid}"
    linux.mount(
        "sandbox", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, options
    )
    if with_proc:
        flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
        try:
            linux.mount("proc", "/proc", "proc", flags, "subset=pid")
        except OSError:  # kernels before 5.8 lack subset=pid; the PID namespace still hides others
            linux.mount("proc", "/proc", "proc", flags)
    os.chdir("/tmp")
