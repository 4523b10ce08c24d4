"""Starting and stopping gradschool's processes: the dev supervisor and the worker command lines."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from service.config import load_settings

STOP_SECONDS = 35  # the web's grace for requests in flight (service/ops/serve.py) and a margin


def worker_argv(queues: str, concurrency: int, beat: bool, data_dir: Path) -> list[str]:
    """The command line of a Celery grading worker."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    argv += ["--pool", "solo"] if concurrency == 1 else ["--pool", "prefork"]
    if beat:
        argv += ["--beat", "--schedule", str(data_dir / "celerybeat-schedule")]
    return argv


def web_argv(bind: str, workers: int, threads: int) -> list[str]:
    """The command line of the web: the portal and API under granian (service/ops/serve.py)."""
    return [
        sys.executable,
        "-m",
        "service.ops.serve",
        *("--bind", bind),
        *("--workers", str(workers)),
        *("--threads", str(threads)),
    ]


def beat_argv(data_dir: Path) -> list[str]:
    """The command line of the sweeper's scheduler (Celery beat)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "beat",
        "--schedule",
        str(data_dir / "celerybeat-schedule"),
        "--loglevel",
        "INFO",
    ]


def _prepare() -> None:
    from exercises.catalog import load_builtin_catalog
    from service.catalog import sync_catalog
    from service.cli import DEMO_EMAIL, DEMO_PASSWORD
    from service.data.migrate import upgrade
    from service.data.session import session_scope
    from service.errors import NotFound
    from service.users import create_token, create_user, find_user

    settings = load_settings(dev=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as db:
        sync_catalog(db, load_builtin_catalog())
        try:
            find_user(db, DEMO_EMAIL)
        except NotFound:
            user = create_user(db, DEMO_EMAIL, DEMO_PASSWORD)
            token = create_token(db, user, name="demo", days=None)
            (settings.data_dir / "demo-token").write_text(token + "\n")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process (started in a session of its own), then kill what is left of
    its group: the web server's worker processes outlive a main process that was killed,
    and would keep the port."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(proc.pid, signal.SIGKILL)


def run_dev(host: str, port: int) -> int:
    """Run web and worker on the embedded defaults until Ctrl-C; returns the exit code."""
    from service.cli import DEMO_EMAIL, DEMO_PASSWORD

    _prepare()
    settings = load_settings(dev=True)
    env = dict(os.environ, GRADSCHOOL_DEV="1", GRADSCHOOL_DATA_DIR=str(settings.data_dir))
    web = web_argv(f"{host}:{port}", workers=2, threads=4)
    worker = worker_argv("numeric,code", 1, True, settings.data_dir)
    names = ["web", "worker"]
    procs = [
        subprocess.Popen(web, env=env, start_new_session=True),
        subprocess.Popen(worker, env=env, start_new_session=True),
    ]
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    url = f"http://{host}:{port}/"
    token_file = settings.data_dir / "demo-token"
    click.echo(
        f"\ngradschool is running at {url}\n"
        f"  log in as {DEMO_EMAIL} with password {DEMO_PASSWORD}\n"
        f"  API token of the demo learner: {token_file}\n"
        f"  data: {settings.data_dir}   (Ctrl-C stops everything)\n",
    )
    code = 0
    try:
        while not stopping:
            for name, proc in zip(names, procs, strict=True):
                if proc.poll() is not None:
                    click.echo(f"the {name} process exited ({proc.returncode}); stopping", err=True)
                    stopping, code = True, 1
            time.sleep(0.2)
    finally:
        _stop(procs)
    click.echo("stopped")
    return code
