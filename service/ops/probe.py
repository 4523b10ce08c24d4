"""Container health checks: `python -m service.ops.probe web [URL]` or `... worker`.

`web` asks the local /healthz; `worker` pings the worker of this host (celery@<hostname>)
over the broker, so a worker whose consumer is stuck is reported unhealthy. Exits 0 or 1.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request


def web(url: str = "http://127.0.0.1:8000/healthz", timeout: float = 3.0) -> bool:
    """True when `url` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def worker(timeout: float = 5.0) -> bool:
    """True when this host's worker answers a ping."""
    from celery import Celery

    from service.config import load_settings
    from service.ops.health import DEPENDENCY_ERRORS, broker_connection
    from service.queueing import celery_config

    settings = load_settings()
    app = Celery("gradschool-probe")
    app.config_from_object(celery_config(settings))
    name = f"celery@{socket.gethostname()}"
    try:
        with broker_connection(settings, timeout) as conn:
            replies = app.control.ping(destination=[name], timeout=timeout, connection=conn)
    except DEPENDENCY_ERRORS as err:
        print(f"broker unavailable: {type(err).__name__}: {err}", file=sys.stderr)
        return False
    return any(name in reply for reply in replies)


def main(argv: list[str]) -> int:
    """Run the probe named in argv; 0 when healthy."""
    if argv[:1] == ["web"]:
        healthy = web(argv[1]) if len(argv) > 1 else web()
        return 0 if healthy else 1
    if argv[:1] == ["worker"]:
        return 0 if worker() else 1
    print("usage: python -m service.ops.probe web [URL] | worker", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
