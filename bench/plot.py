"""Plot submit-to-graded latency (p50, p95) and the achieved rate against offered load, per
scenario and mode (beyond saturation the wait is in the web's backlog, before the server's
timestamps start: the right panel shows where each series stops keeping up)."""

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
    fig, (ax, rates_ax) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(3, 2))
    top = max(r["offered_rate"] for points in series.values() for r in points)
    rates_ax.plot([0, top], [0, top], color="grey", linewidth=0.8, label="offered = achieved")
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
        rates_ax.plot(
            rates,
            [r["achieved_rate"] for r in points],
            marker="o",
            color=line.get_color(),
            label=name,
        )
    ax.set_xlabel("offered load (submissions/s)")
    ax.set_ylabel("submit-to-graded latency (ms, server timestamps)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("submit-to-graded latency (granian + Celery + Redis + PostgreSQL, 2 cores)")
    rates_ax.set_xlabel("offered load (submissions/s)")
    rates_ax.set_ylabel("achieved (graded submissions/s)")
    rates_ax.grid(True, alpha=0.3)
    rates_ax.legend(fontsize=7)
    rates_ax.set_title("throughput")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
