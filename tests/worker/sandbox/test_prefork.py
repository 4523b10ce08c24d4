"""What the speed-ups rely on: spare children forked ahead of their job, shared namespaces.

Each zygote forks its next child before the job comes (the "spare"); the child enters
the whole jail, then waits for the hand-over of the job's limits and descriptors. The
network, UTS and IPC namespaces are the zygote's, shared by its children one after the
other. These tests check that the spare holds nothing of a job while it waits, that
every job gets its own limits, and that nothing passes between jobs through the shared
network namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from exercises.codejob import CodeJob, SandboxLimits
from tests.worker.sandbox.conftest import MAXIMA, assert_normal_run, normal_job
from worker.sandbox import Sandbox


def _run(box: Sandbox, source: str, limits: SandboxLimits = MAXIMA) -> Any:
    run = box.run(CodeJob(source, "solve", "call", [{}], limits))
    assert run.status == "ok", run
    return run.outputs[0]


def _spare(box: Sandbox) -> int:
    """The pid of the zygote's idle spare child (waiting a little for it to be forked)."""
    zygote = box.zygote_pid
    assert zygote is not None
    for _ in range(200):
        with open(f"/proc/{zygote}/task/{zygote}/children") as f:
            children = [int(pid) for pid in f.read().split()]
        if children:
            assert len(children) == 1, children
            return children[0]
        time.sleep(0.01)
    raise AssertionError("the zygote has no spare child")


def _status(pid: int) -> dict[str, list[str]]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.split() for k, v in (line.split(":", 1) for line in f)}


def _wait_jailed(pid: int) -> dict[str, list[str]]:
    for _ in range(200):
        status = _status(pid)
        if status["Seccomp"] == ["2"]:
            return status
        time.sleep(0.01)
    raise AssertionError(f"the spare never installed its filter: {status}")


def test_the_waiting_spare_is_jailed_and_holds_nothing_of_a_job(sandbox: Sandbox) -> None:
    assert_normal_run(sandbox.run(normal_job()))
    spare = _spare(sandbox)
    status = _wait_jailed(spare)
    assert status["Uid"] == ["65534"] * 4 and status["NoNewPrivs"] == ["1"]
    assert status["CapEff"] == status["CapBnd"] == ["0000000000000000"]
    time.sleep(0.05)  # it is blocked in recvmsg now: its descriptors no longer change
    targets = {
        int(fd): os.readlink(f"/proc/{spare}/fd/{fd}") for fd in os.listdir(f"/proc/{spare}/fd")
    }
    assert sorted(targets) == [0, 1, 2, 3, 4, 5], targets
    assert {targets[fd] for fd in (0, 1, 2, 3)} == {"/dev/null"}
    assert targets[4].startswith("socket:") and targets[5].startswith("pipe:")
    # The job only ever exists in a memfd the worker makes for its run: the spare has none.
    assert not any("memfd" in target for target in targets.values())
    with open(f"/proc/{spare}/cmdline", "rb") as f:
        assert f.read().rstrip(b"\0") == b"gradschool-sandbox-child"


STARTED = """
import os
def solve():
    with open('/proc/self/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return [int(fields[19]), os.sysconf('SC_CLK_TCK'), os.getpid()]
"""


def test_the_child_was_forked_before_its_job_arrived(sandbox: Sandbox) -> None:
    assert_normal_run(sandbox.run(normal_job()))
    _wait_jailed(_spare(sandbox))
    time.sleep(0.3)
    submitted = time.clock_gettime(time.CLOCK_BOOTTIME)
    started_ticks, ticks_per_second, pid = _run(sandbox, STARTED)
    assert pid == 1
    assert started_ticks / ticks_per_second < submitted - 0.2


LIMITS = """
def solve():
    wanted = ('Max cpu time', 'Max file size', 'Max open files', 'Max address space')
    out = {}
    for line in open('/proc/self/limits').read().splitlines()[1:]:
        for name in wanted:
            if line.startswith(name):
                soft, hard = line[len(name):].split()[:2]
                out[name] = [soft, hard]
    return out
"""


