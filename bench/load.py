"""End-to-end load on the production stack: granian, Celery workers, Redis, PostgreSQL.

Open-loop: POSTs are sent on a fixed schedule whatever the server's answers, so the
offered rate is what it says. Submit-to-graded latency comes from the server's own
timestamps (created_at -> graded_at); GET latency is sampled while the load runs by a
client process of its own; CPU and RSS per process come from /proc (psutil). Loopback only, bounded
in count and time. Prints a table per scenario and writes JSON for the plot.

    .venv/bin/python bench/load.py --scenario numeric --rates 100,200,300,400 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import rawhttp  # noqa: E402
from bench.harness import BenchStack, answer_bodies, start_stack  # noqa: E402
from service.data.session import get_engine  # noqa: E402

GET_RATE = 20.0  # GETs per second while the POSTs run


@dataclass
class RunResult:
    """One scenario at one offered rate."""

    scenario: str
    mode: str
    offered_rate: float
    seconds: float
    submitted: int
    accepted: int
    rejected: dict[str, int]
    graded: int
    achieved_rate: float
    latency_ms: dict[str, float]
    post_ms: dict[str, float]
    get_ms: dict[str, float]
    cpu_ms_per_submission: dict[str, float]
    rss_mb: dict[str, float]
    loadgen_cpu_ms_per_submission: float
    notes: list[str] = field(default_factory=list)
    client: str = "raw"  # the POST driver's HTTP client


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values, or NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max, rounded."""
    return {
        "p50": round(pct(values, 50), 2),
        "p95": round(pct(values, 95), 2),
        "p99": round(pct(values, 99), 2),
        "max": round(max(values), 2) if values else float("nan"),
        "n": len(values),
    }


async def _drive(
    stack: BenchStack,
    slug: str,
    bodies: list[dict[str, Any]],
    rate: float,
    seconds: float,
    found: Any,
    client: str = "raw",
) -> tuple[list[int], list[float], Counter[str]]:
    """Send POSTs at `rate` for `seconds`, telling `found` (the GET sampler) the accepted
    submissions; returns ids, POST ms, codes. The requests go through bench/rawhttp.py
    (`client` "raw") or aiohttp ("aiohttp", what the generator used before)."""
    n = int(rate * seconds)
    ids: list[int] = []
    post_ms: list[float] = []
    codes: Counter[str] = Counter()
    path = f"/api/v1/exercises/{slug}/submissions"

    def answered(status: int, content: bytes, token: str) -> None:
        """Count the status; for an accepted answer (only those are read), tell the sampler."""
        codes[str(status)] += 1
        if status == 202:
            sid = int(json.loads(content)["id"])
            ids.append(sid)
            found.write(f"{sid} {token}\n")
            found.flush()

    async def schedule(post: Callable[[int], Any]) -> None:
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i)))
        await asyncio.gather(*tasks)

    if client == "raw":
        url = urlsplit(stack.base_url)
        async with rawhttp.Client(url.hostname or "127.0.0.1", url.port or 80) as raw:
            built: dict[tuple[int, int], bytes] = {}

            async def post_raw(i: int) -> None:
                key = (i % len(stack.tokens), i % len(bodies))
                request = built.get(key)
                if request is None:
                    headers = {
                        "Authorization": f"Bearer {stack.tokens[key[0]]}",
                        "Content-Type": "application/json",
                    }
                    body = json.dumps(bodies[key[1]]).encode()
                    request = built[key] = raw.request_bytes("POST", path, headers, body)
                t0 = time.perf_counter()
                try:
                    status, content = await raw.send(request)
                    answered(status, content, stack.tokens[key[0]])
                except (rawhttp.HttpError, TimeoutError, ValueError) as err:
                    codes[type(err).__name__] += 1
                post_ms.append((time.perf_counter() - t0) * 1000)

            await schedule(post_raw)
        return ids, post_ms, codes

    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(stack.base_url, connector=connector, timeout=timeout) as http:

        async def post(i: int) -> None:
            token = stack.tokens[i % len(stack.tokens)]
            t0 = time.perf_counter()
            try:
                async with http.post(
                    path,
                    json=bodies[i % len(bodies)],
                    headers={"Authorization": f"Bearer {token}"},
                ) as resp:
                    answered(resp.status, await resp.read(), token)
            except (aiohttp.ClientError, TimeoutError) as err:
                codes[type(err).__name__] += 1
            post_ms.append((time.perf_counter() - t0) * 1000)

        await schedule(post)
    return ids, post_ms, codes


