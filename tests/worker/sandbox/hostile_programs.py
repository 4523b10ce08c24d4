"""Hostile submissions, one per attack, as data: reusable through the sandbox or API + Celery.

Each program defines `solve()` (driver "call", one call with no arguments). A row is
(id, threat_line, source, expected statuses, extra_check); threat_line is the line of
the threat model in DESIGN.md. extra_check receives the run as a dict (CodeRun.to_dict())
and returns a description of what went wrong, or None. Checks run in the test process,
so they may also look at the host (e.g. that a file was not created).
"""

# ruff: noqa: E501  (a table of programs reads best one row per line)
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

Check = Callable[[dict[str, Any]], str | None]
CANARY_ENV = "GRADSCHOOL_SANDBOX_CANARY"
CANARY_VALUE = "canary-3f9d2c71-secret"
HOST_FILE_TARGET = "/work/main/.sandbox-escape-marker"


class Hostile(NamedTuple):
    """One hostile program and what the sandbox must make of it."""

    id: str
    threat_line: int
    source: str
    expected: frozenset[str]
    extra_check: Check | None = None


def _output(run: dict[str, Any]) -> Any:
    return run["outputs"][0] if run["outputs"] else None


def output_is(expected: Any) -> Check:
    """The single output equals `expected`."""
    return lambda run: None if _output(run) == expected else f"output {_output(run)!r}"


def output_true(what: str) -> Check:
    """The program's own report says `what` held."""
    return lambda run: None if _output(run) is True else f"{what}: {_output(run)!r}"


def error_mentions(*words: str) -> Check:
    """The learner-facing error names one of `words`."""
    return lambda run: None if any(w in (run["error"] or "") for w in words) else run["error"]


def _no_canary(run: dict[str, Any]) -> str | None:
    text = repr(run)
    return "the canary leaked" if CANARY_VALUE in text or CANARY_ENV in text else None


def _host_file_absent(run: dict[str, Any]) -> str | None:
    return "a file appeared on the host" if os.path.exists(HOST_FILE_TARGET) else None


def _measured(run: dict[str, Any]) -> str | None:
    return None if run["cpu_seconds"] > 0 and run["wall_seconds"] > 0 else "figures forged"


def _is_list_of_one(run: dict[str, Any]) -> str | None:
    return None if _output(run) in ([1], []) else f"processes visible: {_output(run)!r}"


def _prog(body: str) -> str:
    return "def solve():\n" + "".join(f"    {line}\n" for line in body.strip().splitlines())


OK, ERR, FORB = frozenset({"ok"}), frozenset({"error"}), frozenset({"forbidden"})
ERR_OR_FORB = frozenset({"error", "forbidden"})
TIMEOUT, MEMORY, OUTPUT = frozenset({"timeout"}), frozenset({"memory"}), frozenset({"output_limit"})

_LIBC = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
_SYSCALL = _LIBC + "libc.syscall.restype = ctypes.c_long\n"
_SECRET_PATHS = [
    "/etc/shadow",
    "/root/.bashrc",
    "/root/.ssh/id_rsa",
    "/work/main/pyproject.toml",
    "/work/shared/DESIGN.md",
    "/var/run/postgresql/15-main.pid",
    "/var/lib/postgresql",
    "/proc/1/environ",
    "/proc/self/environ",
    "/sys/class/net",
    "/dev/shm",
]

