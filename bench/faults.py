"""Fault injection at scale: the integration tests' scenarios with more submissions and faults.

Each scenario runs the real processes (granian web, Celery workers, Celery beat as the sweeper)
on a PostgreSQL cluster and a Redis of its own, started on free ports from the installed
binaries, so that it may kill them; the shared servers on 5432 and 6379 are never touched.
"Duplicated" comes from the database itself: a trigger counts every committed result write.

    .venv/bin/python bench/faults.py                   # every scenario, full scale
    .venv/bin/python bench/faults.py --scale 0.3 --only kill,redis
    .venv/bin/python bench/faults.py --json /tmp/faults.json

Prints one table; never asserts (a lost or duplicated submission shows in the table).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.faults import scenarios  # noqa: E402
from tests.integration.faults.servers import PrivatePostgres, PrivateRedis  # noqa: E402

Runner = Callable[[Path, str, PrivateRedis, PrivatePostgres, float], scenarios.Report]


def _n(base: int, scale: float) -> int:
    return max(10, round(base * scale))


RUNS: dict[str, Runner] = {
    "kill": lambda d, url, r, pg, s: scenarios.worker_kills(
        d, url, r, submissions=_n(1000, s), rounds=3, settle=300
    ),
    "redis": lambda d, url, r, pg, s: scenarios.broker_restarts(
        d, url, r, submissions=_n(800, s), during_outage=_n(50, s), restarts=3, settle=300
    ),
    "postgres": lambda d, url, r, pg, s: scenarios.database_restarts(
        d, url, r, pg, submissions=_n(800, s), restarts=3, outage=3.0, settle=300
    ),
    "duplicates": lambda d, url, r, pg, s: scenarios.duplicate_posts(
        d, url, r, keys=_n(300, s), copies=3, settle=300
    ),
    "overload": lambda d, url, r, pg, s: scenarios.overload(
        d, url, r, submissions=_n(3000, s), rate=5, depth=_n(200, s), threads=32, settle=300
    ),
}


def _faults(report: scenarios.Report) -> str:
    kills = sum("kill" in f for f in report.faults)
    if report.name.startswith("worker"):
        return f"{kills} kill -9, {report.faults[0]}"
    if report.name.startswith("redis"):
        lost = sum(report.notes["messages lost per restart"])
        return f"{len(report.faults)} empty restarts ({lost} messages lost)"
    if report.name.startswith("postgres"):
        return f"{len(report.faults)} crash restarts, {report.codes()[503]} x 503"
    if report.name.startswith("same POST"):
        return report.faults[0]
    return f"{report.notes['times capacity']:.0f}x capacity, {report.notes['429']} x 429"


def _row(report: scenarios.Report, seconds: float) -> dict[str, Any]:
    t = report.tally
    return {
        "scenario": report.name,
        "submissions": t.submissions,
        "faults injected": _faults(report),
        "graded": t.graded,
        "lost": t.lost,
        "duplicated": t.duplicated,
        "wrong": t.wrong,
        "claims": t.claims,
        "seconds": round(seconds),
    }


def _print(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |")
    print("|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|")
    for r in rows:
        print("| " + " | ".join(str(r[c]).ljust(widths[c]) for c in columns) + " |")


def main() -> None:
    """Run the chosen scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--only", default=",".join(RUNS), help="comma-separated scenarios")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--keep-logs", action="store_true", help="keep every process's log")
    args = parser.parse_args()
    pg = PrivatePostgres()
    pg.start()
    rows, details = [], []
    try:
        for name in args.only.split(","):
            redis_server = PrivateRedis()
            redis_server.start()
            database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
            data_dir = Path(tempfile.mkdtemp(prefix=f"gradschool-faults-{name}-"))
            try:
                url = pg.create_database(database)
                t0 = time.monotonic()
                report = RUNS[name](data_dir, url, redis_server, pg, args.scale)
                rows.append(_row(report, time.monotonic() - t0))
                details.append(
                    {
                        **rows[-1],
                        "settled": report.settled,
                        "faults": report.faults,
                        "notes": report.notes,
                        "codes": dict(report.codes()),
                    }
                )
                print(f"{name}: {rows[-1]}", flush=True)
            finally:
                if args.keep_logs:
                    print(f"{name}: logs in {data_dir}", flush=True)
                else:
                    shutil.rmtree(data_dir, ignore_errors=True)
                redis_server.destroy()
                if not pg.is_running():
                    pg.start()
                pg.drop_database(database)
    finally:
        pg.destroy()
    print()
    _print(rows)
    if args.json:
        args.json.write_text(json.dumps(details, indent=2, default=str))


if __name__ == "__main__":
    main()
