"""How fast this machine is right now: the same pure-Python work timed on one core, then on
both cores at once (two processes). Benchmark figures only compare across runs made at the
same speed: on a shared virtual machine the speed of "2 cores" varies from hour to hour.

    .venv/bin/python bench/machine.py          # prints ms per round, one core and both
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROUNDS = 30


def work() -> float:
    """Milliseconds for one round of interpreter work (loops, dicts, JSON), the median of
    ROUNDS rounds."""
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        total = sum(range(200_000))
        table = {str(i): i for i in range(20_000)}
        text = json.dumps(table)
        total += len(json.loads(text)) + total % 7
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[len(times) // 2]


def measure() -> dict[str, float]:
    """{"one_core_ms": ..., "both_cores_ms": ...} (both: the slower of two at once)."""
    one = work()
    with ProcessPoolExecutor(2) as pool:
        both = max(pool.map(lambda_free_work, range(2)))
    return {"one_core_ms": round(one, 2), "both_cores_ms": round(both, 2)}


def lambda_free_work(_: int) -> float:
    """`work` for a pool (which needs a top-level function taking an argument)."""
    return work()


def describe(m: dict[str, float]) -> str:
    """One line for a report."""
    return (
        f"machine speed: {m['one_core_ms']:.1f} ms per round on one core, "
        f"{m['both_cores_ms']:.1f} ms with both cores busy (bench/machine.py; lower is faster)"
    )


if __name__ == "__main__":
    result = measure()
    print(describe(result))
    if "--json" in sys.argv:
        print(json.dumps(result))