HOSTILE: list[Hostile] = [
    # 1. Reach the network.
    Hostile(
        "net_tcp_redis",
        1,
        "import socket\n" + _prog("socket.create_connection(('127.0.0.1', 6379), timeout=1)"),
        FORB,
    ),
    Hostile(
        "net_tcp_postgres",
        1,
        "import socket\n" + _prog("socket.create_connection(('127.0.0.1', 5432), timeout=1)"),
        FORB,
    ),
    Hostile(
        "net_unix_socket_postgres",
        1,
        "import socket\n"
        + _prog(
            "s = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/postgresql/.s.PGSQL.5432')"
        ),
        FORB,
    ),
    Hostile(
        "net_udp_send",
        1,
        "import socket\n"
        + _prog("socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))"),
        FORB,
    ),
    Hostile(
        "net_dns_lookup",
        1,
        "import socket\n" + _prog("return socket.getaddrinfo('example.com', 80)"),
        ERR_OR_FORB,
    ),
    Hostile(
        "net_ctypes_socket",
        1,
        _LIBC + _prog("fd = libc.socket(2, 1, 0)\nreturn [fd, ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "net_raw_syscall_socketpair",
        1,
        _SYSCALL
        + _prog(
            "fds = (ctypes.c_int * 2)()\nreturn [libc.syscall(53, 1, 1, 0, fds), ctypes.get_errno()]"
        ),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "net_interfaces",
        1,
        _prog(
            "rows = open('/proc/self/net/dev').read().splitlines()[2:]\nreturn sorted(r.split(':')[0].strip() for r in rows)"
        ),
        frozenset({"ok", "error", "forbidden"}),
        lambda run: (
            None
            if run["status"] != "ok" or _output(run) == ["lo"]
            else f"interfaces {_output(run)}"
        ),
    ),
    Hostile(
        "net_subprocess_curl",
        1,
        "import subprocess\n" + _prog("subprocess.run(['curl', 'http://127.0.0.1:6379'])"),
        FORB,
    ),
    # 2. Read secrets.
    Hostile(
        "secret_os_environ", 2, "import os\n" + _prog("return dict(os.environ)"), OK, _no_canary
    ),
    Hostile(
        "secret_proc_self_environ",
        2,
        _prog("return open('/proc/self/environ').read()"),
        frozenset({"ok", "forbidden", "error"}),
        _no_canary,
    ),
    Hostile(
        "secret_proc_1_environ",
        2,
        _prog("return open('/proc/1/environ').read()"),
        frozenset({"ok", "forbidden", "error"}),
        _no_canary,
    ),
    Hostile(
        "secret_parent_mem",
        2,
        "import os\n"
        + _prog("f = open(f'/proc/{os.getppid()}/mem', 'rb')\nreturn f.read(64).hex()"),
        ERR_OR_FORB,
    ),
    Hostile(
        "secret_other_processes",
        2,
        "import os\n" + _prog("return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())"),
        frozenset({"ok", "error"}),
        _is_list_of_one,
    ),
    Hostile(
        "secret_host_files",
        2,
        _prog(
            f"got = []\nfor p in {_SECRET_PATHS!r}:\n    try:\n        open(p, 'rb').read(1) if not __import__('os').path.isdir(p) else __import__('os').listdir(p)\n        got.append(p)\n    except OSError:\n        pass\nreturn got"
        ),
        OK,
        output_is([]),
    ),
    Hostile(
        "secret_work_tree_listing",
        2,
        "import os\n" + _prog("return os.listdir('/work/main')"),
        frozenset({"ok", "error", "forbidden"}),
        lambda run: (
            None
            if run["status"] != "ok" or set(_output(run)) <= {".venv"}
            else f"saw {_output(run)}"
        ),
    ),
    Hostile(
        "secret_import_project",
        2,
        _prog("import exercises.codejob\nreturn exercises.codejob.__file__"),
        ERR,
    ),
    Hostile(
        "secret_find_databases",
        2,
        "import os\n"
        + _prog(
            "found = []\nfor top in ('/tmp', '/work', '/var', '/srv', '/home', '/run', '/root', '/etc'):\n    for d, dirs, files in os.walk(top):\n        dirs[:] = [x for x in dirs if x not in ('.venv', '.pyenv')]\n        found += [f for f in files if f.endswith(('.db', '.sqlite', '.sqlite3', '.env', '.pem'))]\nreturn found"
        ),
        OK,
        output_is([]),
    ),
    Hostile(
        "secret_inherited_fds",
        2,
        "import os, stat\n"
        + _prog(
            "kinds = {}\nfor fd in range(1024):\n    try:\n        kinds[str(fd)] = stat.S_IFMT(os.fstat(fd).st_mode)\n    except OSError:\n        pass\nreturn kinds"
        ),
        OK,
        lambda run: (
            None
            if set(_output(run)) <= {"0", "1", "2", "3"} and 0o140000 not in _output(run).values()
            else f"fds {_output(run)}"
        ),
    ),
    Hostile(
        "secret_gc_scan",
        2,
        "import gc\n"
        + _prog(
            "words = ('DATABASE_URL', 'BROKER_URL', 'SECRET_KEY', 'postgresql://', 'redis://')\nreturn [o[:80] for o in gc.get_objects() if isinstance(o, str) and any(w in o for w in words)]"
        ),
        OK,
        output_is([]),
    ),
    # 3. Write outside its tmpfs, or fill the disk.
    Hostile("write_usr", 3, _prog("open('/usr/lib/evil.so', 'w').write('x')"), FORB),
    Hostile(
        "write_etc_passwd", 3, _prog("open('/etc/passwd', 'a').write('evil::0:0::/:/bin/sh')"), FORB
    ),
    Hostile(
        "write_host_work_tree",
        3,
        _prog(f"open({HOST_FILE_TARGET!r}, 'w').write('x')"),
        ERR_OR_FORB,
        _host_file_absent,
    ),
    Hostile(
        "write_tmp_allowed",
        3,
        _prog("open('/tmp/notes.txt', 'w').write('fine')\nreturn open('notes.txt').read()"),
        OK,
        output_is("fine"),
    ),
    Hostile(
        "fill_disk_one_file",
        3,
        _prog(
            "with open('/tmp/big', 'wb') as f:\n    for _ in range(200):\n        f.write(b'x' * 1024 * 1024)"
        ),
        OUTPUT,
    ),
    Hostile(
        "fill_disk_many_files",
        3,
        _prog("for i in range(100):\n    open(f'/tmp/f{i}', 'wb').write(b'x' * 900 * 1024)"),
        OUTPUT,
    ),
    Hostile(
        "fill_inodes",
        3,
        _prog("for i in range(100000):\n    open(f'/tmp/i{i}', 'w').close()"),
        OUTPUT,
    ),
    Hostile("write_dev_shm", 3, _prog("open('/dev/shm/x', 'w').write('x')"), ERR_OR_FORB),
    # 4. Exhaust the machine.
    Hostile(
        "infinite_loop", 4, _prog("while True:\n    pass"), TIMEOUT, error_mentions("CPU", "longer")
    ),
    Hostile(
        "sleep_forever",
        4,
        "import time\n" + _prog("time.sleep(3600)"),
        TIMEOUT,
        error_mentions("longer"),
    ),
    Hostile("memory_bomb_bytearray", 4, _prog("return len(bytearray(10 ** 11))"), MEMORY),
    Hostile(
        "memory_bomb_torch",
        4,
        "import torch\n" + _prog("return torch.empty(10 ** 10, dtype=torch.float64).sum().item()"),
        MEMORY,
    ),
    Hostile(
        "memory_bomb_gradual",
        4,
        _prog("hog = []\nwhile True:\n    hog.append(bytearray(16 * 1024 * 1024))"),
        frozenset({"memory", "timeout"}),
    ),
    Hostile("fork_bomb", 4, "import os\n" + _prog("while True:\n    os.fork()"), FORB),
    Hostile(
        "thread_bomb",
        4,
        "import threading, time\n"
        + _prog(
            "while True:\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()"
        ),
        frozenset({"error", "memory"}),
    ),
    Hostile(
        "multiprocessing_pool",
        4,
        "import multiprocessing\n" + _prog("return multiprocessing.Pool(4).map(abs, [-1, -2])"),
        ERR_OR_FORB,
    ),
    Hostile("huge_print", 4, _prog("print('x' * 10 ** 8)"), OUTPUT),
    Hostile("print_flood", 4, _prog("while True:\n    print('y' * 1000)"), OUTPUT),
    Hostile("huge_stderr", 4, "import sys\n" + _prog("sys.stderr.write('e' * 10 ** 7)"), OUTPUT),
    Hostile("huge_result", 4, _prog("return 'z' * 10 ** 7"), OUTPUT),
    Hostile(
        "deep_recursion",
        4,
        "import sys\n"
        + _prog("sys.setrecursionlimit(10 ** 7)\ndef f(n):\n    return f(n + 1)\nreturn f(0)"),
        frozenset({"killed", "error", "memory", "timeout"}),
    ),
    Hostile(
        "raise_own_limits",
        4,
        "import resource\n" + _prog("resource.setrlimit(resource.RLIMIT_CPU, (10 ** 6, 10 ** 6))"),
        ERR_OR_FORB,
    ),
    # 5. Harm the grader.
    Hostile(
        "kill_parent",
        5,
        "import os, signal\n" + _prog("os.kill(os.getppid(), signal.SIGKILL)\nreturn 'survived'"),
        frozenset({"killed", "forbidden", "ok"}),
    ),
    Hostile("kill_everyone", 5, "import os, signal\n" + _prog("os.kill(-1, signal.SIGKILL)"), FORB),
    Hostile(
        "kill_guessed_pids",
        5,
        "import os, signal\n"
        + _prog(
            "hits = 0\nfor pid in range(2, 4096):\n    try:\n        os.kill(pid, signal.SIGKILL)\n        hits += 1\n    except OSError:\n        pass\nreturn hits"
        ),
        OK,
        output_is(0),
    ),
    Hostile(
        "ptrace_attach",
        5,
        _SYSCALL + _prog("return [libc.ptrace(16, 1, 0, 0), ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "process_vm_readv",
        5,
        _SYSCALL + _prog("return [libc.syscall(310, 1, 0, 0, 0, 0, 0), ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile("os_setuid_root", 5, "import os\n" + _prog("os.setuid(0)"), FORB),
    Hostile(
        "ctypes_setuid",
        5,
        _LIBC
        + "import os\n"
        + _prog("return [libc.setuid(0), ctypes.get_errno(), os.getuid() != 0]"),
        OK,
        output_is([-1, 1, True]),
    ),
    Hostile(
        "ctypes_unshare_user",
        5,
        _LIBC + _prog("return [libc.unshare(0x10000000), ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "ctypes_mount",
        5,
        _LIBC
        + _prog("return [libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile("chroot_escape", 5, "import os\n" + _prog("os.chroot('/tmp')"), FORB),
    Hostile(
        "exec_shell", 5, "import os\n" + _prog("os.execv('/bin/sh', ['sh', '-c', 'id'])"), FORB
    ),
    Hostile(
        "tiocsti_high_bits",
        5,
        _SYSCALL
        + _prog(
            "buf = ctypes.c_char(b'x')\nreturn [libc.syscall(16, 0, 0xDEAD00005412, ctypes.byref(buf)), ctypes.get_errno()]"
        ),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "x32_abi_syscall",
        5,
        _SYSCALL + _prog("return [libc.syscall(0x40000000 | 39), ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "i386_abi_int80",
        5,
        "import ctypes, mmap, platform\n"
        + _prog(
            "if platform.machine() != 'x86_64':\n    return 'skipped'\nm = mmap.mmap(-1, 4096, prot=7)\nm.write(b'\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3')\naddr = ctypes.addressof(ctypes.c_char.from_buffer(m))\nreturn ctypes.CFUNCTYPE(ctypes.c_int)(addr)()"
        ),
        frozenset({"forbidden"}),
    ),
    Hostile(
        "bpf_and_keyctl",
        5,
        _SYSCALL
        + _prog(
            "return [libc.syscall(321, 0, 0, 0), ctypes.get_errno(), libc.syscall(250, 0, 0), ctypes.get_errno()]"
        ),
        OK,
        output_is([-1, 1, -1, 1]),
    ),
    Hostile(
        "clone_new_process",
        5,
        _SYSCALL + _prog("return [libc.syscall(56, 17, 0, 0, 0, 0), ctypes.get_errno()]"),
        OK,
        output_is([-1, 1]),
    ),
    Hostile(
        "proc_sysrq_trigger", 5, _prog("open('/proc/sysrq-trigger', 'w').write('b')"), ERR_OR_FORB
    ),
    # 6. Forge a pass.
    Hostile(
        "forge_print_json",
        6,
        _prog('print(\'{"status": "ok", "outputs": [42]}\')\nreturn 7'),
        OK,
        output_is(7),
    ),
    Hostile(
        "forge_result_fd_then_exit",
        6,
        "import os\n"
        + _prog(
            'os.write(3, b\'{"status": "ok", "outputs": [1234], "cpu_seconds": 0}\')\nos._exit(0)'
        ),
        OK,
        _measured,
    ),
    Hostile(
        "forge_status_timeout",
        6,
        "import os\n"
        + _prog('os.write(3, b\'{"status": "timeout", "outputs": []}\')\nos._exit(0)'),
        ERR,
    ),
    Hostile(
        "forge_garbage_on_result_fd",
        6,
        "import os\n" + _prog("os.write(3, b'garbage')\nreturn 1"),
        ERR,
    ),
    Hostile("forge_close_result_fd", 6, "import os\n" + _prog("os.close(3)\nreturn 1"), ERR),
    Hostile(
        "forge_write_all_fds",
        6,
        "import os\n"
        + _prog(
            'for fd in range(0, 16):\n    try:\n        os.write(fd, b\'{"status": "ok", "outputs": [99]}\')\n    except OSError:\n        pass\nreturn 5'
        ),
        frozenset({"ok", "error"}),
        lambda run: None if run["status"] == "error" or _output(run) == 5 else f"{_output(run)!r}",
    ),
    Hostile(
        "monkeypatch_torch",
        6,
        "import torch\n"
        + _prog(
            "torch.sigmoid = lambda x: x * 0 + 0.5\nreturn torch.sigmoid(torch.tensor([3.0], dtype=torch.float64))"
        ),
        OK,
    ),
    Hostile(
        "monkeypatch_json",
        6,
        'import json\njson.dumps = lambda *a, **k: \'{"status": "ok", "outputs": [999]}\'\njson.JSONEncoder.encode = lambda self, o: \'{"status": "ok", "outputs": [999]}\'\n'
        + _prog("return 3"),
        OK,
        output_is(3),
    ),
    Hostile("raise_system_exit", 6, _prog("raise SystemExit(0)"), ERR, error_mentions("exit")),
    Hostile("raise_keyboard_interrupt", 6, _prog("raise KeyboardInterrupt"), ERR),
    Hostile(
        "raise_base_exception_subclass",
        6,
        "class Sneaky(BaseException):\n    pass\n" + _prog("raise Sneaky('pass me')"),
        ERR,
        error_mentions("Sneaky"),
    ),
    Hostile(
        "exception_with_evil_str",
        6,
        "class Evil(Exception):\n    def __str__(self):\n        raise SystemExit(0)\n"
        + _prog("raise Evil()"),
        ERR,
    ),
    Hostile(
        "os_exit_before_output",
        6,
        "import os\n" + _prog("os._exit(0)"),
        ERR,
        error_mentions("before returning"),
    ),
    Hostile(
        "return_nan",
        6,
        _prog("return [float('nan'), float('inf')]"),
        OK,
        output_is(["NaN", "Infinity"]),
    ),
    Hostile(
        "return_equal_to_anything",
        6,
        "class Any:\n    def __eq__(self, other):\n        return True\n" + _prog("return Any()"),
        ERR,
        error_mentions("cannot be graded"),
    ),
    Hostile(
        "return_lying_float",
        6,
        "class Liar(float):\n    def __float__(self):\n        return 0.0\n    def __eq__(self, other):\n        return True\n"
        + _prog("return Liar(1.0)"),
        ERR,
        error_mentions("cannot be graded"),
    ),
    Hostile(
        "return_lying_tensor_subclass",
        6,
        "import torch\nclass T(torch.Tensor):\n    def tolist(self):\n        return [0.0]\n"
        + _prog("return torch.tensor([2.0], dtype=torch.float64).as_subclass(T)"),
        OK,
        lambda run: None if _output(run)["__tensor__"] == [2.0] else f"{_output(run)!r}",
    ),
    Hostile(
        "return_huge_int", 6, _prog("return 10 ** 50000"), frozenset({"error", "output_limit"})
    ),
    Hostile(
        "return_deep_nesting",
        6,
        _prog("x = []\nfor _ in range(10000):\n    x = [x]\nreturn x"),
        ERR,
    ),
    # 7. Starve others: slow code ends within its wall limit (the separate queue is the worker's).
    Hostile(
        "slow_but_bounded",
        7,
        "import time\n" + _prog("while True:\n    time.sleep(0.01)"),
        TIMEOUT,
        lambda run: None if run["wall_seconds"] < 4.0 else f"ran {run['wall_seconds']} s",
    ),
]

RESIDUE_ENTRY = "solve"


def residue_writer(secret: str) -> str:
    """Job A: holds `secret` in its source, so it is in the child's memory (and only there)."""
    return _prog(f"keep = {secret!r} * 4\nreturn len(keep)")


def residue_scanner(secret: str) -> str:
    """Job B: scans all of its own readable memory for `secret`, which its source does not hold.

    Returns [hits outside the needle itself, bytes scanned, regions scanned].
    """
    masked = [b ^ 0x5A for b in secret.encode()]
    return "import ctypes\n" + _prog(
        f"needle = bytes([b ^ 0x5A for b in {masked!r}])\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.memmem.restype = ctypes.c_void_p\n"
        "libc.memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]\n"
        "own = id(needle) + bytes.__basicsize__ - 1\n"
        "hits = scanned = regions = 0\n"
        "for line in open('/proc/self/maps'):\n"
        "    parts = line.split()\n"
        "    start, end = (int(x, 16) for x in parts[0].split('-'))\n"
        "    if parts[1][0] != 'r' or (len(parts) > 5 and parts[5] in ('[vvar]', '[vsyscall]', '[vvar_vclock]')):\n"
        "        continue\n"
        "    regions += 1\n"
        "    scanned += end - start\n"
        "    pos = start\n"
        "    while pos < end:\n"
        "        found = libc.memmem(pos, end - pos, needle, len(needle))\n"
        "        if not found:\n"
        "            break\n"
        "        if found != own:\n"
        "            hits += 1\n"
        "        pos = found + 1\n"
        "return [hits, scanned, regions]"
    )
