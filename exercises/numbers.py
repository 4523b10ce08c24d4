"""Reading numeric answers and comparing them to the truth by significant figures."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_NUMBER = re.compile(
    r"^(?P<mant>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:[eE](?P<exp>[+-]?\d+)|\s*[*\u00d7x\u00b7]\s*10\s*(?:\^|\*\*)\s*\(?\s*(?P<exp2>[+-]?\d+)\s*\)?)?$"
)


@dataclass(frozen=True)
class ParsedNumber:
    """A learner's number, or why it is not one; `digits` = significant digits written."""

    value: float | None
    error: str | None = None
    digits: int | None = None


def _significant_digits(mantissa: str) -> int:
    digits = mantissa.lstrip("+-").replace(".", "").lstrip("0")
    return max(len(digits), 1)


def parse_number(raw: Any) -> ParsedNumber:
    """Parse a number or numeric string ("-3.317e-6", "-3.317 x 10^-6"); never raises."""
    if raw is None:
        return ParsedNumber(None, "no answer")
    if isinstance(raw, bool):
        return ParsedNumber(None, "true/false is not a number")
    if isinstance(raw, int | float):
        value = float(raw)
        text = repr(value).split("e")[0]
        text = text.rstrip("0").rstrip(".") if "." in text else text
    elif isinstance(raw, str):
        text = raw.strip().replace("\u2212", "-").replace("\u2009", "").replace(",", "")
        if not text:
            return ParsedNumber(None, "the answer is empty")
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity", "∞"):
            return ParsedNumber(None, f"`{raw.strip()}` is not a finite number")
        match = _NUMBER.match(text)
        if match is None:
            shown = raw.strip()[:40]
            return ParsedNumber(None, f"`{shown}` is not a number (write e.g. -3.317e-6)")
        exp = match["exp"] or match["exp2"] or "0"
        try:
            value = float(f"{match['mant']}e{exp}")
        except OverflowError:  # pragma: no cover - float() returns inf instead
            value = math.inf
        text = match["mant"]
    elif isinstance(raw, list | dict):
        return ParsedNumber(None, "expected a single number, not a list or object")
    else:
        return ParsedNumber(None, "expected a number")
    if not math.isfinite(value):
        return ParsedNumber(None, "the answer is not a finite number")
    return ParsedNumber(value, None, _significant_digits(text))


def unit(true: float, sig_figs: int) -> float:
    """One unit in the last of `sig_figs` significant places of `true`."""
    return 10.0 ** (math.floor(math.log10(abs(true))) - sig_figs + 1)


def agrees(given: float, true: float, sig_figs: int, zero_tolerance: float) -> bool:
    """True when `given` agrees with `true` to `sig_figs` significant figures.

    Agreement means within one unit of the last significant place (so both rounding
    and truncating are accepted); a true 0 uses the absolute `zero_tolerance`.
    """
    if true == 0.0:
        return abs(given) <= zero_tolerance
    return abs(given - true) <= unit(true, sig_figs) * (1 + 1e-9)


def agrees_all(given: Any, true: Any, sig_figs: int, zero_tolerance: float) -> bool:
    """`agrees` for every entry of two arrays of the same shape (False if shapes differ)."""
    import numpy as np

    g = np.asarray(given, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if g.shape != t.shape:
        return False
    return all(
        math.isfinite(a) and agrees(a, b, sig_figs, zero_tolerance)
        for a, b in zip(g.ravel().tolist(), t.ravel().tolist(), strict=True)
    )


def format_sig(value: float, sig_figs: int) -> str:
    """`value` written with `sig_figs` significant figures."""
    return f"{value:.{sig_figs}g}" if value != 0 else "0"
