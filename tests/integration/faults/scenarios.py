"""Fault scenarios, shared by the integration tests (small) and bench/faults.py (large).

Each one starts the real processes on private servers, sends a load, injects its faults,
waits for the system to settle and returns a Report: what the clients were told, what the
database holds, and the figures particular to the fault.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from sqlalchemy import select

from service.assignments import ItemSpec, create_assignment
from service.background import REGRADE_TASK
from service.courses import create_course, enrol
from service.data.models import CourseRole, Role, User
from service.data.session import session_scope
from service.queueing import GRADE_TASK
from service.users import create_token, create_user
from tests.integration.faults.harness import (
    PASSWORD,
    SLUG,
    Load,
    Outcome,
    System,
    Tally,
    count_status,
    libpq,
    query,
    running_system,
    tally,
    wait_all_done,
    wait_until,
)
from tests.integration.faults.servers import PrivatePostgres, PrivateRedis


@dataclass
class Report:
    """One scenario's outcome."""

    name: str
    tally: Tally
    settled: bool  # nothing left queued or running before the deadline
    faults: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    logs: str = ""

    def codes(self) -> Counter[int]:
        """Every HTTP status the load's clients saw (retries included; 0: no connection)."""
        return Counter(code for o in self.outcomes for code in o.codes)


def _done(counts: Counter[str]) -> int:
    return counts["graded"] + counts["failed"]


def _settle(system: System, outcomes: list[Outcome], timeout: float) -> tuple[bool, Tally]:
    settled = wait_all_done(system.database_url, timeout)
    return settled, tally(system.database_url, outcomes)


# ---------------------------------------------------------------------------------------------


