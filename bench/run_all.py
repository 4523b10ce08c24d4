"""`make bench`: every benchmark in one run (under 10 minutes on 2 cores), the plot, and
the table of issue #8's targets against the figures.

1. bench/sandbox.py: the sandbox alone (zygote vs a fresh interpreter per job).
2. bench/load.py: end to end over HTTP on granian + Celery + Redis + PostgreSQL, for
   numeric, formula, code and mixed answers at rising offered rates, plus the baseline
   of grading inside the web request (no queue).
3. bench/plot.py: latency against offered load per scenario -> docs/perf-latency.png.
bench/machine.py times the same interpreter work before and after, so that runs on
machines (or hours) of different speed can be told apart. Figures print as they come; JSON
goes to var/bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "load.json"
SANDBOX_OUT = ROOT / "var" / "bench" / "sandbox.json"
MACHINE_OUT = ROOT / "var" / "bench" / "machine.json"
PY = sys.executable

sys.path.insert(0, str(ROOT))
from bench import machine  # noqa: E402

RUNS: list[list[str]] = [
    ["--scenario", "numeric", "--rates", "100,200,300,400,500", "--seconds", "6"],
    [
        "--scenario",
        "numeric",
        "--rates",
        "100,200,300,400,500",
        "--seconds",
        "6",
        "--mode",
        "inline",
    ],
    ["--scenario", "formula", "--rates", "100,200,300", "--seconds", "5"],
    ["--scenario", "code", "--rates", "25,50,75,100,125,150", "--seconds", "6"],
    ["--scenario", "mix", "--rates", "100,200,300", "--seconds", "5"],
]


def _at(runs: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    return next((r for r in runs if r["offered_rate"] == rate), None)


def targets() -> list[tuple[str, str, str, bool]]:
    """Issue #8's targets against this run's figures: (what, target, measured, met)."""
    runs = json.loads(OUT.read_text())
    sandbox = json.loads(SANDBOX_OUT.read_text())

    def of(scenario: str, mode: str) -> list[dict[str, Any]]:
        return [r for r in runs if r["scenario"] == scenario and r["mode"] == mode]

    numeric, inline, code = of("numeric", "celery"), of("numeric", "inline"), of("code", "celery")
    best = max(r["achieved_rate"] for r in numeric)
    best_inline = max(r["achieved_rate"] for r in inline)
    best_code = max(r["achieved_rate"] for r in code)
    at300, code75 = _at(numeric, 300), _at(code, 75)
    p95 = at300["latency_ms"]["p95"] if at300 else float("nan")
    get95 = at300["get_ms"]["p95"] if at300 else float("nan")
    code95 = code75["latency_ms"]["p95"] if code75 else float("nan")
    ratio = best / best_inline
    code_ratio = best_code / sandbox["naive_jobs_per_s"]
    # The web's processes while workers grade (inline, the web itself imports torch to grade).
    web_rss = max(r["rss_mb"].get("web", 0.0) for r in runs if r["mode"] == "celery")
    inline_rss = max((r["rss_mb"].get("web", 0.0) for r in inline), default=float("nan"))
    return [
        ("numeric: sustained end to end", ">= 400/s", f"{best:.0f}/s", best >= 400),
        ("numeric: p95 at 300/s offered", "<= 100 ms", f"{p95:.0f} ms", p95 <= 100),
        ("numeric: vs inline in the web", ">= 0.6x", f"{ratio:.2f}x", ratio >= 0.6),
        ("code: sustained end to end", ">= 100/s", f"{best_code:.0f}/s", best_code >= 100),
        ("code: p95 at 75/s offered", "<= 150 ms", f"{code95:.0f} ms", code95 <= 150),
        (
            "code: vs a fresh process per answer",
            ">= 100x",
            f"{code_ratio:.0f}x ({sandbox['naive_jobs_per_s']:.2f}/s)",
            code_ratio >= 100,
        ),
        ("web: GET p95 at 300/s numeric", "<= 20 ms", f"{get95:.1f} ms", get95 <= 20),
        (
            "web: RSS per process (no torch)",
            "reported",
            f"{web_rss:.0f} MB (inline {inline_rss:.0f})",
            web_rss < inline_rss,
        ),
    ]


def main() -> int:
    """Run everything in sequence; stop at the first failure; print the targets' table."""
    start = time.monotonic()
    OUT.unlink(missing_ok=True)
    speed = {"before": machine.measure()}
    print(machine.describe(speed["before"]), flush=True)
    steps = [
        [
            PY,
            str(ROOT / "bench" / "sandbox.py"),
            *("--jobs", "300", "--seconds", "8"),
            *("--out", str(SANDBOX_OUT)),
        ]
    ]
    steps += [[PY, str(ROOT / "bench" / "load.py"), *run, "--out", str(OUT)] for run in RUNS]
    steps.append(
        [PY, str(ROOT / "bench" / "plot.py"), str(OUT), str(ROOT / "docs" / "perf-latency.png")]
    )
    for argv in steps:
        print(f"\n$ {' '.join(Path(a).name if a.startswith('/') else a for a in argv)}", flush=True)
        if subprocess.run(argv, cwd=ROOT).returncode != 0:
            return 1
    speed["after"] = machine.measure()
    MACHINE_OUT.parent.mkdir(parents=True, exist_ok=True)
    MACHINE_OUT.write_text(json.dumps(speed, indent=2))
    print(f"\nall benchmarks done in {time.monotonic() - start:.0f} s")
    print(f"before: {machine.describe(speed['before'])}")
    print(f"after:  {machine.describe(speed['after'])}\n")
    rows = targets()
    width = max(len(what) for what, *_ in rows)
    print(f"{'target (issue #8)':<{width}}  {'goal':>10}  {'measured':>18}  met")
    for what, goal, measured, met in rows:
        print(f"{what:<{width}}  {goal:>10}  {measured:>18}  {'yes' if met else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
