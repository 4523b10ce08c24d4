"""The worker's CPU per numeric submission, by batch size, on PostgreSQL (no broker, no web).

Creates a PostgreSQL database of its own (migrated, catalog loaded, learners made),
inserts queued `sigmoid-neuron` answers through `service.submissions.submit` with a
dispatcher that enqueues nothing, then times `worker.grading.grade_batch` in this
process over batches of 1, 8 and 64 ids: CPU (time.process_time) and wall time per
submission, with the CPU of the claim, the sources and the write shown apart. Every
learner's reference is computed (and cached) by a warm-up before timing, and each
batch size gets an untimed warm-up batch, so the numbers are the steady state. Each
series runs --rounds times and the median is shown (a shared machine is noisy); given
several versions of grading.py, their rounds interleave, so they share the noise. The
database is dropped at the end.

    .venv/bin/python bench/worker_db.py --per-size 512 --rounds 3
    .venv/bin/python bench/worker_db.py --grading /tmp/old/grading.py --grading current
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exercises.catalog import load_builtin_catalog  # noqa: E402
from service.data.session import session_scope  # noqa: E402
from service.submissions import submit  # noqa: E402
from service.users import create_user  # noqa: E402
from tests.integration.stack import load_database, scratch_database  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
SLUG = "sigmoid-neuron"
SIZES = (1, 8, 64)
PARTS = ("_claim", "_sources", "_finish")


class NoDispatch:
    """Leaves every submission queued: the benchmark grades them itself."""

    def enqueue(self, submission_id: int, queue: str) -> bool:
        return True


def load_grading(path: str | None) -> ModuleType:
    """worker.grading, or the version of it in the file at `path` (to compare two versions)."""
    if path is None:
        from worker import grading

        return grading
    name = f"worker._grading_under_test_{len(sys.modules)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def answers() -> list[dict[str, Any]]:
    """A right and a wrong answer on the worked example (wrong ones go through diagnosis)."""
    spec = next(s for s in load_builtin_catalog() if s.slug == SLUG)
    right = dict(spec.worked_example or {})
    wrong = {k: -v if isinstance(v, float) else v for k, v in right.items()}
    return [
        {"answers": right, "variant": "worked-example"},
        {"answers": wrong, "variant": "worked-example"},
    ]


def populate(database_url: str, learners: int, per_learner: int) -> list[list[int]]:
    """Queued submissions, per learner (each learner has a variant of their own)."""
    bodies = answers()
    ids: list[list[int]] = []
    with session_scope(database_url) as db:
        users = [
            create_user(db, f"bench{i}@example.test", "bench-password") for i in range(learners)
        ]
        db.commit()
        for user in users:
            mine = []
            for j in range(per_learner):
                submission, _ = submit(db, NoDispatch(), user, SLUG, bodies[j % 2])
                mine.append(submission.id)
            ids.append(mine)
    return ids


class PartTimer:
    """CPU spent in the module's database functions, wrapped in place."""

    def __init__(self, module: ModuleType) -> None:
        self.cpu: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.module = module
        self.real = {name: getattr(module, name) for name in PARTS}
        for name in PARTS:
            setattr(module, name, self._timed(name, self.real[name]))

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[name] += time.process_time() - start

        return timed

    def restore(self) -> None:
        for name, fn in self.real.items():
            setattr(self.module, name, fn)


@dataclass
class Run:
    """One timed series: a version of grading, a batch size, one round."""

    version: str
    size: int
    n: int
    cpu_ms: float  # per submission, and so on
    wall_ms: float
    parts_ms: dict[str, float]
    outcomes: dict[str, int]


def time_batches(
    grading: ModuleType, database_url: str, version: str, size: int, ids: list[int]
) -> Run:
    """Grade `ids` in batches of `size`, timed (the first batch untimed: a warm-up)."""
    grading.grade_batch(database_url, ids[:size])
    timed = ids[size:]
    outcomes: Counter[str] = Counter()
    parts = PartTimer(grading)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        for i in range(0, len(timed), size):
            outcomes.update(grading.grade_batch(database_url, timed[i : i + size]).values())
    finally:
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        parts.restore()
    n = len(timed)
    return Run(
        version,
        size,
        n,
        cpu * 1000 / n,
        wall * 1000 / n,
        {p: parts.cpu[p] * 1000 / n for p in PARTS},
        dict(outcomes),
    )


def print_runs(title: str, runs: list[Run]) -> None:
    print(title)
    print(f"{'version':<16} {'batch':>5} {'n':>5} {'cpu ms/sub':>10} {'wall ms/sub':>11}", end="")
    print("".join(f" {p.strip('_') + ' ms':>11}" for p in PARTS), " outcomes")
    for r in runs:
        head = f"{r.version[:16]:<16} {r.size:>5} {r.n:>5} {r.cpu_ms:>10.3f} {r.wall_ms:>11.3f}"
        print(head, end="")
        print("".join(f" {r.parts_ms[p]:>11.3f}" for p in PARTS), r.outcomes)


def median_runs(runs: list[Run]) -> list[Run]:
    """Per version and batch size, the run of median CPU (a shared machine is noisy)."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.version, r.size), []).append(r)
    return [sorted(g, key=lambda r: r.cpu_ms)[len(g) // 2] for g in groups.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-size", type=int, default=512, help="submissions timed per size")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--learners", type=int, default=16)
    parser.add_argument(
        "--grading",
        action="append",
        default=[],
        help="a grading.py to time instead of worker.grading; repeat to compare versions"
        " (their rounds interleave); 'current' names worker.grading",
    )
    args = parser.parse_args()
    versions = [
        ("current", load_grading(None)) if p == "current" else (Path(p).stem, load_grading(p))
        for p in args.grading
    ]
    if not versions:
        versions = [("current", load_grading(None))]

    with scratch_database(PG_ADMIN, "gradschool_bench") as database_url:
        load_database(database_url)
        per_size = max(64, args.per_size // 64 * 64)
        series = len(versions) * args.rounds * len(SIZES)
        needed = len(versions) * args.rounds * sum(SIZES) + series * per_size  # warm-ups too
        per_learner = len(versions) + -(-needed // args.learners)  # a warm-up per version
        by_learner = populate(database_url, args.learners, per_learner)
        for i, (_, grading) in enumerate(versions):
            # An answer of each learner: the variants' references are computed (once) and cached.
            grading.grade_batch(database_url, [mine[i] for mine in by_learner])
        # Interleaved, so every batch mixes learners as a busy queue does.
        pending = [mine[i] for i in range(len(versions), per_learner) for mine in by_learner]
        database = database_url.rsplit("/", 1)[1]
        print(f"{database}: {len(pending)} queued {SLUG} submissions, {args.learners} learners")
        runs = []
        for _ in range(args.rounds):
            for size in SIZES:
                for version, grading in versions:
                    ids, pending = pending[: size + per_size], pending[size + per_size :]
                    runs.append(time_batches(grading, database_url, version, size, ids))
        print_runs("every run:", runs)
        print_runs(f"median of {args.rounds} rounds (CPU: time.process_time):", median_runs(runs))


if __name__ == "__main__":
    main()