def _limits_seen(box: Sandbox, limits: SandboxLimits) -> dict[str, list[str]]:
    seen = _run(box, LIMITS, limits)
    assert isinstance(seen, dict)
    return seen


def test_every_job_gets_its_own_limits(sandbox: Sandbox) -> None:
    small = SandboxLimits(
        cpu_seconds=0.5, wall_seconds=2, memory_mb=32, file_size_bytes=4096, open_files=16
    )
    large = SandboxLimits(
        cpu_seconds=1.0, wall_seconds=2, memory_mb=64, file_size_bytes=65536, open_files=48
    )
    views = [_limits_seen(sandbox, limits) for limits in (small, large, small)]
    assert views[0] == views[2] != views[1]
    for view, limits in zip(views, (small, large, small), strict=True):
        assert view["Max cpu time"] == [str(int(limits.cpu_seconds + 0.999) + 1)] * 2
        assert view["Max file size"] == [str(limits.file_size_bytes)] * 2
        assert view["Max open files"] == [str(limits.open_files)] * 2
    small_as, large_as = (
        int(views[0]["Max address space"][0]),
        int(views[1]["Max address space"][0]),
    )
    assert large_as - small_as == 32 * 1024 * 1024


def test_a_spare_that_died_while_idle_is_replaced() -> None:
    with Sandbox(MAXIMA) as box:
        assert_normal_run(box.run(normal_job()))
        zygote = box.zygote_pid
        os.kill(_spare(box), signal.SIGKILL)
        time.sleep(0.05)
        assert_normal_run(box.run(normal_job()))
        assert box.zygote_pid == zygote and box.restarts == 0


NAMESPACES = """
import os
def solve():
    return {ns: os.readlink(f'/proc/self/ns/{ns}') for ns in ('net', 'uts', 'ipc', 'mnt', 'pid')}
"""


def test_children_share_the_zygotes_network_uts_and_ipc_namespaces_only(sandbox: Sandbox) -> None:
    zygote = sandbox.zygote_pid
    first, second = _run(sandbox, NAMESPACES), _run(sandbox, NAMESPACES)
    for ns in ("net", "uts", "ipc"):
        ours = os.readlink(f"/proc/self/ns/{ns}")
        assert first[ns] == second[ns] == os.readlink(f"/proc/{zygote}/ns/{ns}") != ours
    for ns in ("mnt", "pid"):
        assert first[ns] != second[ns]
        assert first[ns] != os.readlink(f"/proc/{zygote}/ns/{ns}")


LISTENER = """
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"/proc/{sys.argv[1]}/ns/net", os.O_RDONLY)
if libc.setns(fd, 0x40000000) != 0:
    raise OSError(ctypes.get_errno(), "setns")
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(b"\\0" + sys.argv[2].encode())
server.listen()
print("listening", flush=True)
server.settimeout(float(sys.argv[3]))
try:
    conn, _ = server.accept()
    print("connected", conn.recv(100), flush=True)
except socket.timeout:
    print("nobody", flush=True)
"""

CONNECT = """
import ctypes, socket
libc = ctypes.CDLL(None, use_errno=True)
def solve():
    tried = []
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(b"\\0" + NAME.encode())
        s.send(b"from the job")
        tried.append("connected")
    except OSError as exc:
        tried.append(exc.errno)
    tried.append([libc.socket(1, 1, 0), ctypes.get_errno()])
    tried.append([libc.socket(1, 2, 0), ctypes.get_errno()])
    return tried
"""

BIND = """
import socket
def solve():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(b"\\0" + NAME.encode())
        return "bound"
    except OSError as exc:
        return exc.errno
"""


def _abstract_names(pid: int) -> set[str]:
    with open(f"/proc/{pid}/net/unix") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return {row[7] for row in rows if len(row) > 7 and row[7].startswith("@")}


