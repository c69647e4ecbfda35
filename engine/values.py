"""Numbers and values that come from outside (JSON bodies, forms, spec and snapshot files),
checked without ever raising on the way.

Python raises on values a hostile document can hold: float() and math.isfinite() raise
OverflowError on an integer beyond a float's range (10**400); str(), repr() and f-strings raise
ValueError on an integer of more than 4300 digits; repr() and json.dumps() raise RecursionError
on deeply nested lists. bool is an int, and 3.0 == 3. These helpers answer "is this a finite
number / a true integer / how do I show it" for any value, so each module can raise its own
error naming the field instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

SHOWN_CHARS = 40
FLOAT_DIGITS = 309        # digits of the largest float (1.8e308): longer literals fit nothing
_SHOWN_ITEMS = 8          # containers longer than this are described, not printed
_BIG_INT_BITS = 200       # about 60 digits: shown by size, not digit by digit


class LongInteger:
    """An integer literal of JSON text too long for any field (more digits than the largest
    float has), kept as its length: int() of it would cost quadratic time, and past 4,300
    digits Python refuses it with a ValueError that names no field. A field check that meets
    one refuses it like any integer out of range, naming the field."""

    __slots__ = ("negative", "digits")

    def __init__(self, text: str) -> None:
        self.negative = text.startswith("-")
        self.digits = len(text) - self.negative

    def __repr__(self) -> str:
        return f"<{'-' if self.negative else ''}integer of {self.digits:,} digits>"


def parse_int(text: str) -> int | LongInteger:
    """For json.loads(parse_int=...): an int, or a LongInteger when no field could hold it."""
    return int(text) if len(text) <= FLOAT_DIGITS + 1 else LongInteger(text)


def real(value: Any) -> float | None:
    """value as a finite float when it is an int or float (not a bool) that a float can hold
    exactly enough, else None (NaN, inf, strings, bools, integers beyond a float's range)."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def integer(value: Any) -> int | None:
    """value when it is a true integer (an int, not a bool, not 3.0), else None."""
    return value if type(value) is int else None


def in_range(value: Any, low: float, high: float) -> bool:
    """True when value is a finite number (int or float, not bool) within [low, high]."""
    v = real(value)
    return v is not None and low <= v <= high


def show(value: Any, limit: int = SHOWN_CHARS) -> str:
    """value as a user wrote it (JSON), shortened; never raises."""
    return _shown(value, limit, json.dumps)


def show_repr(value: Any, limit: int = SHOWN_CHARS) -> str:
    """value as Python writes it (repr), shortened; never raises."""
    return _shown(value, limit, repr)


def _shown(value: Any, limit: int, write) -> str:
    if type(value) is int and value.bit_length() > _BIG_INT_BITS:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits:,} digits"
    if isinstance(value, LongInteger):
        return f"an integer of {value.digits:,} digits"
    if isinstance(value, (list, tuple)) and len(value) > _SHOWN_ITEMS:
        return f"a list of {len(value):,} items"
    if isinstance(value, dict) and len(value) > _SHOWN_ITEMS:
        return f"an object with {len(value):,} keys"
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[:limit]
    try:
        text = write(value)
    except (TypeError, ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."
