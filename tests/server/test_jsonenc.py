"""The one encoder: non-finite numbers become null; NumPy values become plain JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from server.jsonenc import dumps, sanitize


def test_non_finite_numbers_become_null_anywhere():
    value = {"a": [1.0, math.nan, {"b": -math.inf}], "c": (np.float32("nan"), 2)}
    text = dumps(value)
    assert json.loads(text) == {"a": [1.0, None, {"b": None}], "c": [None, 2]}
    assert "NaN" not in text and "Infinity" not in text


def test_numpy_values_become_plain_ones():
    value = sanitize({"x": np.arange(3), "y": np.int64(4), "z": np.bool_(True), 5: "five"})
    assert value == {"x": [0, 1, 2], "y": 4, "z": True, "5": "five"}
    assert type(value["y"]) is int


def test_unknown_objects_are_an_error_not_a_guess():
    with pytest.raises(TypeError):
        dumps({"x": object()})
