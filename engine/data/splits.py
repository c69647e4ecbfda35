"""Holding out a validation set from the training images, class by class.

The bundled set is grouped by class, so "every 10th image" of the whole array would still be
balanced, but a user's folders are not: the hold-out is taken within each class, at evenly
spaced positions, and is deterministic (no seed needed; shuffling happens at batch time).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

DEFAULT_VALIDATION = Fraction(1, 10)        # ConvNetJS's demo: every 10th training image


def parse_validation(value: str | int | float | Fraction | None) -> Fraction:
    """The held-out fraction: "10" (every 10th), "0.1" or "1/10" (a fraction), "0" (none)."""
    if value is None:
        return DEFAULT_VALIDATION
    try:
        number = Fraction(str(value).strip()) if not isinstance(value, Fraction) else value
    except (ValueError, ZeroDivisionError):
        number = None
    if number is not None:
        if 0 <= number < 1:
            return number.limit_denominator(1_000_000)
        if number >= 2 and number.denominator == 1:
            return Fraction(1, number.numerator)
    raise ValueError(f"validation split {value!r}: give every k-th image as an integer k >= 2 "
                     f"(10 = every 10th), a fraction below 1 (0.1 or 1/10), or 0 for none")


def validation_mask(labels: np.ndarray, fraction: Fraction) -> np.ndarray:
    """Boolean mask of the training images held out for validation.

    Within each class, the image at position j (0-based, in stored order) is held out when
    floor((j+1)*f) > floor(j*f): for f = 1/k that is positions k-1, 2k-1, ... (every k-th).
    """
    mask = np.zeros(len(labels), dtype=bool)
    if fraction == 0:
        return mask
    p, q = fraction.numerator, fraction.denominator
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        position = np.arange(len(members), dtype=np.int64)
        mask[members] = ((position + 1) * p) // q > (position * p) // q
    return mask
