"""The web's HTTP server: granian (HTTP in Rust) running `service.wsgi:app` in worker processes.

`gradschool web` and `gradschool dev` exec `python -m service.ops.serve`. Why granian and not
gunicorn: under 300 numeric answers/s on 2 cores, gunicorn's HTTP parsing, thread hand-offs
and heartbeat in Python cost about a quarter of the web's CPU per answer, and GETs queued
behind them (docs/PERFORMANCE.md, session 6). granian parses HTTP and keeps connections in
Rust and enters Python only to call the app, in a pool of threads per process.

    python -m service.ops.serve --bind 0.0.0.0:8000 --workers 2 --threads 4
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from typing import Any

from service.ops.access_log import ACCESS_LOGGER

APP = "service.wsgi:app"
GRACEFUL_SECONDS = 30  # in-flight requests finish within this after SIGTERM, then workers die


def parse_bind(bind: str) -> tuple[str, int]:
    """`host:port` (`[v6]:port` for IPv6) as (host, port); ValueError with the reason."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--bind takes HOST:PORT, got {bind!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port)


def resolve(host: str) -> str:
    """An IP address for `host` (granian binds addresses, not names); ValueError if none."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise ValueError(f"--bind: cannot resolve host {host!r}") from err
    return str(infos[0][4][0])


def log_config() -> dict[str, Any]:
    """granian's own records (start, workers, errors) as every other line of the process:
    JSON unless LOG_FORMAT=text, on stderr (`service.logging_setup`). Its access log stays
    off: `service.ops.access_log` writes ours, with the request id."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gradschool": {"()": "service.logging_setup.make_formatter"}},
        "handlers": {
            "stderr": {"class": "service.logging_setup.StderrHandler", "formatter": "gradschool"}
        },
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            ACCESS_LOGGER: {"level": "INFO"},
        },
    }


def serve(address: str, port: int, workers: int, threads: int) -> None:
    """Serve the app on `address` (an IP address) until SIGTERM or SIGINT; a worker that
    dies is started again."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces

    Granian(
        APP,
        address=address,
        port=port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,  # behind a proxy or a browser on loopback; no h2c to negotiate
        websockets=False,
        workers=workers,
        blocking_threads=threads,  # threads per process that run the app
        log_dictconfig=log_config(),
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_SECONDS,
    ).serve()


def main(argv: list[str] | None = None) -> None:
    """Command line of the server (what `gradschool web` execs)."""
    parser = argparse.ArgumentParser(prog="python -m service.ops.serve", description=__doc__)
    parser.add_argument("--bind", default=os.environ.get("GRADSCHOOL_BIND", "0.0.0.0:8000"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", 4)))
    args = parser.parse_args(argv)
    try:
        host, port = parse_bind(args.bind)
        address = resolve(host)
    except ValueError as err:
        parser.error(str(err))
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    serve(address, port, args.workers, args.threads)


if __name__ == "__main__":
    main()
