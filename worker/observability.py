"""The worker's metrics and log context: counted where grading happens, served by the worker.

Grading latency, task time and sandbox outcomes are events in a worker process,
so they are prometheus_client counters and histograms here, exported on the
worker's own endpoint (WORKER_METRICS_PORT; Prometheus sums over workers). With a
prefork pool (--concurrency > 1) set PROMETHEUS_MULTIPROC_DIR to an empty
directory of this worker's own, so the pool's processes add up (multiprocess
mode). The web's /metrics has the gauges read from the database and the broker.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import (
    celeryd_init,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)

from exercises.codejob import CodeRun
from service.data.models import utcnow
from service.logging_setup import TASK_REQUEST_ID_HEADER, bind, configure_logging, unbind
from service.ops import fsbroker
from service.queueing import GRADE_TASK

log = logging.getLogger(__name__)

GRADINGS = Counter(
    "gradschool_gradings_total",
    "Grading attempts by queue and outcome (graded, failed, skipped: a duplicate delivery).",
    ["queue", "outcome"],
)
LATENCY = Histogram(
    "gradschool_grading_latency_seconds",
    "From submission to verdict written (queue wait plus grading), by queue and outcome.",
    ["queue", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
TASK_SECONDS = Histogram(
    "gradschool_task_seconds",
    "Time a worker spent running a task, by task name.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 90),
)
SANDBOX_RUNS = Counter(
    "gradschool_sandbox_runs_total",
    "Code runs by outcome: CodeRun.status (ok, error, timeout, memory, output_limit, killed, "
    "forbidden), or sandbox_error when the sandbox itself failed.",
    ["status"],
)
SANDBOX_SECONDS = Histogram(
    "gradschool_sandbox_run_seconds",
    "Wall time of a code run in the sandbox, by outcome.",
    ["status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
)


def observe_grading(queue: str, outcome: str, created_at: datetime | None) -> None:
    """Count a grading attempt; a written verdict also records the submission's latency."""
    GRADINGS.labels(queue, outcome).inc()
    if outcome != "skipped" and created_at is not None:
        LATENCY.labels(queue, outcome).observe(max(0.0, (utcnow() - created_at).total_seconds()))


def observe_sandbox_run(run: CodeRun) -> None:
    """Count one code run by its outcome."""
    SANDBOX_RUNS.labels(run.status).inc()
    SANDBOX_SECONDS.labels(run.status).observe(run.wall_seconds)


def observe_sandbox_error() -> None:
    """Count a run the sandbox could not carry out (it raised instead of returning a CodeRun)."""
    SANDBOX_RUNS.labels("sandbox_error").inc()


def multiprocess_dir() -> Path | None:
    """PROMETHEUS_MULTIPROC_DIR, when this worker runs in multiprocess mode."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


def exporter_registry() -> CollectorRegistry:
    """What the worker's endpoint serves: this process, or every pool process's files."""
    folder = multiprocess_dir()
    if folder is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    return registry


def start_exporter(environ: dict[str, str] | None = None) -> int | None:
    """Serve /metrics on WORKER_METRICS_PORT (and WORKER_METRICS_ADDR); returns the port."""
    env = os.environ if environ is None else environ
    port = env.get("WORKER_METRICS_PORT")
    if not port:
        return None
    folder = multiprocess_dir()
    if folder is not None:
        # A fresh start: values of a previous run of this worker must not be added in.
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    start_http_server(
        int(port), addr=env.get("WORKER_METRICS_ADDR", "0.0.0.0"), registry=exporter_registry()
    )
    log.info("worker metrics on port %s", port)
    return int(port)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    pool = getattr(getattr(sender, "pool_cls", None), "__name__", "")
    if getattr(sender, "concurrency", 1) > 1 and multiprocess_dir() is None and "Solo" not in pool:
        log.warning(
            "a pool of %s processes without PROMETHEUS_MULTIPROC_DIR: the metrics endpoint "
            "shows only the parent process",
            sender.concurrency,
        )
    start_exporter()


def _on_setup_logging(loglevel: Any = None, **_: Any) -> None:
    configure_logging(loglevel or None)


def _on_worker_program_init(options: dict[str, Any] | None = None, **_: Any) -> None:
    # Earlier than setup_logging: the worker's own start-up warnings (running as root, which
    # the code worker does on purpose) are then JSON lines as well.
    configure_logging((options or {}).get("loglevel") or None)


# Per running task (by task id): when it started and the log context it bound.
_running: dict[str, tuple[float, dict[str, Any]]] = {}


def _on_task_prerun(
    task_id: str = "", task: Task | None = None, args: Any = None, **_: Any
) -> None:
    fields: dict[str, Any] = {"task_id": task_id}
    if task is not None and task.name == GRADE_TASK and args:
        ids = args[0]  # an id, or a batch's list of ids (one id is logged as that id)
        fields["submission_id"] = ids[0] if isinstance(ids, list) and len(ids) == 1 else ids
    request_id = getattr(task.request, TASK_REQUEST_ID_HEADER, None) if task is not None else None
    if request_id:
        fields["request_id"] = str(request_id)
    _running[task_id] = (time.perf_counter(), bind(**fields))


def _on_task_postrun(task_id: str = "", task: Task | None = None, **_: Any) -> None:
    started, tokens = _running.pop(task_id, (None, None))
    if task is not None and started is not None:
        TASK_SECONDS.labels(task.name).observe(time.perf_counter() - started)
    if tokens:
        unbind(tokens)


def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid or os.getpid())


def install(_celery_app: Celery) -> None:
    """Connect the hooks: JSON logs, per-task log context and timing, the metrics endpoint."""
    fsbroker.install()  # the embedded broker's message files appear only when complete
    celeryd_init.connect(_on_worker_program_init, weak=False, dispatch_uid="gradschool.early_log")
    setup_logging.connect(_on_setup_logging, weak=False, dispatch_uid="gradschool.logging")
    task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="gradschool.prerun")
    task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="gradschool.postrun")
    worker_init.connect(_on_worker_init, weak=False, dispatch_uid="gradschool.metrics")
    worker_process_shutdown.connect(
        _on_process_shutdown, weak=False, dispatch_uid="gradschool.metrics_dead"
    )
