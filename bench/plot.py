"""Plot submit-to-graded latency (p50, p95) against offered load per scenario and mode."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(src: str, dest: str) -> int:
    """Read bench/load.py's JSON and write a PNG."""
    runs = json.loads(Path(src).read_text())
    series: dict[str, list[dict[str, float]]] = {}
    for run in runs:
        if run["scenario"] == "mix":  # per-exercise rows at a third of the rate: see the table
            continue
        series.setdefault(f"{run['scenario']} ({run['mode']})", []).append(run)
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, points in sorted(series.items()):
        points.sort(key=lambda r: r["offered_rate"])
        rates = [r["offered_rate"] for r in points]
        (line,) = ax.plot(
            rates, [r["latency_ms"]["p95"] for r in points], marker="o", label=f"{name} p95"
        )
        ax.plot(
            rates,
            [r["latency_ms"]["p50"] for r in points],
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p50",
        )
    ax.set_xlabel("offered load (submissions/s)")
    ax.set_ylabel("submit-to-graded latency (ms, server timestamps)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("gradschool end to end on 2 cores: gunicorn + Celery + Redis + PostgreSQL")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
