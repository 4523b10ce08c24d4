"""The system under fault: web, workers and sweeper on private servers; a load; the tally.

"Graded exactly once" is measured by the database itself, not by the code under test: a trigger
(installed only in the private test database) records every committed UPDATE that writes a
result (status graded or failed, with a new graded_at, score or verdict). A submission whose
result was written twice shows two rows, whatever the workers believed.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from service.data.session import session_scope
from service.processes import worker_argv
from service.queueing import GRADE_TASK
from service.users import create_token, create_user
from tests.integration.faults.servers import PrivatePostgres, PrivateRedis
from tests.integration.stack import GRADSCHOOL, Stack, free_port, prepare_database, wait_http

SLUG = "sigmoid-neuron"
PASSWORD = "correct-horse"  # every learner's (tests.integration.stack makes the first one)

AUDIT_SQL = """
CREATE TABLE fault_result_writes (
    id bigserial PRIMARY KEY,
    submission_id integer NOT NULL,
    status text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION fault_record_result() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fault_result_writes (submission_id, status) VALUES (NEW.id, NEW.status);
    RETURN NULL;
END $$;
CREATE TRIGGER fault_result_writes AFTER UPDATE ON submissions FOR EACH ROW
WHEN (
    NEW.status IN ('graded', 'failed') AND (
        OLD.status NOT IN ('graded', 'failed')
        OR NEW.graded_at IS DISTINCT FROM OLD.graded_at
        OR NEW.score IS DISTINCT FROM OLD.score
        OR NEW.verdict::text IS DISTINCT FROM OLD.verdict::text
    )
)
EXECUTE FUNCTION fault_record_result();
"""


def libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg wants it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


LEARNERS = 20  # the load's learners: a burst comes from many people, each under a rate limit


def prepare(database_url: str, learners: int = 1) -> list[str]:
    """Migrate, load the catalog, create learners, install the audit; returns their tokens."""
    tokens = [prepare_database(database_url)]
    with session_scope(database_url) as db:
        for i in range(1, learners):
            user = create_user(db, f"learner-{i}-{uuid.uuid4().hex[:6]}@example.test", PASSWORD)
            tokens.append(create_token(db, user))
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute(AUDIT_SQL)  # type: ignore[arg-type]
    return tokens


def pool_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (a prefork worker's pool)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class System:
    """The processes under test and the private servers they use."""

    stack: Stack
    database_url: str
    redis: PrivateRedis
    tokens: list[str]
    pg: PrivatePostgres | None = None
    worker_names: list[str] = field(default_factory=list)
    log_offsets: dict[str, int] = field(default_factory=dict)

    def start_workers(
        self, workers: dict[str, int], queues: str = "numeric", *, wait: bool = True
    ) -> None:
        """Start Celery grading workers (name -> concurrency: solo pool for 1, prefork beyond)
        side by side, and (unless `wait` is false) wait until every one consumes."""
        data_dir = Path(self.stack.env["GRADSCHOOL_DATA_DIR"])
        for name, concurrency in workers.items():
            log = self.stack.logs.get(name)
            self.log_offsets[name] = log.stat().st_size if log is not None and log.exists() else 0
            argv = worker_argv(queues, concurrency, False, data_dir)
            self.stack.start(name, [*argv, "--hostname", f"{name}@%h"])
            self.worker_names.append(name)
        if wait:
            self.wait_ready(list(workers))

    def wait_ready(self, names: list[str]) -> None:
        """Wait until the workers started last under these names consume."""
        for name in names:
            self.wait_log(name, " ready.", self.log_offsets.get(name, 0))

    def wait_log(self, name: str, text: str, offset: int = 0, timeout: float = 90.0) -> None:
        """Wait until process `name` writes `text` to its log (after byte `offset`)."""
        log = self.stack.logs[name]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if log.exists() and text in log.read_text(errors="replace")[offset:]:
                return
            proc = self.stack.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode})\n{self.stack.log_tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"{name} did not log {text!r} in {timeout} s\n{self.stack.log_tail()}")

    def diagnostics(self) -> str:
        """For failure messages: every process's first traceback, then its last lines."""
        firsts = []
        for name, log in self.stack.logs.items():
            text = log.read_text(errors="replace") if log.exists() else ""
            at = text.find("Traceback (most recent call last)")
            if at >= 0:
                firsts.append(f"--- {name}: first traceback\n{text[max(0, at - 300) : at + 4000]}")
        return "\n".join([*firsts, self.stack.log_tail()])

    def kill(self, name: str) -> None:
        """kill -9 a whole process group (a worker with its pool), no chance to clean up."""
        self.stack.stop(name, signal.SIGKILL)
        if name in self.worker_names:
            self.worker_names.remove(name)

    def kill_pool_child(self, name: str) -> int:
        """kill -9 one pool process of a prefork worker; its parent sees the loss."""
        self.wait_ready([name])  # a worker restarted a moment ago may not have forked yet
        children = pool_children(self.stack.procs[name].pid)
        if not children:
            raise RuntimeError(f"{name} has no pool processes")
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def client(self) -> httpx.Client:
        """An API client as the learner."""
        return self.stack.client()

    def portal(self) -> httpx.Client:
        """A browser-like client, logged in to the portal as the learner."""
        (email,) = query(self.database_url, "SELECT email FROM users ORDER BY id LIMIT 1")[0]
        http = httpx.Client(base_url=self.stack.base_url, timeout=10, follow_redirects=False)
        page = http.get("/login").text
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        resp = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
        if resp.status_code != 302:
            raise RuntimeError(f"portal login failed: {resp.status_code}")
        return http

    def control(self, command: str, **arguments: Any) -> list[Any]:
        """A Celery remote-control command to every running worker; returns their replies."""
        app = Celery("faults", broker=self.redis.url)
        try:
            replies: list[Any] = app.control.broadcast(
                command,
                arguments=arguments,
                reply=True,
                timeout=5,
                limit=len(self.worker_names),  # then no need to wait out the timeout
            )
            return replies
        finally:
            app.close()

    def pause_grading(self, within: float = 15.0) -> None:
        """Workers stop taking grading tasks (so that a backlog builds up in the broker).

        Asks again, for `within` seconds, until every worker has answered: a worker logs
        "ready." a moment before it listens for broadcasts (it subscribes on its event
        loop's first turn), and a broadcast sent in between is not kept for it. Asking a
        worker again is harmless."""
        self._ask_every_worker("cancel_consumer", within)

    def resume_grading(self, within: float = 0.0) -> None:
        """Workers take grading tasks again. `within`: seconds to keep asking the workers that
        have not answered yet (after a broker restart they answer once they have reconnected;
        asking one again is harmless)."""
        self._ask_every_worker("add_consumer", within)

    def _ask_every_worker(self, command: str, within: float) -> None:
        end = time.monotonic() + within
        answered: set[str] = set()
        while True:
            try:
                replies = self.control(command, queue="numeric")
            except (OSError, RedisError, KombuError):  # the broker not answering (yet)
                replies = []
            answered.update(name.partition("@")[0] for reply in replies for name in reply)
            if answered >= set(self.worker_names):
                return
            if time.monotonic() >= end:
                raise RuntimeError(f"{command}: {sorted(answered)} of {self.worker_names}")
            time.sleep(0.5)

    def send_duplicates(self, submission_ids: list[int]) -> None:
        """Publish a second grading task for each id, as a broker re-delivery would."""
        app = Celery("faults", broker=self.redis.url)
        app.conf.broker_connection_retry_on_startup = False
        try:
            with app.producer_or_acquire() as producer:
                for sid in submission_ids:
                    app.send_task(GRADE_TASK, args=[sid], queue="numeric", producer=producer)
        finally:
            app.close()


def base_env(data_dir: Path, database_url: str, broker_url: str, **settings: str) -> dict[str, str]:
    """The environment of every process of the system."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.pop("BROKER_KEY_PREFIX", None)
    env.update(
        GRADSCHOOL_DATA_DIR=str(data_dir),
        SECRET_KEY="fault-secret",
        DATABASE_URL=database_url,
        BROKER_URL=broker_url,
        PYTHONUNBUFFERED="1",
        # Several threads per web process, so that reads are not stuck behind a burst of POSTs.
        WEB_THREADS="4",
        # The portal's session cookie over plain http (the tests have no TLS).
        GRADSCHOOL_FLASK_SESSION_COOKIE_SECURE="false",
    )
    env.update(settings)
    return env


@contextmanager
def running_system(
    data_dir: Path,
    database_url: str,
    redis_server: PrivateRedis,
    *,
    pg: PrivatePostgres | None = None,
    workers: dict[str, int] | None = None,
    web_workers: int = 2,
    sweeper: bool = True,
    settings: dict[str, str] | None = None,
) -> Iterator[System]:
    """Web (granian), workers (name -> concurrency) and the sweeper (beat), torn down after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = base_env(data_dir, database_url, redis_server.url, **(settings or {}))
    tokens = prepare(database_url, LEARNERS)
    port = free_port()
    stack = Stack(base_url=f"http://127.0.0.1:{port}", env=env, token=tokens[0])
    system = System(stack, database_url, redis_server, tokens, pg)
    try:
        web = [*GRADSCHOOL, "web", "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers)]
        stack.start("web", web)
        if sweeper:
            stack.start("sweeper", [*GRADSCHOOL, "sweeper"])
        system.start_workers({"worker": 1} if workers is None else workers)
        wait_http(stack.base_url + "/login")
        yield system
    finally:
        for name in list(stack.procs):
            stack.stop(name, signal.SIGKILL if name in system.worker_names else signal.SIGTERM)


# ---------------------------------------------------------------------------------------------
# The load: learners' POSTs with Idempotency-Keys, retried the way a careful client retries.


def right_answers(params: dict[str, float]) -> dict[str, float]:
    """dloss/dw, db, dx of the notes' neuron, loss = (1 - sigmoid(w*x + b))**2, by hand.

    The worker checks them against autograd; the load only needs answers it knows are right
    (and the test process then never imports torch).
    """
    x, w, b = (float(params[k]) for k in "xwb")
    y = 1 / (1 + math.exp(-(w * x + b)))
    dz = -2 * (1 - y) * y * (1 - y)
    return {"w": dz * x, "b": dz, "x": dz * w}


@dataclass
class Outcome:
    """What the client saw for one logical submission (one Idempotency-Key)."""

    key: str
    expected_score: float
    codes: list[int] = field(default_factory=list)
    retry_after: list[str] = field(default_factory=list)
    submission_id: int | None = None
    detail: str = ""  # of the last refusal
    sent: float = 0.0
    answered: float = 0.0

    @property
    def accepted(self) -> bool:
        """202 (created) or 200 (the same key's submission)."""
        return self.submission_id is not None


_keys = itertools.count()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Load:
    """Sends submissions, right and wrong answers alternately, each under its own key.

    Retries the way a careful client does: the same Idempotency-Key after a 503 (or a dropped
    connection), so a retry can never add a second submission.
    """

    def __init__(self, system: System, *, retry: tuple[int, ...] = (503,), patience: float = 60):
        self.system = system
        self.retry = retry
        self.patience = patience
        self.right: list[dict[str, float]] = []  # each learner has own numbers, own answers
        with httpx.Client(base_url=system.stack.base_url, timeout=10) as http:
            for token in system.tokens:
                resp = http.get(f"/api/v1/exercises/{SLUG}", headers=_bearer(token))
                resp.raise_for_status()
                self.right.append(right_answers(resp.json()["variant"]["params"]))
        self.wrong = {"w": 0, "b": 0, "x": 0}
        self.run_id = uuid.uuid4().hex[:8]
        self.accepted = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "http", None)
        if client is None:
            client = httpx.Client(base_url=self.system.stack.base_url, timeout=10)
            self._local.http = client
            with self._lock:
                self._clients.append(client)
        return client

    def submit_one(self, index: int, key: str | None = None) -> Outcome:
        """POST one answer (learner and right or wrong by `index`) until it is accepted,
        refused for good, or patience runs out."""
        learner = index % len(self.right)
        right = index // len(self.right) % 2 == 0
        key = key or f"{self.run_id}-{next(_keys)}"
        outcome = Outcome(key=key, expected_score=float(right))
        body = {"answers": self.right[learner] if right else self.wrong}
        headers = {"Idempotency-Key": key, **_bearer(self.system.tokens[learner])}
        outcome.sent = time.monotonic()
        end = outcome.sent + self.patience
        while time.monotonic() < end:
            try:
                resp = self._http().post(
                    f"/api/v1/exercises/{SLUG}/submissions", json=body, headers=headers
                )
            except httpx.TransportError:
                outcome.codes.append(0)
                time.sleep(0.2)
                continue
            outcome.codes.append(resp.status_code)
            if resp.status_code in (200, 202):
                outcome.submission_id = int(resp.json()["id"])
                with self._lock:
                    self.accepted += 1
                break
            if "Retry-After" in resp.headers:
                outcome.retry_after.append(resp.headers["Retry-After"])
            if resp.status_code >= 400:
                outcome.detail = resp.json().get("detail", "")
            if resp.status_code not in self.retry:
                break
            # A real client waits Retry-After seconds; the tests wait less to stay short.
            time.sleep(min(0.25, float(resp.headers.get("Retry-After", "1"))))
        outcome.answered = time.monotonic()
        return outcome

    def burst(self, count: int, threads: int = 8) -> list[Outcome]:
        """`count` submissions from `threads` concurrent clients, as fast as they are answered."""
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(self.submit_one, range(count)))

    def burst_in_background(self, count: int, threads: int = 8) -> Future[list[Outcome]]:
        """The same burst, running while the caller injects faults."""
        runner = ThreadPoolExecutor(1)
        future = runner.submit(self.burst, count, threads)
        runner.shutdown(wait=False)
        return future

    def wait_accepted(self, count: int, timeout: float = 60) -> None:
        """Wait until `count` submissions of this load were accepted."""
        end = time.monotonic() + timeout
        while self.accepted < count:
            if time.monotonic() > end:
                raise TimeoutError(f"only {self.accepted} of {count} accepted in {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        """Close every thread's HTTP client."""
        for client in self._clients:
            client.close()


# ---------------------------------------------------------------------------------------------
# Watching the database (which may be down for a while: every look reconnects).


def query(database_url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of one statement, on a connection of its own (the test's view of the database)."""
    with psycopg.connect(libpq(database_url), connect_timeout=3, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def count_status(database_url: str) -> Counter[str]:
    """Submissions per status."""
    rows = query(database_url, "SELECT status, count(*) FROM submissions GROUP BY status")
    return Counter({status: int(n) for status, n in rows})


def wait_until(
    database_url: str, predicate: Any, timeout: float, what: str, poll: float = 0.2
) -> Counter[str]:
    """Poll the status counts until `predicate(counts)` holds; survives database outages."""
    end = time.monotonic() + timeout
    counts: Counter[str] = Counter()
    while time.monotonic() < end:
        try:
            counts = count_status(database_url)
        except psycopg.OperationalError:
            counts = Counter()
        else:
            if predicate(counts):
                return counts
        time.sleep(poll)
    raise TimeoutError(f"{what}: not reached in {timeout} s; last counts {dict(counts)}")


def wait_all_done(database_url: str, timeout: float) -> bool:
    """Wait until no submission is queued or running; False on timeout."""
    try:
        wait_until(
            database_url,
            lambda c: c["queued"] == 0 and c["running"] == 0,
            timeout,
            "every submission graded",
            poll=0.25,
        )
    except TimeoutError:
        return False
    return True


@dataclass(frozen=True)
class Tally:
    """The figures of one run."""

    submissions: int  # accepted by the web (distinct submission ids)
    rows: int  # submission rows in the database (a retried POST must not add one)
    graded: int  # graded with the expected score
    wrong: int  # graded with another score, or failed
    lost: int  # accepted but never graded
    duplicated: int  # whose result was written more than once
    result_writes: int  # every result write the trigger saw
    claims: int  # grading attempts (claims), duplicates and re-deliveries included

    def as_row(self) -> dict[str, int]:
        """The figures as a dict, for tables."""
        return dict(self.__dict__)


def tally(database_url: str, outcomes: list[Outcome]) -> Tally:
    """Compare what the clients were told with what the database holds."""
    expected = {o.submission_id: o.expected_score for o in outcomes if o.accepted}
    rows = {
        sid: (status, score, attempts)
        for sid, status, score, attempts in query(
            database_url, "SELECT id, status, score, grading_attempts FROM submissions"
        )
    }
    writes = Counter(
        sid for (sid,) in query(database_url, "SELECT submission_id FROM fault_result_writes")
    )
    graded = wrong = lost = 0
    for sid, score in expected.items():
        status, got, _ = rows.get(sid, ("missing", None, 0))
        if status == "graded" and got == score:
            graded += 1
        elif status in ("graded", "failed"):
            wrong += 1
        else:
            lost += 1
    return Tally(
        submissions=len(expected),
        rows=len(rows),
        graded=graded,
        wrong=wrong,
        lost=lost,
        duplicated=sum(1 for n in writes.values() if n > 1),
        result_writes=sum(writes.values()),
        claims=sum(attempts for _, _, attempts in rows.values()),
    )
