"""Undo for training: copies of every array a step changes in place (weights, batch-norm
statistics, optimizer state) and the optimizer's clock.

- The rollback: taken before every step, put back when the step turns out non-finite.
- The healthy checkpoint: the weights of a step whose loss was healthy. A divergence puts it
  back, not the rollback: the step before NaN is finite but may already have exploded (weights
  of 3e14 were kept that way, and then gave NaN probabilities). The rollback copy of a healthy
  step BECOMES the checkpoint (the two buffer sets swap: nothing is copied), so the run holds
  two sets of copies however long it trains.
"""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np


def _layout(arrays) -> list[tuple]:
    return [(a.shape, a.dtype) for a in arrays]


class Rollback:
    def __init__(self) -> None:
        self._copies: list[np.ndarray] | None = None
        self.clock: tuple = ()
        # (copies, clock, step, largest |weight|) of the healthy checkpoint
        self.checkpoint: tuple | None = None
        self._spare: list[np.ndarray] | None = None   # the last checkpoint's buffers, reused

    def save(self, live: list[np.ndarray], clock: tuple) -> None:
        """Copy `live` into buffers kept from step to step (no allocation per step unless the
        arrays changed shape, as after a new net)."""
        layout = _layout(live)
        if self._copies is None or _layout(self._copies) != layout:
            spare, self._spare = self._spare, None
            self._copies = (spare if spare is not None and _layout(spare) == layout
                            else [np.empty_like(a) for a in live])
        for copy, array in zip(self._copies, live):
            np.copyto(copy, array)
        self.clock = clock

    def restore(self, live: list[np.ndarray]) -> tuple:
        """Put the saved values back into `live` (the same arrays save() was given); returns
        the clock saved with them."""
        for array, copy in zip(live, self._copies):
            np.copyto(array, copy)
        return self.clock

    def keep_as_checkpoint(self, step: int, n_weights: int,
                           growth_limit: float | None = None) -> bool:
        """Make what save() copied (the weights the step that just passed started from, after
        `step` steps) the checkpoint, when its first `n_weights` arrays (the weights) are
        finite and at most `growth_limit` times the last checkpoint's largest |weight|.
        Returns whether it did. The old checkpoint's buffers serve the next save()."""
        if self._copies is None:
            return False
        largest = 0.0
        for a in self._copies[:n_weights]:
            if a.size:
                high, low = float(a.max()), float(a.min())
                if not (np.isfinite(high) and np.isfinite(low)):
                    return False
                largest = max(largest, high, -low)
        if growth_limit is not None and self.checkpoint is not None and (
                largest > growth_limit * max(self.checkpoint[3], 1e-3)):
            return False
        old = self.checkpoint
        self.checkpoint = (self._copies, self.clock, step, largest)
        self._copies = None
        self._spare = old[0] if old is not None else None
        return True

    def restore_checkpoint(self, live: list[np.ndarray]) -> tuple | None:
        """Put the checkpoint back into `live`: (clock, step) or None when there is none that
        fits these arrays (the net or the optimizer's state changed since)."""
        if self.checkpoint is None or _layout(self.checkpoint[0]) != _layout(live):
            return None
        copies, clock, step, _ = self.checkpoint
        for array, copy in zip(live, copies):
            np.copyto(array, copy)
        return clock, step

    def set_checkpoint_clock(self, clock: tuple) -> None:
        """The clock a restored checkpoint gives back (the schedule restarted since)."""
        if self.checkpoint is not None:
            copies, _, step, largest = self.checkpoint
            self.checkpoint = (copies, clock, step, largest)

    def drop_checkpoint(self) -> None:
        self.checkpoint = None

    def clear(self) -> None:
        self._copies = self._spare = self.checkpoint = None


class LossWatch:
    """The recent level of the training loss (the median of the last WINDOW steps), to tell a
    healthy step (worth a checkpoint) from one whose loss exploded before it reached NaN.

    The thresholds leave orders of magnitude to spare: the shipped presets' first 200 steps
    at their default learning rates stay below HEALTHY x the level most of the time and far
    below EXPLODED x it always (tests/engine/train/test_trainer.py), while lr 10 multiplies the
    loss by thousands within a few steps."""

    WINDOW = 50
    MIN_STEPS = 10          # before this many losses there is no level yet
    HEALTHY = 3.0           # a checkpoint needs loss <= HEALTHY x level
    EXPLODED = 1e3          # loss > EXPLODED x level is divergence
    SOFTMAX_LIMIT = 1e3     # a mean cross-entropy this high means logits thousands apart

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=self.WINDOW)
        self.level: float | None = None
        self._added = 0

    def exploded(self, loss: float, softmax: bool) -> bool:
        if softmax and loss > self.SOFTMAX_LIMIT:
            return True
        return self.level is not None and loss > self.EXPLODED * max(self.level, 1e-6)

    def healthy(self, loss: float) -> bool:
        return self.level is not None and loss <= self.HEALTHY * self.level

    def add(self, loss: float) -> None:
        self.recent.append(loss)
        self._added += 1
        # The median every few steps: a level a few steps old is recent enough, and a sort
        # per step would cost as much as a small kernel.
        if len(self.recent) >= self.MIN_STEPS and self._added % 5 == 0:
            self.level = statistics.median(self.recent)

    def clear(self) -> None:
        self.recent.clear()
        self.level = None
        self._added = 0


def all_finite(arrays) -> bool:
    # The sum is NaN or inf when any element is (and otherwise only when finite values
    # overflow it, which in a net's weights means the run is diverging anyway); it costs one
    # pass and no allocation, unlike np.isfinite(a).all().
    return all(np.isfinite(np.sum(a)) for a in arrays)
