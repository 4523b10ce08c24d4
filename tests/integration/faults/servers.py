"""Private PostgreSQL and Redis servers on free ports, which fault tests may kill and restart.

The shared servers on 5432 and 6379 are never touched: every fault runs against a cluster and a
Redis of its own, started from the installed binaries. `initdb` refuses to run as root, so as root
the PostgreSQL binaries run as the `postgres` user on a data directory that user owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from tests.integration.stack import free_port


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    which = shutil.which("pg_ctl")
    if which is None:
        raise FileNotFoundError("no PostgreSQL binaries (pg_ctl) installed")
    return Path(which).parent


def _owned_by_postgres() -> bool:
    return os.geteuid() == 0


def _run_pg(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if _owned_by_postgres():
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)


class PrivatePostgres:
    """A PostgreSQL cluster of our own: initdb'd once, stopped and started at will."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="gradschool-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if _owned_by_postgres():
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        _run_pg(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # fsync=off is safe here: killing the server (not the machine) keeps what the OS has.
        # synchronous_commit stays on, so an acknowledged commit survives an immediate stop.
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        _run_pg(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` is a crash (no checkpoint, clients cut off)."""
        _run_pg([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def is_running(self) -> bool:
        """True while the postmaster runs."""
        return (self.data / "postmaster.pid").exists()

    def url(self, dbname: str = "postgres", driver: str = "psycopg") -> str:
        """A URL for `dbname`: SQLAlchemy's (`driver`="psycopg") or libpq's (`driver`="")."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        with psycopg.connect(self.url(driver=""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, cutting off whoever is still connected."""
        with psycopg.connect(self.url(driver=""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        """Stop the server (if running) and delete the cluster."""
        if self.is_running():
            self.stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A Redis of our own without persistence: a restart starts it empty."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gradschool-faults-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start redis-server and wait until it answers PING."""
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--logfile",
            str(self.root / "redis.log"),
        ]
        self.proc = subprocess.Popen(argv, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            end = time.monotonic() + 20
            while time.monotonic() < end:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
            raise TimeoutError(f"redis-server on {self.port} did not start")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: everything in it (queued and unacknowledged messages) is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def queue_length(self, queue: str) -> int:
        """Messages waiting in a Celery queue (a Redis list named after it)."""
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            return int(client.llen(queue))
        finally:
            client.close()

    def keys_loaded_at_start(self) -> int:
        """Keys the server loaded from disk when it last started (0: it started empty), read
        from INFO, so clients reconnecting at once cannot blur it as a queue length could."""
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            return int(client.info("persistence")["rdb_last_load_keys_loaded"])
        finally:
            client.close()

    def destroy(self) -> None:
        """Kill the server and delete its directory."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
