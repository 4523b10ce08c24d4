"""Per-part grading of numbers, tensors and choices against a reference (torch-free)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from exercises.model import PartVerdict, Verdict
from exercises.numbers import agrees, parse_number, unit
from exercises.spec import ExerciseSpec, PartSpec

Candidate = dict[str, Any]  # {"value", "code", "node", "rule", "message"}


def diagnosis_of(candidate: Candidate) -> dict[str, Any]:
    """The learner-facing diagnosis of a matched candidate."""
    return {k: candidate.get(k) for k in ("code", "node", "rule", "message")}


def _matches(given: Any, value: Any, spec: ExerciseSpec) -> bool:
    if type(given) is float and type(value) is float:
        # A number against a number (the usual candidate): what _matches_by_arrays computes.
        return agrees(given, value, spec.sig_figs, spec.zero_tolerance)
    return _matches_by_arrays(given, value, spec)


def _matches_by_arrays(given: Any, value: Any, spec: ExerciseSpec) -> bool:
    """_matches's general case: any shapes, through numpy arrays."""
    g = np.asarray(given, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    if g.shape != v.shape:
        return False
    return all(
        agrees(float(a), float(b), spec.sig_figs, spec.zero_tolerance)
        for a, b in zip(g.ravel(), v.ravel(), strict=True)
    )


def match_candidate(
    given: Any, candidates: Sequence[Candidate], spec: ExerciseSpec
) -> Candidate | None:
    """The first candidate (wrong answer) that `given` agrees with."""
    for cand in candidates:
        value = cand.get("value")
        if value is not None and not isinstance(value, str) and _matches(given, value, spec):
            return cand
    return None


def _sig_fig_diagnosis(
    given: float, digits: int | None, true: float, spec: ExerciseSpec
) -> Candidate | None:
    """The answer is the truth rounded or truncated to fewer significant figures than asked."""
    if digits is None or digits >= spec.sig_figs or true == 0.0:
        return None
    step = unit(true, digits)
    shortened = [round(true / step) * step]
    if digits >= 2:  # truncating to a single figure is too coarse to tell from a mistake
        shortened.append(math.trunc(true / step) * step)
    if any(abs(given - s) <= 1e-9 * abs(true) for s in shortened):
        return {
            "code": "too_few_significant_figures",
            "node": None,
            "rule": f"answers must agree to {spec.sig_figs} significant figures",
            "message": f"Close, but you gave {digits} significant figure(s); give at least "
            f"{spec.sig_figs}.",
        }
    return None


def _zero_diagnosis(given: float, true: float) -> Candidate | None:
    if given != 0.0 or true == 0.0:
        return None
    return {
        "code": "zero_for_small_gradient",
        "node": None,
        "rule": "relative tolerance",
        "message": "The gradient is not 0, however small it is: give it in scientific "
        "notation (e.g. -3.317e-6).",
    }


def grade_number(
    part: PartSpec, raw: Any, true: float, candidates: Sequence[Candidate], spec: ExerciseSpec
) -> PartVerdict:
    """Grade one numeric part; bad input is a verdict with a message, never an exception."""
    parsed = parse_number(raw)
    if parsed.value is None:
        return PartVerdict(
            part.name, False, parsed.error or "not a number", expected=true, given=raw
        )
    if agrees(parsed.value, true, spec.sig_figs, spec.zero_tolerance):
        return PartVerdict(part.name, True, "Right.", 1.0, expected=true, given=raw)
    found = (
        _zero_diagnosis(parsed.value, true)
        or match_candidate(parsed.value, candidates, spec)
        or _sig_fig_diagnosis(parsed.value, parsed.digits, true, spec)
    )
    message = "Not right." + (f" {found['message']}" if found else "")
    diagnosis = diagnosis_of(found) if found else None
    return PartVerdict(
        part.name, False, message, 0.0, expected=true, given=raw, diagnosis=diagnosis
    )


def _shape(raw: Any, depth: int = 0) -> tuple[int, ...] | None:
    """The shape of a nested list, or None if it is ragged (or absurdly deep)."""
    if not isinstance(raw, list):
        return ()
    if depth > 8:
        return None
    shapes = {_shape(item, depth + 1) for item in raw}
    if len(shapes) > 1 or None in shapes:
        return None
    inner = shapes.pop() if shapes else ()
    return None if inner is None else (len(raw), *inner)


def _parse_tensor(
    raw: Any, shape: tuple[int, ...]
) -> tuple[np.ndarray[Any, Any] | None, str | None]:
    if not isinstance(raw, list):
        return None, f"expected a tensor of shape {list(shape)} (a nested list of numbers)"
    got = _shape(raw)
    if got is None:
        return None, f"the rows have different lengths; expected shape {list(shape)}"
    if got != shape:
        return None, f"expected shape {list(shape)}, got {list(got)}"
    out = np.zeros(shape, dtype=np.float64)
    flat = np.asarray(raw, dtype=object).reshape(-1) if shape else [raw]
    for idx, item in zip(np.ndindex(shape), flat, strict=True):
        parsed = parse_number(item)
        if parsed.value is None:
            return None, f"entry {list(idx)}: {parsed.error}"
        out[idx] = parsed.value
    return out, None


def grade_tensor(
    part: PartSpec, raw: Any, true: Any, candidates: Sequence[Candidate], spec: ExerciseSpec
) -> PartVerdict:
    """Grade a tensor part: the shape first (named in the message), then every entry."""
    expected = np.asarray(true, dtype=np.float64)
    if raw is None:
        return PartVerdict(part.name, False, "no answer", expected=true, given=raw)
    given, error = _parse_tensor(raw, expected.shape)
    if given is None:
        diagnosis = None
        if isinstance(raw, list) and expected.ndim == 2:
            flipped, _ = _parse_tensor(raw, expected.shape[::-1])
            if flipped is not None and _matches(flipped.T, expected, spec):
                diagnosis = {
                    "code": "transposed",
                    "node": part.wrt,
                    "rule": r"\partial L/\partial W \text{ has the shape of } W",
                    "message": "Your matrix is the transpose of the gradient: "
                    f"$\\partial L/\\partial {part.wrt}$ has the shape of `{part.wrt}`.",
                }
                error = f"{error}. {diagnosis['message']}"
        return PartVerdict(
            part.name, False, error or "not a tensor", expected=true, given=raw, diagnosis=diagnosis
        )
    wrong = [
        list(idx)
        for idx in np.ndindex(expected.shape)
        if not agrees(float(given[idx]), float(expected[idx]), spec.sig_figs, spec.zero_tolerance)
    ]
    if not wrong:
        return PartVerdict(part.name, True, "Right.", 1.0, expected=true, given=raw)
    found = match_candidate(given, candidates, spec)
    message = f"{len(wrong)} of {expected.size} entries are not right (first at {wrong[0]})."
    if found:
        message += f" {found['message']}"
    score = 0.0
    return PartVerdict(
        part.name,
        False,
        message,
        score,
        expected=true,
        given=raw,
        diagnosis=diagnosis_of(found) if found else None,
    )


def grade_choice(part: PartSpec, raw: Any) -> PartVerdict:
    """Grade a choice part: the id of one choice."""
    ids = {c.id: c for c in part.choices}
    if raw is None:
        return PartVerdict(part.name, False, "no answer", expected=part.answer, given=raw)
    if not isinstance(raw, str) or raw not in ids:
        return PartVerdict(
            part.name, False, f"choose one of: {', '.join(ids)}", expected=part.answer, given=raw
        )
    chosen = ids[raw]
    right = raw == part.answer
    message = ("Right." if right else "Not right.") + (
        f" {chosen.feedback}" if chosen.feedback else ""
    )
    diagnosis = None
    if not right and chosen.feedback:
        diagnosis = {"code": f"chose_{raw}", "node": None, "rule": None, "message": chosen.feedback}
    return PartVerdict(
        part.name,
        right,
        message,
        1.0 if right else 0.0,
        expected=part.answer,
        given=raw,
        diagnosis=diagnosis,
    )


def combine(spec: ExerciseSpec, parts: list[PartVerdict]) -> Verdict:
    """A whole verdict: weighted mean score and a summary message."""
    weights = {p.name: p.weight for p in spec.parts}
    total = sum(weights.get(p.part, 1.0) for p in parts) or 1.0
    score = sum(weights.get(p.part, 1.0) * p.score for p in parts) / total
    right = sum(1 for p in parts if p.correct)
    message = "All parts right." if right == len(parts) else f"{right} of {len(parts)} parts right."
    return Verdict(score=round(score, 6), parts=parts, message=message)
