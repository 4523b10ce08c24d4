"""Reading learner numbers and comparing by significant figures."""

from __future__ import annotations

import pytest

from exercises.numbers import agrees, format_sig, parse_number


@pytest.mark.parametrize(
    ("raw", "value", "digits"),
    [
        (-3.317e-6, -3.317e-6, 4),
        ("-3.317e-6", -3.317e-6, 4),
        ("  -3.317E-06 ", -3.317e-6, 4),
        ("\u22123.317e-6", -3.317e-6, 4),
        ("-3.317 \u00d7 10^-6", -3.317e-6, 4),
        ("-3.317*10**-6", -3.317e-6, 4),
        ("-3.317x10^(-6)", -3.317e-6, 4),
        ("0.00012", 0.00012, 2),
        (".5", 0.5, 1),
        (7, 7.0, 1),
        ("+2", 2.0, 1),
    ],
)
def test_parse_number_accepts(raw: object, value: float, digits: int) -> None:
    parsed = parse_number(raw)
    assert parsed.error is None
    assert parsed.value == pytest.approx(value, rel=1e-12)
    assert parsed.digits == digits


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (None, "no answer"),
        ("", "empty"),
        ("   ", "empty"),
        ("nan", "not a finite number"),
        ("-inf", "not a finite number"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ("1e999", "not a finite number"),
        (True, "true/false"),
        (False, "true/false"),
        ("abc", "is not a number"),
        ("1.2.3", "is not a number"),
        ("0x10", "is not a number"),
        ("1_000", "is not a number"),
        ([1.0], "not a list"),
        ({"a": 1}, "not a list"),
        (object(), "expected a number"),
    ],
)
def test_parse_number_rejects_with_message(raw: object, fragment: str) -> None:
    parsed = parse_number(raw)
    assert parsed.value is None
    assert parsed.error is not None and fragment in parsed.error


TRUE = -3.31703e-06


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        (TRUE, True),
        (-3.317e-6, True),
        (-3.32e-6, True),
        (-3.31e-6, True),  # truncated, not rounded
        (-3.30e-6, False),
        (-3.34e-6, False),
        (0.0, False),
        (-TRUE, False),
        (2 * TRUE, False),
        (TRUE / 2, False),
        (float(__import__("numpy").float32(TRUE)), True),
    ],
)
def test_agrees_to_three_sig_figs(given: float, ok: bool) -> None:
    assert agrees(given, TRUE, 3, 1e-9) is ok


def test_true_zero_uses_absolute_floor() -> None:
    assert agrees(0.0, 0.0, 3, 1e-9)
    assert agrees(1e-12, 0.0, 3, 1e-9)
    assert not agrees(1e-6, 0.0, 3, 1e-9)


def test_more_sig_figs_is_stricter() -> None:
    assert agrees(-3.31e-6, TRUE, 3, 0)
    assert not agrees(-3.31e-6, TRUE, 4, 0)
    assert agrees(-3.317e-6, TRUE, 4, 0)


def test_format_sig() -> None:
    assert format_sig(TRUE, 3) == "-3.32e-06"
    assert format_sig(0.0, 3) == "0"
