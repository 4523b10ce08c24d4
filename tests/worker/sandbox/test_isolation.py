"""Isolation properties that take more than one job, or look at the child's credentials."""

from __future__ import annotations

import os
import signal
import threading
import uuid

from exercises.codejob import CodeJob, CodeRun
from tests.worker.sandbox.conftest import MAXIMA, assert_normal_run, normal_job
from tests.worker.sandbox.hostile_programs import residue_scanner, residue_writer
from worker.sandbox import Sandbox, get_sandbox, limits_from_env

CREDENTIALS = """
def solve():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    keep = ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp")
    return {k: fields[k].split() for k in keep}
"""


def _run(sandbox: Sandbox, source: str) -> list[object]:
    run = sandbox.run(CodeJob(source, "solve", "call", [{}], MAXIMA))
    assert run.status == "ok", run
    return run.outputs


def test_child_is_unprivileged_and_filtered(sandbox: Sandbox) -> None:
    (status,) = _run(sandbox, CREDENTIALS)
    assert isinstance(status, dict)
    assert status["Uid"] == ["65534"] * 4 and status["Gid"] == ["65534"] * 4
    assert status["Groups"] == []
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == ["0000000000000000"]
    assert status["NoNewPrivs"] == ["1"] and status["Seccomp"] == ["2"]


def test_memory_of_an_earlier_job_is_not_readable() -> None:
    secret = f"learner-secret-{uuid.uuid4().hex}"
    with Sandbox(MAXIMA) as box:
        # The scanner works: in a job whose own source holds the secret, it finds it.
        holder = residue_scanner(secret) + f"\nKEEP = {secret!r}\n"
        (found,) = _run(box, holder)
        assert isinstance(found, list) and found[0] >= 1
        _run(box, residue_writer(secret))
        (report,) = _run(box, residue_scanner(secret))
    assert isinstance(report, list)
    hits, scanned, regions = report
    assert hits == 0
    assert scanned > 100 * 1024 * 1024 and regions > 50  # it really read the address space


def test_tmp_is_private_to_each_job(sandbox: Sandbox) -> None:
    writer = "def solve():\n    open('/tmp/left-behind', 'w').write('x')\n    return 1\n"
    reader = "import os\ndef solve():\n    return os.listdir('/tmp')\n"
    _run(sandbox, writer)
    assert _run(sandbox, reader) == [[]]


def test_learner_imports_work_after_the_uid_drop(sandbox: Sandbox) -> None:
    source = (
        "def solve():\n"
        "    import decimal, csv, heapq, bisect, string, textwrap, numpy, torch.nn\n"
        "    import xml.dom.minidom, email.message, sqlite3\n"
        "    return int(numpy.arange(4).sum())\n"
    )
    assert _run(sandbox, source) == [6]


def test_zygote_environment_holds_no_secret(sandbox: Sandbox) -> None:
    pid = sandbox.zygote_pid
    assert pid is not None
    with open(f"/proc/{pid}/environ", "rb") as f:
        names = {item.split(b"=", 1)[0] for item in f.read().split(b"\0") if item}
    assert names <= {
        b"PYTHONMALLOC",
        b"GLIBC_TUNABLES",
        b"OPENBLAS_NUM_THREADS",
        b"OMP_NUM_THREADS",
        b"MKL_NUM_THREADS",
        b"LC_ALL",
        b"PATH",
    }


def test_a_dead_zygote_is_restarted() -> None:
    with Sandbox(MAXIMA) as box:
        first = box.zygote_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert_normal_run(box.run(normal_job()))
        assert box.zygote_pid not in (None, first)
        assert box.restarts == 1


def test_one_sandbox_serves_threads_one_job_at_a_time(sandbox: Sandbox) -> None:
    runs: list[CodeRun] = []

    def client() -> None:
        for _ in range(3):
            runs.append(sandbox.run(normal_job()))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 6
    for run in runs:
        assert_normal_run(run)


def test_get_sandbox_is_one_lazily_started_instance_per_process() -> None:
    box = get_sandbox()
    assert get_sandbox() is box and box.zygote_pid is not None
    assert box.maxima == limits_from_env(os.environ)
    assert_normal_run(box.run(normal_job()))
