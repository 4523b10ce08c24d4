"""`make bench`: every benchmark in one run (about 8 minutes on 2 cores), then the plot.

1. bench/sandbox.py: the sandbox alone (zygote vs a fresh interpreter per job).
2. bench/load.py: end to end over HTTP on gunicorn + Celery + Redis + PostgreSQL, for
   numeric, formula, code and mixed answers at rising offered rates, plus the baseline
   of grading inside the web request (no queue).
3. bench/plot.py: latency against offered load per scenario -> docs/perf-latency.png.
Figures print as they come; JSON goes to var/bench/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "load.json"
PY = sys.executable

RUNS: list[list[str]] = [
    ["--scenario", "numeric", "--rates", "25,50,100,200", "--seconds", "6"],
    ["--scenario", "numeric", "--rates", "25,50,100,200", "--seconds", "6", "--mode", "inline"],
    ["--scenario", "formula", "--rates", "25,50,100", "--seconds", "5"],
    ["--scenario", "code", "--rates", "10,25,50", "--seconds", "5"],
    ["--scenario", "mix", "--rates", "50,100", "--seconds", "5"],
]


def main() -> int:
    """Run everything in sequence; stop at the first failure."""
    start = time.monotonic()
    OUT.unlink(missing_ok=True)
    steps = [[PY, str(ROOT / "bench" / "sandbox.py"), "--jobs", "300", "--seconds", "8"]]
    steps += [[PY, str(ROOT / "bench" / "load.py"), *run, "--out", str(OUT)] for run in RUNS]
    steps.append(
        [PY, str(ROOT / "bench" / "plot.py"), str(OUT), str(ROOT / "docs" / "perf-latency.png")]
    )
    for argv in steps:
        print(f"\n$ {' '.join(Path(a).name if a.startswith('/') else a for a in argv)}", flush=True)
        if subprocess.run(argv, cwd=ROOT).returncode != 0:
            return 1
    print(f"\nall benchmarks done in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
