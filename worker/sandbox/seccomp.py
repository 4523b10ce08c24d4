"""The child's seccomp filter, as classic BPF built by hand (no libseccomp needed).

Default allow; a deny list answers EPERM so Python raises PermissionError, which the
driver maps to the "forbidden" status. Argument checks load only the low 32 bits of
an argument, which is what the kernel itself uses for ioctl's `unsigned int cmd`,
clone's flags and kill's `pid_t`: high bits cannot smuggle a TIOCSTI past the rule.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from worker.sandbox.syscalls import AARCH64, DENIED, X86_64

_LD_W_ABS = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_JA = 0x05
_RET = 0x06

RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
EPERM = 1
ENOSYS = 38

_ARCH = {"x86_64": (0xC000003E, X86_64), "aarch64": (0xC00000B7, AARCH64)}
_X32_SYSCALL_BIT = 0x40000000

CLONE_THREAD = 0x00010000
# CLONE_NEWTIME|NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_CLONE_NEW_ANY = 0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
_CLONE_NEW_ANY |= 0x20000000 | 0x40000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

_OFFSET_NR = 0
_OFFSET_ARCH = 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of syscall argument `index` (little-endian)."""
    return 16 + 8 * index


def _insn(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _errno(value: int) -> bytes:
    return _insn(_RET, _RET_ERRNO | value)


def supported_architectures() -> tuple[str, ...]:
    """Architectures this filter knows the syscall numbers of."""
    return tuple(_ARCH)


@lru_cache(maxsize=8)
def build_filter(arch: str, own_pid: int) -> bytes:
    """The BPF program for `arch`; kill/tgkill may only target `own_pid` (or 0, own group)."""
    if arch not in _ARCH:
        raise ValueError(f"seccomp filter: unsupported architecture {arch}")
    audit_arch, numbers = _ARCH[arch]
    prog = [
        _insn(_LD_W_ABS, _OFFSET_ARCH),
        _insn(_JEQ, audit_arch, jt=1, jf=0),
        _insn(_RET, RET_KILL_PROCESS),  # a foreign ABI (int 0x80, compat) is never legitimate
        _insn(_LD_W_ABS, _OFFSET_NR),
    ]
    if arch == "x86_64":
        prog += [_insn(_JGE, _X32_SYSCALL_BIT, jt=0, jf=1), _errno(EPERM)]
    # One compare per denied syscall, jumping to a shared "EPERM" (jumps reach 255 ahead).
    denied = [numbers[name] for name in DENIED if name in numbers]
    for start in range(0, len(denied), 200):
        block = denied[start : start + 200]
        for index, number in enumerate(block):
            prog.append(_insn(_JEQ, number, jt=len(block) - index, jf=0))
        prog += [_insn(_JA, 1), _errno(EPERM)]  # not denied: jump over the shared ret
    # clone3 hides its flags in memory BPF cannot read: ENOSYS makes glibc fall back to clone.
    prog += [_insn(_JEQ, numbers["clone3"], jt=0, jf=1), _errno(ENOSYS)]
    # clone: threads only, and no namespace flags.
    prog += [
        _insn(_JEQ, numbers["clone"], jt=0, jf=6),
        _insn(_LD_W_ABS, _arg_low(0)),
        _insn(_JSET, CLONE_THREAD, jt=1, jf=0),
        _errno(EPERM),
        _insn(_JSET, _CLONE_NEW_ANY, jt=0, jf=1),
        _errno(EPERM),
        _insn(_RET, RET_ALLOW),
    ]
    # ioctl: no TIOCSTI (inject keystrokes into a terminal) or TIOCLINUX.
    prog += [
        _insn(_JEQ, numbers["ioctl"], jt=0, jf=5),
        _insn(_LD_W_ABS, _arg_low(1)),
        _insn(_JEQ, TIOCSTI, jt=2, jf=0),
        _insn(_JEQ, TIOCLINUX, jt=1, jf=0),
        _insn(_RET, RET_ALLOW),
        _errno(EPERM),
    ]
    # kill(pid, sig): only itself (or 0: its own process group, which setsid made its own).
    prog += [
        _insn(_JEQ, numbers["kill"], jt=0, jf=5),
        _insn(_LD_W_ABS, _arg_low(0)),
        _insn(_JEQ, own_pid, jt=2, jf=0),
        _insn(_JEQ, 0, jt=1, jf=0),
        _errno(EPERM),
        _insn(_RET, RET_ALLOW),
    ]
    # tgkill(tgid, tid, sig): only threads of its own process.
    prog += [
        _insn(_JEQ, numbers["tgkill"], jt=0, jf=3),
        _insn(_LD_W_ABS, _arg_low(0)),
        _insn(_JEQ, own_pid, jt=1, jf=0),
        _errno(EPERM),
        _insn(_RET, RET_ALLOW),
    ]
    prog.append(_insn(_RET, RET_ALLOW))
    return b"".join(prog)
