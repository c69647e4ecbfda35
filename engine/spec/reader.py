"""Reading one layer object of a spec: typed fields whose every complaint names the layer's
index path and the field at fault (SpecError), and the limits every number is held to."""

from __future__ import annotations

import difflib
import json
from typing import Any

from engine import values

Shape = tuple[int, int, int]  # (C, H, W)
REQUIRED = object()
MAX_INT = 10**12  # keeps every size exact and printable; budgets refuse far smaller nets
MAX_DEPTH = 16    # residual/concat nesting
MAX_FLOAT_FIELD = 1e6  # |value| of any float field (decay multipliers, bias_pref, lrn k...)


class SpecError(ValueError):
    """A spec mistake: `layer` is an index path ("3", "5.layers.1") or None, `field` a key."""

    def __init__(self, message: str, layer: str | None = None, field: str | None = None,
                 layer_type: str | None = None) -> None:
        self.message, self.layer, self.field, self.layer_type = message, layer, field, layer_type
        where = ""
        if layer is not None:
            where = f"layer {layer}" + (f" ({layer_type})" if layer_type else "")
        if field is not None:
            shown = field if field.isprintable() else json.dumps(field)
            where += (", " if where else "") + f"field '{shown}'"
        super().__init__(f"{where}: {message}" if where else message)


def show(value: Any) -> str:
    """A value as the user wrote it (JSON), shortened; never raises (see engine.values)."""
    return values.show(value)


def closest(word: str, choices) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{match[0]}'? " if match else ""


class Reader:
    """Typed access to one layer object; every complaint names the layer and the field."""

    def __init__(self, obj: dict, path: str, layer_type: str) -> None:
        self.obj, self.path, self.type = obj, path, layer_type

    def error(self, field: str | None, message: str) -> SpecError:
        return SpecError(message, self.path, field, self.type)

    def has(self, key: str) -> bool:
        return key in self.obj

    def _get(self, key: str, default: Any) -> tuple[Any, bool]:
        if key in self.obj:
            return self.obj[key], True
        if default is REQUIRED:
            raise self.error(key, "is required")
        return default, False

    def int(self, key: str, default: Any = REQUIRED, minimum: int = 1) -> int:
        value, given = self._get(key, default)
        if not given:
            return value
        if isinstance(value, values.LongInteger):     # from JSON text: see decode_spec_text
            bound = f"at least {minimum}" if value.negative else f"at most {MAX_INT:,}"
            raise self.error(key, f"must be {bound}, got {show(value)}")
        # 3.0 is refused too: a size is written as an integer (JSON.stringify writes 3).
        if type(value) is not int:
            raise self.error(key, f"must be an integer, got {show(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {show(value)}")
        if value > MAX_INT:
            raise self.error(key, f"must be at most {MAX_INT:,}, got {show(value)}")
        return value

    def float(self, key: str, default: Any = REQUIRED, minimum: float | None = None,
              maximum: float | None = None, open_min: bool = False,
              open_max: bool = False) -> float:
        value, given = self._get(key, default)
        if not given:
            return value
        number = values.real(value)
        if number is None:
            what = (" a float can hold" if type(value) is int
                    or isinstance(value, values.LongInteger) else "")
            raise self.error(key, f"must be a number{what}, got {show(value)}")
        value = number
        low_bad = minimum is not None and (value <= minimum if open_min else value < minimum)
        high_bad = maximum is not None and (value >= maximum if open_max else value > maximum)
        if low_bad or high_bad:
            if minimum is not None and maximum is not None:
                where = (f"in {'(' if open_min else '['}{minimum:g}, "
                         f"{maximum:g}{')' if open_max else ']'}")
            elif minimum is not None:
                where = f"more than {minimum:g}" if open_min else f"at least {minimum:g}"
            else:
                where = f"less than {maximum:g}" if open_max else f"at most {maximum:g}"
            raise self.error(key, f"must be {where}, got {value:g}")
        if abs(value) > MAX_FLOAT_FIELD:
            # Every float field ends up in float32 arithmetic: keep it well inside its range.
            raise self.error(key, f"must be at most {MAX_FLOAT_FIELD:g} in size, got {value:g}")
        return value

    def bool(self, key: str, default: Any = REQUIRED) -> bool:
        value, given = self._get(key, default)
        if given and type(value) is not bool:
            raise self.error(key, f"must be true or false, got {show(value)}")
        return value

    def choice(self, key: str, choices: tuple, default: Any = REQUIRED):
        value, given = self._get(key, default)
        if given and (type(value) not in (str, bool) or value not in choices):
            hint = closest(value, [c for c in choices if isinstance(c, str)]) \
                if isinstance(value, str) else ""
            raise self.error(key, f"must be one of {', '.join(show(c) for c in choices)}, "
                                  f"got {show(value)}; {hint}".rstrip("; ").rstrip())
        return value

    def list(self, key: str, what: str) -> list:
        value, _ = self._get(key, REQUIRED)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"must be a non-empty list of {what}, got {show(value)}")
        return value


def fmt_shape(shape: Shape) -> str:
    c, h, w = shape
    return f"{h}x{w}x{c}"
