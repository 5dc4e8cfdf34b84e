"""argparse value types every command's flags use: one-line errors for a bad value."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(text: str, cast: Callable[[str], float], ok: Callable[[float], bool], expected: str):
    """`cast(text)` when it parses and `ok` accepts it; else argparse's one-line type error."""
    try:
        value = cast(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0 and v == v and v != float("inf"), "a positive number")


def fraction(text: str) -> float:
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def number(text: str) -> float:
    return _number(text, float, lambda v: True, "a number")


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]

