"""Undo for one training step: copies of every array a step changes in place, taken before
the step, put back when the step turns out non-finite (the trainer's divergence handling)."""

from __future__ import annotations

import numpy as np


class Rollback:
    def __init__(self) -> None:
        self._copies: list[np.ndarray] | None = None
        self.clock: tuple = ()

    def save(self, live: list[np.ndarray], clock: tuple) -> None:
        """Copy `live` into buffers kept from step to step (no allocation per step unless the
        arrays changed shape, as after a new net)."""
        if self._copies is None or [(a.shape, a.dtype) for a in self._copies] != [
                (a.shape, a.dtype) for a in live]:
            self._copies = [np.empty_like(a) for a in live]
        for copy, array in zip(self._copies, live):
            np.copyto(copy, array)
        self.clock = clock

    def restore(self, live: list[np.ndarray]) -> tuple:
        """Put the saved values back into `live` (the same arrays save() was given); returns
        the clock saved with them."""
        for array, copy in zip(live, self._copies):
            np.copyto(array, copy)
        return self.clock

    def clear(self) -> None:
        self._copies = None


def all_finite(arrays) -> bool:
    # The sum is NaN or inf when any element is (and otherwise only when finite values
    # overflow it, which in a net's weights means the run is diverging anyway); it costs one
    # pass and no allocation, unlike np.isfinite(a).all().
    return all(np.isfinite(np.sum(a)) for a in arrays)