def _drive_and_sample(
    stack: BenchStack,
    slug: str,
    bodies: list[dict[str, Any]],
    rate: float,
    seconds: float,
    client: str,
) -> tuple[list[int], list[float], Counter[str], list[float]]:
    """The POSTs, and the GET sampler (bench/getsampler.py, a process of its own) at 20/s."""
    sampler = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "getsampler.py"), stack.base_url, str(GET_RATE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sampler.stdin is not None
    try:
        ids, post_ms, codes = asyncio.run(
            _drive(stack, slug, bodies, rate, seconds, sampler.stdin, client)
        )
    finally:
        out, _ = sampler.communicate(timeout=60)  # closes its stdin: it prints and exits
    get_ms: list[float] = json.loads(out)
    return ids, post_ms, codes, get_ms


def _wait_graded(stack: BenchStack, ids: list[int], timeout: float) -> int:
    engine = get_engine(stack.database_url)
    end = time.monotonic() + timeout
    done = 0
    while time.monotonic() < end and ids:
        with engine.connect() as conn:
            done = conn.execute(
                text(
                    "SELECT count(*) FROM submissions WHERE id >= :lo AND id <= :hi"
                    " AND status IN ('graded', 'failed')"
                ),
                {"lo": min(ids), "hi": max(ids)},
            ).scalar_one()
        if done >= len(ids):
            break
        time.sleep(0.2)
    return int(done)


def _server_latencies(stack: BenchStack, ids: list[int]) -> tuple[list[float], float]:
    if not ids:
        return [], 0.0
    with get_engine(stack.database_url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT EXTRACT(EPOCH FROM created_at), EXTRACT(EPOCH FROM graded_at)"
                " FROM submissions "
                "WHERE id >= :lo AND id <= :hi AND graded_at IS NOT NULL"
            ),
            {"lo": min(ids), "hi": max(ids)},
        ).all()
    lat = [(float(g) - float(c)) * 1000 for c, g in rows]
    span = max(float(g) for _, g in rows) - min(float(c) for c, _ in rows) if rows else 0.0
    return lat, (len(rows) / span if span > 0 else 0.0)


def _cpu(procs: dict[str, list[psutil.Process]]) -> dict[tuple[str, int], float]:
    """CPU seconds per (group, pid), including children that exited and were reaped
    (PostgreSQL backends that ended show up in the postmaster's children times)."""
    out: dict[tuple[str, int], float] = {}
    for group, members in procs.items():
        for p in members:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[(group, p.pid)] = t.user + t.system + t.children_user + t.children_system
    return out


def _cpu_delta(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]
) -> dict[str, float]:
    groups: dict[str, float] = {}
    for key, value in after.items():
        groups[key[0]] = groups.get(key[0], 0.0) + value - before.get(key, 0.0)
    return groups


