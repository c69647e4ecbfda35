from fractions import Fraction

import numpy as np
import pytest

from engine.data.splits import DEFAULT_VALIDATION, parse_validation, validation_mask


@pytest.mark.parametrize("value, expected", [
    (None, Fraction(1, 10)), ("10", Fraction(1, 10)), (10, Fraction(1, 10)),
    ("0.1", Fraction(1, 10)), ("1/8", Fraction(1, 8)), ("0", Fraction(0)), (0.25, Fraction(1, 4)),
    (Fraction(1, 3), Fraction(1, 3)),
])
def test_parse_validation(value, expected):
    assert parse_validation(value) == expected


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "ten", "2.5", "1/0"])
def test_parse_validation_rejects_with_a_hint(value):
    with pytest.raises(ValueError, match="every k-th"):
        parse_validation(value)


def test_every_tenth_of_each_class_even_when_grouped_by_class():
    labels = np.repeat(np.arange(3), 30)             # grouped, like the bundled set
    mask = validation_mask(labels, DEFAULT_VALIDATION)
    assert np.bincount(labels[mask]).tolist() == [3, 3, 3]
    assert np.flatnonzero(mask[:30]).tolist() == [9, 19, 29]


def test_fraction_is_per_class_on_interleaved_labels():
    labels = np.tile(np.arange(4), 25)               # interleaved, 25 per class
    mask = validation_mask(labels, Fraction(1, 5))
    assert np.bincount(labels[mask], minlength=4).tolist() == [5, 5, 5, 5]
    assert validation_mask(labels, Fraction(0)).sum() == 0


def test_small_classes_keep_their_training_images():
    labels = np.array([0, 1, 1, 2, 2, 2])
    assert not validation_mask(labels, Fraction(1, 10)).any()
