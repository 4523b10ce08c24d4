"""Shared pieces of code kinds: envelopes, the job's data encoding, run faults, hidden inputs."""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from exercises.codejob import CodeRun, SandboxLimits
from exercises.errors import AnswerFormatError
from exercises.kinds.base import Kind
from exercises.kinds.common import base_view, degeneracy_problem
from exercises.model import PartVerdict, Variant, Verdict
from exercises.spec import ExerciseSpec
from exercises.variants import draw_params, make_seeded_variant, rng_for

MAX_SOURCE_CHARS = 20_000
CODE_SIG_FIGS = 5  # code computes exactly; allow for float32 inside the learner's function

_RUN_FAULTS = {
    "timeout": "Your code took too long (time limit {wall:g} s). Is there an endless loop?",
    "memory": "Your code used too much memory.",
    "output_limit": "Your code produced too much output.",
    "killed": "Your code was stopped.",
    "forbidden": "Your code tried something that is not allowed here (files, network, processes).",
}


def encode(value: Any, requires_grad: bool = False) -> dict[str, Any]:
    """A value as the sandbox's tensor encoding."""
    data = np.asarray(value, dtype=np.float64).tolist()
    return {"__tensor__": data, "dtype": "float64", "requires_grad": requires_grad}


def decode(data: Any) -> np.ndarray[Any, Any] | None:
    """A returned number / tensor / list of numbers as a float64 array, or None if it is not one."""
    if isinstance(data, dict) and "__tensor__" in data:
        data = data["__tensor__"]
    if isinstance(data, bool) or data is None:
        return None
    if isinstance(data, int | float):
        return np.asarray(float(data))
    if isinstance(data, list):
        try:
            items = [decode(x) for x in data]
        except RecursionError:  # pragma: no cover - outputs are size-capped
            return None
        if any(i is None for i in items):
            return None
        try:
            return np.asarray([i for i in items if i is not None], dtype=np.float64)
        except ValueError:
            return None
    return None


def run_fault(spec: ExerciseSpec, run: CodeRun) -> str | None:
    """A learner-facing message when the run did not complete normally."""
    if run.status == "ok":
        return None
    if run.status == "error":
        where = f" (line {run.error_line})" if run.error_line else ""
        return f"Your code raised an error{where}: {run.error or 'unknown error'}"
    wall = spec.code.wall_seconds if spec.code else SandboxLimits().wall_seconds
    return _RUN_FAULTS.get(run.status, "Your code did not run.").format(wall=wall)


def all_wrong(spec: ExerciseSpec, message: str, run: CodeRun) -> Verdict:
    """Every part wrong with one message (the run failed)."""
    parts = [PartVerdict(p.name, False, message) for p in spec.parts]
    return Verdict(0.0, parts, message, details=run_details(run))


def run_details(run: CodeRun) -> dict[str, Any]:
    """What the learner may see of the run: status, output, figures."""
    return {
        "status": run.status,
        "stdout": run.stdout[-4000:],
        "stderr": run.stderr[-4000:],
        "cpu_seconds": run.cpu_seconds,
        "wall_seconds": run.wall_seconds,
    }


# (spec, seed, params) -> hidden inputs: drawing them checks each draw for degeneracy (a
# forward pass per draw), a quarter of a worker's own CPU per code answer when redone for
# every answer. The entry holds the spec itself, so `id(spec)` cannot be reused meanwhile.
_HIDDEN: OrderedDict[tuple[int, int | None, str], tuple[ExerciseSpec, list[dict[str, Any]]]] = (
    OrderedDict()
)
_HIDDEN_SIZE = 4096
_hidden_lock = threading.Lock()


def hidden_params(
    spec: ExerciseSpec, variant: Variant, problem: Callable[[dict[str, Any]], str | None]
) -> list[dict[str, Any]]:
    """Seeded hidden inputs (never shown), each one that `problem` accepts; determined by
    the spec and the variant, so remembered per process (a copy is returned each time).

    `problem` must be a function of the spec and the drawn inputs only (as every kind's
    `variant_problem` is): it is not part of the memo's key."""
    key = (id(spec), variant.seed, repr(sorted(variant.params.items())))
    with _hidden_lock:
        entry = _HIDDEN.get(key)
        if entry is not None and entry[0] is spec:
            _HIDDEN.move_to_end(key)
            return copy.deepcopy(entry[1])
    count = spec.code.hidden_calls if spec.code else 0
    found: list[dict[str, Any]] = []
    for attempt in range(50 * max(count, 1)):
        if len(found) >= count:
            break
        params = draw_params(spec, rng_for(spec.slug, variant.seed, "hidden", attempt))
        if params != variant.params and problem(params) is None:
            found.append(params)
    with _hidden_lock:
        _HIDDEN[key] = (spec, copy.deepcopy(found))
        while len(_HIDDEN) > _HIDDEN_SIZE:
            _HIDDEN.popitem(last=False)
    return found


