"""Seeded, reproducible drawing of parameter values (torch-free)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from exercises.model import Variant
from exercises.spec import ExerciseSpec

MAX_ATTEMPTS = 200


def rng_for(*key: object) -> random.Random:
    """A random generator determined by `key` alone (stable across processes and versions)."""
    digest = hashlib.sha256("|".join(str(k) for k in key).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _draw_value(rng: random.Random, value: Any, lo: float, hi: float, decimals: int) -> Any:
    if isinstance(value, list):
        return [_draw_value(rng, v, lo, hi, decimals) for v in value]
    drawn = round(rng.uniform(lo, hi), decimals)
    return drawn + 0.0  # no -0.0


def draw_params(spec: ExerciseSpec, rng: random.Random) -> dict[str, Any]:
    """One draw of every parameter from its range (fixed parameters keep their value)."""
    params: dict[str, Any] = {}
    for name, p in spec.params.items():
        if p.range is None:
            params[name] = p.value
        else:
            params[name] = _draw_value(rng, p.value, p.range[0], p.range[1], p.decimals)
    return params


def make_seeded_variant(
    spec: ExerciseSpec,
    seed: int,
    problem: Callable[[dict[str, Any]], str | None],
) -> Variant:
    """The first draw for `seed` that `problem` accepts (returns None); else the worked example."""
    for attempt in range(MAX_ATTEMPTS):
        rng = rng_for(spec.slug, seed, attempt)
        params = draw_params(spec, rng)
        if problem(params) is None:
            return Variant(params=params, seed=seed)
    return Variant(params=spec.worked_params(), seed=seed, label="worked-example-fallback")
