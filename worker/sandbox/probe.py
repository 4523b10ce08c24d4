"""Which isolation features this kernel and process offer, each tried in a throwaway child."""

from __future__ import annotations

import functools
import json
import os
import stat
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

from worker.sandbox import linux, seccomp

_NAMESPACES = {
    "net_namespace": linux.CLONE_NEWNET,
    "mount_namespace": linux.CLONE_NEWNS,
    "pid_namespace": linux.CLONE_NEWPID,
    "ipc_namespace": linux.CLONE_NEWIPC,
    "uts_namespace": linux.CLONE_NEWUTS,
}
REQUIRED = (
    *_NAMESPACES,
    "private_tmpfs",
    "setuid",
    "seccomp",
    "seccomp_arch",
    "pidfd",
)


def _in_child(action: Callable[[], None]) -> dict[str, Any]:
    """Run `action` in a forked child so whatever it changes dies with it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            action()
        except BaseException as exc:  # report the failure, whatever it is, to the parent
            os.write(write_end, str(exc).encode()[:500])
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    detail = b""
    while chunk := os.read(read_end, 4096):
        detail += chunk
    os.close(read_end)
    _pid, status = os.waitpid(pid, 0)
    return {"ok": os.waitstatus_to_exitcode(status) == 0, "detail": detail.decode(errors="replace")}


def _private_tmpfs() -> None:
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.mount("probe", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=64k")


def _setuid(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _seccomp() -> None:
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.seccomp_set_filter(seccomp.build_filter(linux.machine(), os.getpid()))  # the real one


def _python_readable() -> dict[str, Any]:
    """Without the jail's own tree, the host's paths to Python must be searchable by any uid."""
    paths = {sys.prefix, sys.base_prefix, *sysconfig.get_paths().values()}
    wanted = stat.S_IROTH | stat.S_IXOTH
    bad = set()
    for path in paths:
        while path not in ("/", "") and os.path.isdir(path):
            if os.stat(path).st_mode & wanted != wanted:
                bad.add(path)
            path = os.path.dirname(path)
    detail = f"not searchable by other users: {', '.join(sorted(bad))}" if bad else ""
    return {"ok": not bad, "detail": detail}


def probe(uid: int) -> dict[str, dict[str, Any]]:
    """Every isolation feature: {"ok": bool, "detail": why not}."""
    features: dict[str, dict[str, Any]] = {
        "root": {
            "ok": os.geteuid() == 0,
            "detail": "" if os.geteuid() == 0 else "not running as root",
        }
    }
    for name, flag in _NAMESPACES.items():
        features[name] = _in_child(functools.partial(linux.unshare, flag))
    features["private_tmpfs"] = _in_child(_private_tmpfs)
    features["setuid"] = _in_child(lambda: _setuid(uid))
    arch_ok = linux.machine() in seccomp.supported_architectures()
    features["seccomp_arch"] = {
        "ok": arch_ok,
        "detail": "" if arch_ok else f"no syscall table for {linux.machine()}",
    }
    features["seccomp"] = (
        _in_child(_seccomp) if arch_ok else {"ok": False, "detail": "unsupported architecture"}
    )
    try:
        os.close(os.pidfd_open(os.getpid()))
        features["pidfd"] = {"ok": True, "detail": ""}
    except (OSError, AttributeError) as exc:
        features["pidfd"] = {"ok": False, "detail": str(exc)}
    features["python_readable"] = _python_readable()
    return features


def required_missing(features: dict[str, dict[str, Any]]) -> list[str]:
    """Names (with the kernel's reason) of required features that are not available."""
    missing = []
    for name in REQUIRED:
        feature = features.get(name, {"ok": False, "detail": "not probed"})
        if not feature["ok"]:
            missing.append(f"{name} ({feature['detail']})" if feature["detail"] else name)
    return missing


def main(config: dict[str, Any]) -> None:
    """Print the probe's findings as JSON (sandbox_status runs this in a fresh process)."""
    features = probe(int(config["uid"]))
    missing = required_missing(features)
    print(json.dumps({"features": features, "missing": missing, "secure": not missing}))