def worker_kills(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    *,
    submissions: int,
    rounds: int = 1,
    settle: float = 90,
) -> Report:
    """kill -9 of grading workers while they drain a backlog, with every message delivered twice.

    Workers: `pool` (prefork, 2 processes) and `solo`. Half the submissions are sent while
    grading is paused; the other half come in one wave per fault. Each round: kill -9 one pool
    process (its parent re-delivers the task it held); kill -9 the whole `solo` worker (its
    claimed and prefetched messages stay unacknowledged in Redis: only the sweeper finds them)
    and start it again; kill -9 the whole `pool` worker and start it again.

    Before each fault grading is paused, the fault's wave is sent (and sent twice), the
    ungraded submissions are counted, and grading resumes: the fault strikes right after,
    while the workers take up the wave. (Striking at a share of one backlog's progress was a
    race: on a fast host the whole backlog could be graded before the first look.) A restarted
    worker is waited for before the next pause, since a pause must reach every worker.
    """
    settings = {"SWEEP_AFTER_SECONDS": "6", "RUNNING_GRACE_SECONDS": "4"}
    workers = {"pool": 2, "solo": 1}
    with running_system(
        data_dir, database_url, redis_server, workers=workers, settings=settings
    ) as system:
        load = Load(system)

        def kill_and_restart(name: str, concurrency: int) -> None:
            system.kill(name)
            system.start_workers({name: concurrency}, wait=False)

        actions: list[tuple[str, Callable[[], object]]] = [
            ("kill -9 a pool process", lambda: system.kill_pool_child("pool")),
            ("kill -9 worker solo", lambda: kill_and_restart("solo", 1)),
            ("kill -9 worker pool", lambda: kill_and_restart("pool", 2)),
        ]
        steps = [a for _ in range(rounds) for a in actions]
        wave = max(1, submissions // (2 * len(steps)))
        first = submissions - wave * len(steps)

        def send_paused(count: int) -> list[Outcome]:
            system.wait_ready(list(system.worker_names))
            system.pause_grading()
            sent = load.burst(count)
            system.send_duplicates([o.submission_id for o in sent if o.submission_id is not None])
            return sent

        outcomes = send_paused(first)
        system.resume_grading()
        remaining, running, after = [], [], []
        for i, (what, action) in enumerate(steps):
            # Not before this share of the first backlog is done (of what is done, at most the
            # i waves sent so far are not from it); a restart's wait may let it all be done.
            goal = (i + 1) * first // (len(steps) + 1) + i * wave
            wait_until(database_url, lambda c, g=goal: _done(c) >= g, settle, what, poll=0.05)
            outcomes += send_paused(wave)
            counts = count_status(database_url)
            remaining.append(len(outcomes) - _done(counts))
            system.resume_grading()
            action()
            counts = count_status(database_url)
            after.append(len(outcomes) - _done(counts))
            running.append(counts["running"])
        load.close()
        faults = [f"{len(outcomes)} duplicate deliveries", *(what for what, _ in steps)]
        settled, result = _settle(system, outcomes, settle)
        reclaimed = _query_one(
            database_url, "SELECT count(*) FROM submissions WHERE grading_attempts > 1"
        )
        return Report(
            "worker kill -9",
            result,
            settled,
            faults,
            outcomes,
            {
                "ungraded at each fault": remaining,
                "ungraded just after each fault": after,
                "running just after each fault": running,
                "claimed again after a lost claim": reclaimed,
            },
            system.diagnostics(),
        )


def _query_one(database_url: str, sql: str) -> int:
    return int(query(database_url, sql)[0][0])


def broker_restarts(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    *,
    submissions: int,
    during_outage: int,
    restarts: int = 1,
    settle: float = 90,
) -> Report:
    """Redis killed and restarted empty while submissions wait in it; more arrive meanwhile.

    Before each kill grading is paused and a few more answers are sent, so that messages
    surely wait in Redis when it dies: with batches of several answers per message and
    workers that prefetch, the backlog of the first burst can be all taken by then."""
    settings = {"SWEEP_AFTER_SECONDS": "3", "RUNNING_GRACE_SECONDS": "4"}
    waiting = max(1, submissions // (5 * restarts))  # sent just before each kill
    first = submissions - restarts * waiting
    with running_system(data_dir, database_url, redis_server, settings=settings) as system:
        load = Load(system)
        system.pause_grading()
        outcomes = load.burst(first)
        in_broker = redis_server.queue_length("numeric")
        system.resume_grading()
        faults: list[str] = []
        lost_messages: list[int] = []
        outage_posts: list[float] = []
        loaded: list[int] = []
        for k in range(restarts):
            goal = (k + 1) * first // (restarts + 2)
            wait_until(database_url, lambda c, g=goal: _done(c) >= g, settle, "progress", 0.05)
            system.pause_grading()  # what the workers hold already, they finish
            outcomes += load.burst(waiting)
            # The web's dispatcher sends after its answer (batched): wait for its message.
            sent_by = time.monotonic() + 10
            while redis_server.queue_length("numeric") == 0 and time.monotonic() < sent_by:
                time.sleep(0.02)
            lost_messages.append(redis_server.queue_length("numeric"))
            redis_server.kill()
            t0 = time.monotonic()
            during = load.burst(during_outage)
            outage_posts.append((time.monotonic() - t0) / max(1, during_outage))
            outcomes += during
            redis_server.start()
            loaded.append(redis_server.keys_loaded_at_start())
            system.resume_grading(within=60)
            faults.append(f"redis kill -9 + empty restart ({lost_messages[-1]} messages lost)")
        load.close()
        settled, result = _settle(system, outcomes, settle)
        return Report(
            "redis restarted empty",
            result,
            settled,
            faults,
            outcomes,
            {
                "messages in redis before": in_broker,
                "messages lost per restart": lost_messages,
                "keys loaded at restart": loaded,
                "POST latency while redis down (s)": [round(x, 3) for x in outage_posts],
            },
            system.diagnostics(),
        )


@dataclass(frozen=True)
class Probe:
    """One request made while the database was down (or just after)."""

    what: str
    status: int
    retry_after: str | None
    content_type: str


def _probe(api: httpx.Client, portal: httpx.Client, submission_id: int, key: str) -> list[Probe]:
    requests = [
        ("api GET submission", lambda: api.get(f"/api/v1/submissions/{submission_id}")),
        ("api GET exercises", lambda: api.get("/api/v1/exercises")),
        (
            "api POST submission",
            lambda: api.post(
                f"/api/v1/exercises/{SLUG}/submissions",
                json={"answers": {"w": 0, "b": 0, "x": 0}},
                headers={"Idempotency-Key": key},
            ),
        ),
        ("portal GET /", lambda: portal.get("/")),
        ("portal GET exercise", lambda: portal.get(f"/exercises/{SLUG}")),
    ]
    probes = []
    for what, send in requests:
        resp = send()
        probes.append(
            Probe(
                what,
                resp.status_code,
                resp.headers.get("Retry-After"),
                resp.headers.get("Content-Type", ""),
            )
        )
    return probes


def database_restarts(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    pg: PrivatePostgres,
    *,
    submissions: int,
    restarts: int = 1,
    outage: float = 2.0,
    settle: float = 90,
) -> Report:
    """PostgreSQL stopped (immediate: a crash) during a burst of POSTs, then started again.

    A few of the POSTs are sent only once the database is down, so that some surely meet the
    outage: on a fast host the burst's rest could all be answered before the stop."""
    settings = {"SWEEP_AFTER_SECONDS": "4", "RUNNING_GRACE_SECONDS": "4"}
    during = max(1, submissions // (10 * restarts))  # sent after each stop
    main = submissions - during * restarts
    with running_system(data_dir, database_url, redis_server, pg=pg, settings=settings) as system:
        load = Load(system, patience=outage * restarts + 60)
        first = load.submit_one(0)
        assert first.submission_id is not None
        api, portal = system.client(), system.portal()
        future = load.burst_in_background(main)
        extra: list[Future[list[Outcome]]] = []
        down: list[Probe] = []
        faults = []
        for k in range(restarts):
            load.wait_accepted(1 + (k + 1) * main // (restarts + 1))
            pg.stop("immediate")
            faults.append(f"postgres stop -m immediate for {outage:g} s")
            extra.append(load.burst_in_background(during, threads=min(8, during)))
            down += _probe(api, portal, first.submission_id, f"probe-{k}")
            time.sleep(outage)
            pg.start()
        outcomes = [first, *future.result(), *(o for f in extra for o in f.result())]
        load.close()
        settled, result = _settle(system, outcomes, settle)
        after = _probe(api, portal, first.submission_id, "probe-after")
        api.close()
        portal.close()
        web_log = system.stack.logs["web"].read_text(errors="replace")
        return Report(
            "postgres restarted",
            result,
            settled,
            faults,
            outcomes,
            {
                "probes while down": down,
                "probes after": after,
                "unhandled errors in web log": web_log.count("unhandled error"),
            },
            system.diagnostics(),
        )


def duplicate_posts(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    *,
    keys: int,
    copies: int = 3,
    settle: float = 90,
) -> Report:
    """Each POST sent `copies` times at the same moment with one Idempotency-Key."""
    with running_system(data_dir, database_url, redis_server) as system:
        load = Load(system)

        def same_key(index: int) -> list[Outcome]:
            key = f"{load.run_id}-dup-{index}"
            barrier = threading.Barrier(copies)

            def send(_: int) -> Outcome:
                barrier.wait()
                return load.submit_one(index, key)

            with ThreadPoolExecutor(copies) as pool:
                return list(pool.map(send, range(copies)))

        with ThreadPoolExecutor(2) as pool:
            groups = list(pool.map(same_key, range(keys)))
        load.close()
        outcomes = [o for group in groups for o in group]
        settled, result = _settle(system, outcomes, settle)
        ids_per_key = [len({o.submission_id for o in group}) for group in groups]
        created_per_key = [sum(o.codes[-1:] == [202] for o in group) for group in groups]
        return Report(
            "same POST sent repeatedly",
            result,
            settled,
            [f"{keys * (copies - 1)} repeated POSTs"],
            outcomes,
            {
                "keys": keys,
                "keys answered with more than one id": sum(n != 1 for n in ids_per_key),
                "keys with other than one 202": sum(n != 1 for n in created_per_key),
            },
            system.diagnostics(),
        )


def _set_rate_limit(system: System, rate: str | None) -> list[Any]:
    """Cap (or uncap) the workers' grading rate: a known capacity, whatever the machine."""
    return system.control("rate_limit", task_name=GRADE_TASK, rate_limit=rate or "0")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overload(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    *,
    submissions: int,
    rate: int,
    depth: int,
    threads: int = 24,
    settle: float = 120,
) -> Report:
    """A burst many times what the worker grades meanwhile, against MAX_QUEUE_DEPTH=`depth`.

    The worker is capped at `rate` gradings per second during the burst, so that its capacity
    is a known figure; the cap is lifted afterwards so that the backlog drains quickly.
    """
    settings = {"MAX_QUEUE_DEPTH": str(depth), "SWEEP_AFTER_SECONDS": "120"}
    with running_system(data_dir, database_url, redis_server, settings=settings) as system:
        load = Load(system, retry=())
        seed = load.submit_one(0)
        assert seed.submission_id is not None
        wait_until(database_url, lambda c: _done(c) >= 1, 30, "the first grading")
        replies = _set_rate_limit(system, f"{rate}/s")
        stop = threading.Event()
        queued: list[int] = []
        latencies: list[float] = []

        def sample_queue() -> None:
            with psycopg.connect(libpq(database_url), autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute(
                        "SELECT count(*) FROM submissions WHERE status = 'queued'"
                    ).fetchone()
                    queued.append(int(row[0]) if row else 0)
                    time.sleep(0.05)

        def read() -> None:
            with system.client() as http:
                while not stop.is_set():
                    t0 = time.monotonic()
                    resp = http.get(f"/api/v1/submissions/{seed.submission_id}")
                    latencies.append(time.monotonic() - t0)
                    resp.raise_for_status()
                    time.sleep(0.05)

        watchers = [threading.Thread(target=f, daemon=True) for f in (sample_queue, read)]
        for w in watchers:
            w.start()
        t0 = time.monotonic()
        outcomes = load.burst(submissions, threads)
        burst_seconds = time.monotonic() - t0
        stop.set()
        for w in watchers:
            w.join(10)
        # Reads while the queue is full and the worker still capped: the backlog alone.
        backlog: list[float] = []
        with system.client() as http:
            for _ in range(20):
                t1 = time.monotonic()
                http.get(f"/api/v1/submissions/{seed.submission_id}").raise_for_status()
                backlog.append(time.monotonic() - t1)
        queued_after = _query_one(
            database_url, "SELECT count(*) FROM submissions WHERE status = 'queued'"
        )
        _set_rate_limit(system, None)
        settled = wait_all_done(database_url, settle)
        after = load.submit_one(1)
        load.close()
        outcomes = [seed, *outcomes, after]
        wait_all_done(database_url, settle)
        result = tally(database_url, outcomes)
        refused = [o for o in outcomes if o.codes[-1:] == [429]]
        accepted_before_first_429 = (
            sum(o.accepted and o.sent < min(r.answered for r in refused) for o in outcomes)
            if refused
            else None
        )
        return Report(
            "10x capacity burst",
            result,
            settled,
            [f"{submissions} POSTs in {burst_seconds:.1f} s vs {rate}/s capacity"],
            outcomes,
            {
                "rate limit replies": replies,
                "burst seconds": burst_seconds,
                "capacity during burst": rate * burst_seconds,
                "times capacity": submissions / (rate * burst_seconds),
                "429": len(refused),
                "429 without Retry-After": sum(not o.retry_after for o in refused),
                "429 for another reason": sum("queue is full" not in o.detail for o in refused),
                "accepted before first 429": accepted_before_first_429,
                "max queued sampled": max(queued, default=0),
                "queue samples": len(queued),
                "GET p50 s": statistics.median(latencies) if latencies else float("nan"),
                "GET p95 s": _percentile(latencies, 0.95),
                "GET max s": max(latencies, default=float("nan")),
                "GETs": len(latencies),
                "queued after burst": queued_after,
                "GET p50 s, full queue": statistics.median(backlog),
                "GET p95 s, full queue": _percentile(backlog, 0.95),
                "after burst": after.codes,
            },
            system.diagnostics(),
        )


# ---------------------------------------------------------------------------------------------
# Regrade jobs whose messages the broker lost.


def _assignment_for_learners(system: System) -> tuple[int, int, str]:
    """A course taught by a new instructor, every learner enrolled, an assignment of SLUG;
    returns (course id, assignment id, the instructor's token)."""
    with session_scope(system.database_url) as db:
        learners = list(db.scalars(select(User)))
        email = f"instructor-{uuid.uuid4().hex[:6]}@example.test"
        staff = create_user(db, email, PASSWORD, Role.INSTRUCTOR)
        course = create_course(db, staff, f"faults-{uuid.uuid4().hex[:6]}", "Fault course")
        for learner in learners:
            enrol(db, course, learner, CourseRole.LEARNER)
        assignment = create_assignment(db, course, [ItemSpec(SLUG)], title="Regraded")
        return course.id, assignment.id, create_token(db, staff)


def _regrade_messages(redis_server: PrivateRedis, queue: str) -> int:
    """Regrade tasks waiting in a queue of the broker."""
    client = redis.Redis(port=redis_server.port, socket_connect_timeout=1)
    try:
        messages = [json.loads(m) for m in client.lrange(queue, 0, -1)]
    finally:
        client.close()
    return sum(m.get("headers", {}).get("task") == REGRADE_TASK for m in messages)


def _resume_when_reconnected(system: System, timeout: float) -> None:
    """Resume grading once every worker is connected to the restarted broker again."""
    end = time.monotonic() + timeout
    while True:
        try:
            system.resume_grading()
            return
        except Exception:  # no reply yet (still reconnecting), or no broker connection
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


def _jobs(database_url: str, job_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = query(
        database_url,
        "SELECT id, status, total, done, failed, changed FROM regrade_jobs WHERE id = ANY(%s)",
        (job_ids,),
    )
    keys = ("status", "total", "done", "failed", "changed")
    return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}


def regrade_broker_loss(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    *,
    per_learner: int = 2,
    settle: float = 90,
) -> Report:
    """Regrade jobs whose messages the broker lost, while a grader bug waits to be put right.

    Every learner answers an assignment `per_learner` times (wrongly: score 0) and is graded;
    then every stored score is made 1.0 (the bug). With the workers paused, an instructor
    regrades the assignment (its batches wait in Redis); Redis is killed and restarted empty;
    a second regrade is started while it is down (its publish fails, the POST still answers
    202). Only the sweeper can finish them.
    """
    settings = {"SWEEP_AFTER_SECONDS": "3", "RUNNING_GRACE_SECONDS": "4"}
    with running_system(data_dir, database_url, redis_server, settings=settings) as system:
        course_id, assignment_id, staff = _assignment_for_learners(system)
        outcomes = []
        for token in system.tokens * per_learner:
            outcome = Outcome(key=uuid.uuid4().hex, expected_score=0.0)
            with system.stack.client(token) as http:
                resp = http.post(
                    f"/api/v1/assignments/{assignment_id}/submissions",
                    json={"exercise": SLUG, "answers": {"w": 0, "b": 0, "x": 0}},
                )
            outcome.codes.append(resp.status_code)
            if resp.status_code == 202:
                outcome.submission_id = int(resp.json()["id"])
            outcomes.append(outcome)
        graded = wait_all_done(database_url, settle)
        with psycopg.connect(libpq(database_url), autocommit=True) as conn:
            conn.execute(
                "UPDATE submissions SET score = 1.0 WHERE assignment_id = %s", (assignment_id,)
            )
        system.pause_grading()
        url = f"/api/v1/courses/{course_id}/regrade-jobs"
        body = {"assignment_id": assignment_id}
        with system.stack.client(staff) as http:
            first = http.post(url, json=body)
            waiting = _regrade_messages(redis_server, "numeric")
            redis_server.kill()
            t0 = time.monotonic()
            second = http.post(url, json=body)
            outage_post = time.monotonic() - t0
            redis_server.start()
        codes = [first.status_code, second.status_code]
        job_ids = [int(r.json()["id"]) for r in (first, second) if r.status_code == 202]
        _resume_when_reconnected(system, settle)
        end = time.monotonic() + settle
        jobs = _jobs(database_url, job_ids)
        while time.monotonic() < end and any(j["status"] != "done" for j in jobs.values()):
            time.sleep(0.25)
            jobs = _jobs(database_url, job_ids)
        finished = all(j["status"] == "done" for j in jobs.values())
        history = Counter(
            (sid, job)
            for sid, job in query(
                database_url,
                "SELECT v.submission_id, v.regrade_job_id FROM submission_verdicts v"
                " JOIN submissions s ON s.id = v.submission_id WHERE s.assignment_id = %s",
                (assignment_id,),
            )
        )
        return Report(
            "regrade messages lost",
            tally(database_url, outcomes),
            graded and finished,
            [
                f"redis kill -9 + empty restart ({waiting} regrade messages lost)",
                "a regrade started while redis was down",
            ],
            outcomes,
            {
                "regrade POSTs": codes,
                "regrade messages in redis before": waiting,
                "regrade POST while redis down (s)": round(outage_post, 3),
                "jobs": [jobs[j] for j in job_ids],
                "history rows per submission and job": sorted(Counter(history.values()).items()),
                "history rows per job": Counter(job for _, job in history.elements()),
            },
            system.diagnostics(),
        )