def _rss(procs: dict[str, list[psutil.Process]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for group, members in procs.items():
        vals = []
        for p in members:
            try:
                vals.append(p.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                continue
        out[group] = round(max(vals), 1) if vals else 0.0
    return out


def run_rate(
    stack: BenchStack,
    scenario: str,
    slug: str,
    bodies: list[dict[str, Any]],
    rate: float,
    seconds: float,
    client: str = "raw",
) -> RunResult:
    """One open-loop run at `rate`, then wait for the queue to drain."""
    me = psutil.Process()
    cpu0, me0 = _cpu(stack.process_groups()), sum(me.cpu_times()[:4])  # with the GET sampler
    ids, post_ms, codes, get_ms = _drive_and_sample(stack, slug, bodies, rate, seconds, client)
    graded = _wait_graded(stack, ids, timeout=max(60, seconds * 6))
    procs = stack.process_groups()
    cpu = _cpu_delta(cpu0, _cpu(procs))
    me1 = sum(me.cpu_times()[:4])
    lat, achieved = _server_latencies(stack, ids)
    n = max(1, len(ids))
    return RunResult(
        scenario=scenario,
        mode=stack.mode,
        offered_rate=rate,
        seconds=seconds,
        submitted=int(rate * seconds),
        accepted=len(ids),
        rejected={k: v for k, v in codes.items() if k != "202"},
        graded=graded,
        achieved_rate=round(achieved, 1),
        latency_ms=summary(lat),
        post_ms=summary(post_ms),
        get_ms=summary(get_ms),
        cpu_ms_per_submission={g: round(v * 1000 / n, 2) for g, v in cpu.items()},
        rss_mb=_rss(procs),
        loadgen_cpu_ms_per_submission=round((me1 - me0) * 1000 / n, 2),
        client=client,
    )


COLUMNS: list[tuple[str, str, Callable[[RunResult], object]]] = [
    ("scenario", "<9", lambda r: r.scenario),
    ("mode", "<7", lambda r: r.mode),
    ("offered/s", ">9", lambda r: f"{r.offered_rate:.0f}"),
    ("achieved/s", ">10", lambda r: f"{r.achieved_rate:.1f}"),
    ("graded", ">11", lambda r: f"{r.graded}/{r.accepted}"),
    ("p50 ms", ">8", lambda r: f"{r.latency_ms['p50']:.1f}"),
    ("p95 ms", ">8", lambda r: f"{r.latency_ms['p95']:.1f}"),
    ("p99 ms", ">8", lambda r: f"{r.latency_ms['p99']:.1f}"),
    ("GET p95", ">8", lambda r: f"{r.get_ms['p95']:.1f}"),
    ("web cpu", ">8", lambda r: f"{r.cpu_ms_per_submission.get('web', 0):.2f}"),
    ("wrk cpu", ">8", lambda r: f"{r.cpu_ms_per_submission.get('worker', 0):.2f}"),
    ("pg cpu", ">7", lambda r: f"{r.cpu_ms_per_submission.get('postgres', 0):.2f}"),
    ("redis", ">6", lambda r: f"{r.cpu_ms_per_submission.get('redis', 0):.2f}"),
    ("gen cpu", ">8", lambda r: f"{r.loadgen_cpu_ms_per_submission:.2f}"),
    ("rejected", ">9", lambda r: sum(r.rejected.values())),
]


def print_table(results: list[RunResult]) -> None:
    """A plain-text table of the runs (cpu columns: ms of CPU per accepted submission)."""
    head = " ".join(f"{name:{align}}" for name, align, _ in COLUMNS)
    print(head)
    print("-" * len(head))
    for r in results:
        print(" ".join(f"{get(r)!s:{align}}" for _, align, get in COLUMNS))


SCENARIOS: dict[str, str] = {
    "numeric": "sigmoid-neuron",
    "formula": "sigmoid-neuron-formula",
    "code": "sigmoid-neuron-code",
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios at the chosen rates and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", default="numeric", help="numeric, formula, code, mix (comma-separated)"
    )
    parser.add_argument("--rates", default="100,200,300,400")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--mode", default="celery", choices=["celery", "inline"])
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of load per exercise before measuring, not reported: every learner "
        "answers 3 times (first requests fill the web's caches, first gradings compute "
        "references and start sandboxes)",
    )
    parser.add_argument(
        "--client",
        default="raw",
        choices=["raw", "aiohttp"],
        help="the POST driver's HTTP client (its CPU is taken from the system it measures)",
    )
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "load.json"))
    args = parser.parse_args(argv)

    results: list[RunResult] = []
    with start_stack(mode=args.mode, web_workers=args.web_workers, workers=args.workers) as stack:
        for scenario in args.scenario.split(","):
            slugs = list(SCENARIOS.values()) if scenario == "mix" else [SCENARIOS[scenario]]
            for slug in slugs if args.warmup > 0 else []:
                # Every learner a few times, so that each web process has every token cached.
                rate = 3 * len(stack.tokens) / args.warmup
                bodies = answer_bodies(stack, slug)
                run_rate(stack, "warmup", slug, bodies, rate, args.warmup, args.client)
            for rate in (float(r) for r in args.rates.split(",")):
                per_slug = rate / len(slugs)
                for slug in slugs:
                    bodies = answer_bodies(stack, slug)
                    results.append(
                        run_rate(stack, scenario, slug, bodies, per_slug, args.seconds, args.client)
                    )
                    print_table(results[-1:])
    print()
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(existing + [asdict(r) for r in results], indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