def test_jobs_cannot_meet_through_abstract_unix_sockets_in_the_shared_namespace(
    sandbox: Sandbox,
) -> None:
    zygote = sandbox.zygote_pid
    assert zygote is not None
    assert _abstract_names(zygote) == set()
    name = f"gradschool-test-{uuid.uuid4().hex}"
    # A job cannot leave a socket behind for the next one.
    assert _run(sandbox, f"NAME = {name!r}\n" + BIND) == 1  # EPERM
    assert _abstract_names(zygote) == set()
    # Positive control: a listener really in the children's network namespace (put
    # there by root from outside), which a job must still be unable to reach.
    listener = subprocess.Popen(
        [sys.executable, "-c", LISTENER, str(zygote), name, "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "listening"
        assert _abstract_names(zygote) == {"@" + name}
        assert _run(sandbox, f"NAME = {name!r}\n" + CONNECT) == [1, [-1, 1], [-1, 1]]
        outcome, _ = listener.communicate(timeout=10)
    finally:
        listener.kill()
        listener.wait()
    assert outcome.strip() == "nobody"


@pytest.mark.parametrize("mode", ["atexit"])
def test_the_process_wide_sandbox_stops_its_zygote_at_exit(mode: str) -> None:
    script = (
        "import json\n"
        "from tests.worker.sandbox.conftest import normal_job\n"
        "from worker.sandbox import get_sandbox\n"
        "box = get_sandbox()\n"
        "assert box.run(normal_job()).status == 'ok'\n"
        "print(json.dumps(box.zygote_pid))\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
    )
    zygote = json.loads(done.stdout.splitlines()[-1])
    assert "ResourceWarning" not in done.stderr, done.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(zygote, 0)


RANDOM = """
import random
def solve():
    return random.random()
"""


def test_random_is_reseeded_in_every_child(sandbox: Sandbox) -> None:
    # The zygote forks without CPython's at-fork hooks (one of which reseeds `random`),
    # so the child reseeds it itself: jobs must not all draw the same numbers.
    draws = {_run(sandbox, RANDOM) for _ in range(3)}
    assert len(draws) == 3


DRAIN = """
import ctypes, json
from worker.sandbox import heap
junk = [bytearray(n % 700 + 16) for n in range(20000)]
del junk[::2]  # holes all over the heap
first = heap.drain() if DRAIN else 0
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
pages = {libc.malloc(64) // 4096 for _ in range(256)}
print(json.dumps([first, len(pages)]))
"""


def _pages_touched(drain: bool) -> tuple[int, int]:
    env = {"PYTHONMALLOC": "malloc", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", f"DRAIN = {drain}\n" + DRAIN],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
    )
    taken, pages = json.loads(done.stdout)
    return taken, pages


def test_heap_drain_makes_new_allocations_land_side_by_side() -> None:
    taken, pages = _pages_touched(drain=True)
    assert taken > 1000  # the holes were taken
    assert pages < 40  # 256 new chunks of 80 bytes: 5 pages side by side, and a few strays
    _none, scattered = _pages_touched(drain=False)  # control: they fill holes everywhere
    assert scattered > 3 * pages


def _fds(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def test_the_next_spare_holds_nothing_of_the_running_job() -> None:
    sleeper = "import time\ndef solve():\n    time.sleep(1.0)\n    return 1\n"
    with Sandbox(MAXIMA) as box:
        zygote = box.zygote_pid
        worker = threading.Thread(target=lambda: _run(box, sleeper))
        worker.start()
        try:
            for _ in range(100):
                with open(f"/proc/{zygote}/task/{zygote}/children") as f:
                    children = [int(pid) for pid in f.read().split()]
                views = {pid: _fds(pid) for pid in children}
                kinds = sorted(len(v) == 6 and v[1] == "/dev/null" for v in views.values())
                if kinds == [False, True]:  # a running job and a spare waiting for the next
                    break
                time.sleep(0.02)
            else:
                raise AssertionError(f"no running job next to a spare: {children}")
            running = [pid for pid, fds in views.items() if fds[1] != "/dev/null"]
            spares = [pid for pid, fds in views.items() if fds[1] == "/dev/null"]
            assert len(running) == 1 and len(spares) == 1, views
            job_fds = set(views[running[0]].values()) - {"/dev/null"}
            spare_fds = views[spares[0]]
            assert not job_fds & set(spare_fds.values()), (job_fds, spare_fds)
            assert [spare_fds[fd] for fd in (0, 1, 2, 3)] == ["/dev/null"] * 4
        finally:
            worker.join()