class CodeKind(Kind):
    """Base of kinds whose answer is source code run in the sandbox."""

    answer_type = "code"

    def limits(self, spec: ExerciseSpec) -> SandboxLimits:
        """The exercise's limits (the operator's maxima clamp them later)."""
        if spec.code is None:
            return SandboxLimits()
        return SandboxLimits(cpu_seconds=spec.code.cpu_seconds, wall_seconds=spec.code.wall_seconds)

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """A `code` block and forward code."""
        problems: list[tuple[str, str]] = []
        if spec.code is None:
            problems.append(("code", f"kind {self.name} needs a `code` block"))
        if not spec.forward.strip():
            problems.append(("forward", f"kind {self.name} needs forward code"))
        return problems

    def worked_example(self, spec: ExerciseSpec) -> Variant:
        """The variant with the file's values."""
        return Variant(params=spec.worked_params(), seed=None, label="worked-example")

    def variant_problem(self, spec: ExerciseSpec, params: dict[str, Any]) -> str | None:
        """Why drawn inputs are degenerate for this exercise (None if fine)."""
        from exercises.kinds.gradients import gradient_parts

        return degeneracy_problem(spec, params, gradient_parts(spec))

    def make_variant(self, spec: ExerciseSpec, seed: int) -> Variant:
        """A seeded non-degenerate variant."""
        return make_seeded_variant(spec, seed, lambda p: self.variant_problem(spec, p))

    def learner_view(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Statement, the computation, and the template to start from."""
        view = base_view(spec, variant)
        view["parts"] = [{"name": "code", "label": "Your code", "input": "code"}]
        view["code_template"] = spec.code.template if spec.code else ""
        return view

    def validate_answer(self, spec: ExerciseSpec, answer: Any) -> dict[str, Any]:
        """{"code": source} with non-empty source of bounded size."""
        if not isinstance(answer, dict):
            raise AnswerFormatError('the answer must be an object {"code": "..."}')
        extra = set(answer) - {"code"}
        if extra:
            raise AnswerFormatError(
                f"unknown field `{sorted(extra)[0]}`", field=str(sorted(extra)[0])
            )
        code = answer.get("code")
        if not isinstance(code, str) or not code.strip():
            raise AnswerFormatError("`code` must be non-empty text", field="code")
        if len(code) > MAX_SOURCE_CHARS:
            raise AnswerFormatError(f"code longer than {MAX_SOURCE_CHARS} characters", field="code")
        return {"code": code}


def per_part(
    names: list[str], output: Any, aliases: dict[str, str] | None = None
) -> dict[str, Any] | str:
    """Split one call's returned value into parts: a dict by name, or a sequence in order."""
    aliases = aliases or {}
    if isinstance(output, dict) and "__tensor__" not in output:
        found: dict[str, Any] = {}
        for key, value in output.items():
            name = aliases.get(str(key), str(key))
            if name in names:
                found[name] = decode(value)
        missing = [n for n in names if n not in found]
        if missing:
            return f"the returned dict has no entry `{missing[0]}`"
        return found
    if isinstance(output, list) and len(names) > 1:
        if len(output) != len(names):
            return f"expected {len(names)} values ({', '.join(names)}), got {len(output)}"
        return {n: decode(v) for n, v in zip(names, output, strict=True)}
    if len(names) == 1:
        return {names[0]: decode(output)}
    return f"return a dict with keys {', '.join(names)} (or a tuple in that order)"


def close(given: Any, true: Any, sig_figs: int, zero_tolerance: float) -> bool:
    """Every entry of `given` agrees with `true` (same shape) to `sig_figs`."""
    from exercises.numbers import agrees

    if type(true) is float and isinstance(given, np.ndarray) and given.ndim == 0:
        # One number against one number (most code parts): _close_by_arrays's comparison
        # without building arrays, which cost most of a code verdict's CPU. Same result.
        value = float(given)
        return math.isfinite(value) and agrees(value, true, sig_figs, zero_tolerance)
    return _close_by_arrays(given, true, sig_figs, zero_tolerance)


def _close_by_arrays(given: Any, true: Any, sig_figs: int, zero_tolerance: float) -> bool:
    """close's general case: any shapes, through numpy arrays."""
    from exercises.numbers import agrees

    if given is None:
        return False
    g = np.asarray(given, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if g.shape != t.shape and not (g.size == t.size == 1):
        return False
    return bool(np.all(np.isfinite(g))) and all(
        agrees(float(a), float(b), sig_figs, zero_tolerance)
        for a, b in zip(g.ravel(), t.ravel(), strict=True)
    )


def grade_calls(
    spec: ExerciseSpec,
    outputs: list[Any],
    reference: dict[str, Any],
    aliases: dict[str, str] | None = None,
) -> list[PartVerdict] | str:
    """Per part, right on the learner's own inputs (call 0) and on every hidden call.

    Returns a message instead when the outputs cannot be read at all.
    """
    from exercises.grading import diagnosis_of, match_candidate

    names = [p.name for p in spec.parts]
    calls: list[dict[str, Any]] = reference["calls"]
    decoded = [per_part(names, out, aliases) for out in outputs[: len(calls)]]
    split = [d for d in decoded if isinstance(d, dict)]
    if len(split) < len(calls):
        problem = next((d for d in decoded if isinstance(d, str)), "results are missing")
        return f"Your code's result: {problem}"
    verdicts = []
    hidden = len(calls) - 1
    for name in names:
        ok = [
            close(d[name], c[name], CODE_SIG_FIGS, spec.zero_tolerance)
            for d, c in zip(split, calls, strict=True)
        ]
        first = split[0][name]
        given = first.tolist() if first is not None else None
        expected = calls[0][name]
        if all(ok):
            message = f"Right on your inputs and on {hidden} hidden ones."
            verdicts.append(PartVerdict(name, True, message, 1.0, expected=expected, given=given))
            continue
        if ok[0]:
            message = (
                f"Right on your inputs but wrong on {ok[1:].count(False)} of {hidden} hidden "
                "ones: is something hard-coded?"
            )
            verdicts.append(PartVerdict(name, False, message, 0.0, expected=expected, given=given))
            continue
        cands = reference["candidates"].get(name, [])
        found = match_candidate(given, cands, spec) if given is not None else None
        message = "Not right on your inputs." + (f" {found['message']}" if found else "")
        verdicts.append(
            PartVerdict(
                name,
                False,
                message,
                0.0,
                expected=expected,
                given=given,
                diagnosis=diagnosis_of(found) if found else None,
            )
        )
    return verdicts
