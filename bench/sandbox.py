"""Sandbox figures, measured in one run: `.venv/bin/python bench/sandbox.py [--jobs N]`.

Prints latency and CPU per job through one zygote, throughput with one zygote per
core, the naive design (a fresh interpreter importing torch per job) and memory.
CPU per job is counted where it is spent: the jailed child (wait4 rusage), the
zygote (its /proc stat) and this process; the whole machine's busy time is shown
too, but other processes on a shared machine add to it. Page faults per child come
from the same rusage.

Latency is measured twice: back to back (each job sent as soon as the last returned,
so the zygote is still forking and jailing the next child when the job arrives) and
at an idle sandbox (a pause of --gap seconds before each job, as when jobs arrive
less often than the sandbox can run them: the next child is then forked and jailed
before its job comes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exercises.codejob import CodeJob, SandboxLimits
from worker.sandbox import Sandbox

NEURON = """
import torch

def grad(w, b, x):
    w, b, x = (t.clone().requires_grad_(True) for t in (w, b, x))
    with torch.enable_grad():
        torch.sigmoid(w * x + b).sum().backward()
    return {"dw": w.grad, "db": b.grad, "dx": x.grad}
"""
NAIVE = (
    "import torch, json, sys\n"
    "torch.set_num_threads(1)\n"
    "w, b, x = (torch.tensor(v, dtype=torch.float64, requires_grad=True)\n"
    "           for v in ([0.5], [0.1], [2.0]))\n"
    "torch.sigmoid(w * x + b).sum().backward()\n"
    "print(json.dumps([w.grad.tolist(), b.grad.tolist(), x.grad.tolist()]))\n"
)
CLOCK = os.sysconf("SC_CLK_TCK")


def _tensor(values: list[float]) -> dict[str, object]:
    return {"__tensor__": values, "dtype": "float64", "requires_grad": False}


JOB = CodeJob(
    NEURON, "grad", "call", [{"w": _tensor([0.5]), "b": _tensor([0.1]), "x": _tensor([2.0])}]
)


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK  # utime + stime


def _busy() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLOCK


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(box: Sandbox, jobs: int) -> float:
    """Back-to-back jobs through one zygote: latency, CPU split, faults; returns the p50."""
    for _ in range(20):
        box.run(JOB)
    zygote = box.zygote_pid or 0
    walls, child_cpu, memory, faults = [], [], [], []
    z0, s0, b0 = _process_cpu(zygote), _self_cpu(), _busy()
    for _ in range(jobs):
        started = time.perf_counter()
        run = box.run(JOB)
        walls.append(time.perf_counter() - started)
        child_cpu.append(run.cpu_seconds)
        memory.append(run.peak_memory_kb)
        faults.append(box.last_report.get("minflt", 0) + box.last_report.get("majflt", 0))
        if run.status != "ok":
            raise SystemExit(f"bench job failed: {run}")
    zygote_cpu = (_process_cpu(zygote) - z0) / jobs
    parent_cpu = (_self_cpu() - s0) / jobs
    busy = (_busy() - b0) / jobs
    child = statistics.mean(child_cpu)
    print(f"one zygote, {jobs} sequential jobs (sigmoid neuron, forward + backward):")
    print(
        f"  latency back to back: p50 {_pct(walls, 0.5) * 1e3:.1f} ms,"
        f" p95 {_pct(walls, 0.95) * 1e3:.1f} ms"
    )
    print(
        f"  CPU per job {(child + zygote_cpu + parent_cpu) * 1e3:.1f} ms = child {child * 1e3:.1f}"
        f" + zygote {zygote_cpu * 1e3:.1f} + worker {parent_cpu * 1e3:.1f}"
        f" (whole machine busy {busy * 1e3:.1f} ms/job)"
    )
    print(f"  page faults per child: median {statistics.median(faults):.0f}")
    print(
        f"  zygote RSS {_rss_mb(zygote):.0f} MB; memory a job adds: median"
        f" {statistics.median(memory) / 1024:.1f} MB, max {max(memory) / 1024:.1f} MB"
    )
    return _pct(walls, 0.5)


def idle_latency(box: Sandbox, jobs: int, gap: float) -> float:
    """Jobs that arrive at an idle sandbox (a pause before each); returns the p50."""
    walls = []
    for _ in range(jobs):
        time.sleep(gap)
        started = time.perf_counter()
        run = box.run(JOB)
        walls.append(time.perf_counter() - started)
        if run.status != "ok":
            raise SystemExit(f"bench job failed: {run}")
    print(
        f"  latency at an idle sandbox ({gap * 1e3:.0f} ms between jobs, {jobs} jobs):"
        f" p50 {_pct(walls, 0.5) * 1e3:.1f} ms, p95 {_pct(walls, 0.95) * 1e3:.1f} ms"
    )
    return _pct(walls, 0.5)


def throughput(boxes: list[Sandbox], seconds: float) -> float:
    """One client thread per zygote, all busy for `seconds`; returns jobs per second."""
    counts = [0] * len(boxes)
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < stop:
            boxes[index].run(JOB)
            counts[index] += 1

    b0 = _busy()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(boxes))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    rate = sum(counts) / elapsed
    busy = (_busy() - b0) / max(1, sum(counts))
    print(f"{len(boxes)} zygotes, {len(boxes)} client threads, {elapsed:.1f} s:")
    print(f"  {rate:.0f} jobs/s (whole machine busy {busy * 1e3:.1f} ms/job)")
    return rate


def naive(samples: int) -> float:
    """A fresh interpreter that imports torch per job; returns seconds per job."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", NAIVE], check=True, capture_output=True, env={})
        times.append(time.perf_counter() - started)
    per_job = statistics.median(times)
    print(f"naive (fresh python + import torch per job), {samples} samples:")
    print(f"  {per_job * 1e3:.0f} ms per job, {1 / per_job:.2f} jobs/s on one core")
    return per_job


def naive_throughput(jobs: int) -> float:
    """Fresh interpreters, one per CPU at a time, as a fresh-process-per-submission worker
    pool would run them on this machine; returns jobs/s."""
    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(
            pool.map(
                lambda _: subprocess.run(
                    [sys.executable, "-c", NAIVE], check=True, capture_output=True, env={}
                ),
                range(jobs),
            )
        )
    rate = jobs / (time.perf_counter() - started)
    print(f"naive on every CPU ({os.cpu_count()} at a time, {jobs} jobs): {rate:.2f} jobs/s")
    return rate


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--naive-samples", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.02, help="pause before each idle job")
    parser.add_argument("--idle-jobs", type=int, default=100)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    maxima = SandboxLimits()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    boxes = [Sandbox(maxima), Sandbox(maxima)]
    print(f"start two zygotes: {time.perf_counter() - started:.1f} s")
    try:
        p50 = latency(boxes[0], args.jobs)
        idle_p50 = idle_latency(boxes[0], args.idle_jobs, args.gap)
        rate = throughput(boxes, args.seconds)
    finally:
        for box in boxes:
            box.close()
    per_job = naive(args.naive_samples)
    naive_rate = naive_throughput(2 * (os.cpu_count() or 1))
    print(
        f"speed-up over naive: latency {per_job / p50:.0f}x back to back"
        f" ({per_job / idle_p50:.0f}x idle), throughput {rate / naive_rate:.0f}x"
    )
    if args.out:
        figures = {
            "p50_ms": p50 * 1e3,
            "idle_p50_ms": idle_p50 * 1e3,
            "jobs_per_s": rate,
            "naive_ms_per_job": per_job * 1e3,
            "naive_jobs_per_s": naive_rate,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
