"""CPU per request of the two hot endpoints inside one process: the answer POST and the
status GET through Flask's test client, on a scratch PostgreSQL database and Redis prefix
of their own (the dispatcher's sends included, no HTTP server). Where bench/load.py measures
the whole stack under load, this isolates the web's own work per request, for comparing
two versions of the code on the same host.

    .venv/bin/python bench/inprocess.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import PG_ADMIN, REDIS_URL, answer_bodies, learners  # noqa: E402
from tests.integration.stack import load_database, scratch_database  # noqa: E402

SLUG = "sigmoid-neuron"


def main() -> None:
    """Print CPU and wall ms per POST and per GET."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    n = parser.parse_args().requests
    with scratch_database(PG_ADMIN, "gradschool_inprocess") as url:
        load_database(url)
        os.environ.update(
            DATABASE_URL=url,
            BROKER_URL=REDIS_URL,
            BROKER_KEY_PREFIX=f"gradschool-inprocess-{uuid.uuid4().hex[:8]}:",
            SECRET_KEY="bench-secret",
            GRADING_MODE="celery",
            MAX_QUEUE_DEPTH="1000000",
        )
        from service.app import create_app
        from service.data.session import close_all

        (token,) = learners(url, 1)
        app = create_app(API_RATE_LIMIT="1000000 per minute")
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        body = answer_bodies(None, SLUG)[0]  # type: ignore[arg-type]
        post_url = f"/api/v1/exercises/{SLUG}/submissions"
        ids = []
        for _ in range(50):  # warm: caches, prepared statements, pools
            resp = client.post(post_url, json=body, headers=headers)
            assert resp.status_code == 202, resp.data
            ids.append(resp.get_json()["id"])

        def posts() -> None:
            for _ in range(n):
                client.post(post_url, json=body, headers=headers)

        def gets() -> None:
            for i in range(n):
                resp = client.get(f"/api/v1/submissions/{ids[i % len(ids)]}", headers=headers)
                assert resp.status_code == 200, resp.data

        for name, run in (("POST", posts), ("GET", gets)):
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            cpu_ms = (time.process_time() - cpu) * 1000 / n
            wall_ms = (time.perf_counter() - wall) * 1000 / n
            print(f"{name:5} {cpu_ms:6.2f} ms CPU  {wall_ms:6.2f} ms wall per request ({n})")
        close_all()


if __name__ == "__main__":
    main()
