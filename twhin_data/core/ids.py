"""Tweet and user IDs: decimal digit strings of at most 19 digits (X's Snowflake IDs fit in int64)."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

#: The one definition of a valid ID (`id_mask` is its form for Arrow columns, with MAX_ID_DIGITS).
ID_PATTERN = r"^[0-9]{1,19}$"
ID_RE = re.compile(ID_PATTERN)
MAX_ID_DIGITS = 19
#: Longest stripped input kept as the key of a rejected ID (for reporting).
MAX_KEY_CHARS = 200


def digits_mask(values: pa.Array | pa.ChunkedArray, max_digits: int) -> pa.Array | pa.ChunkedArray:
    """True where a string value is 1 to `max_digits` ASCII digits and nothing else; null -> False.

    The same booleans as ``pc.match_substring_regex(values, "^[0-9]{1,N}$")`` with nulls filled
    (RE2's ``$`` is the end of the text, so a trailing newline does not match), from two byte-level
    kernels instead of a regex: 5x faster on a million IDs.
    """
    digits = pc.and_(pc.ascii_is_decimal(values), pc.less_equal(pc.binary_length(values), max_digits))
    return pc.fill_null(digits, False)


def id_mask(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a string value matches ID_PATTERN (1-19 ASCII digits); null -> False."""
    return digits_mask(values, MAX_ID_DIGITS)


_SCIENTIFIC_RE = re.compile(r"^[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+$")
_DECIMAL_RE = re.compile(r"^[0-9]+[.,][0-9]+$")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def normalize_id(value: object) -> tuple[str, tuple[str, str] | None]:
    """Validates one raw ID value.

    Returns ``(key, None)`` for a valid ID (decimal string, leading zeros dropped) or
    ``(key, (error_type, message))`` where `key` is the stripped input, for reporting.

    >>> normalize_id(' "0012" ')
    ('12', None)
    >>> normalize_id("1.23457E+18")[1][0]
    'scientific_notation'
    """
    if isinstance(value, bool) or value is None:
        return str(value), ("invalid_id", "not a tweet ID (expected 1-19 decimal digits)")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        return repr(value), (
            "float_id",
            "ID stored as a floating-point number (digits may be lost); not repaired: export IDs as text",
        )
    else:
        text = str(value)
    text = text.strip().strip("\ufeff").strip().strip(_QUOTES).strip()
    key = text[:MAX_KEY_CHARS]
    if text and ID_RE.match(text.lstrip("0") or "0"):  # leading zeros do not count against the 19 digits
        return str(int(text)), None
    if _SCIENTIFIC_RE.match(text):
        return key, (
            "scientific_notation",
            "ID in scientific notation (spreadsheet damage, digits lost); not repaired: export IDs as text",
        )
    if _DECIMAL_RE.match(text):
        return key, ("float_id", "ID written as a decimal number (spreadsheet damage); not repaired")
    if text.isdigit() and text.isascii():
        return key, ("invalid_id", f"ID has {len(text.lstrip('0'))} digits (at most 19)")
    if not text:
        return key, ("invalid_id", "empty ID (only quotes or spaces)")
    return key, ("invalid_id", "not a tweet ID (expected 1-19 decimal digits)")
