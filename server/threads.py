"""Choosing the engine's thread count while training, by measuring it.

Numba's OpenMP pool forks and joins at every parallel loop, hundreds of times per training
step. When another program keeps a core busy (the browser on the presenter's laptop, a
video call), each join waits for a descheduled thread and two threads can train many times
slower than one. No fixed default is right for every room, so the worker runs a trial every
`period_s`: a few steps at each candidate count, then it keeps the fastest until the next
trial.
"""

from __future__ import annotations

import time
from typing import Callable


class ThreadTuner:
    def __init__(self, candidates: tuple[int, ...], *, period_s: float = 60.0,
                 trial_s: float = 1.0, min_trial_steps: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not candidates or min(candidates) < 1:
            raise ValueError("thread counts are positive")
        self.candidates = tuple(dict.fromkeys(candidates))
        self.period_s, self.trial_s, self.min_trial_steps = period_s, trial_s, min_trial_steps
        self.clock = clock
        self.current = self.candidates[0]
        self.rates: dict[int, float] = {}          # images/s of the last trial, per count
        self._trial: list[int] = list(self.candidates) if len(self.candidates) > 1 else []
        self._settled_at = clock()
        self._totals = [0, 0.0, 0]                  # images, seconds, steps of this trial

    @property
    def trying(self) -> bool:
        return bool(self._trial)

    def threads_for_next_step(self) -> int:
        """The count to run the next step with (call before each step)."""
        if not self._trial and len(self.candidates) > 1 and (
                self.clock() - self._settled_at >= self.period_s):
            self._trial = list(self.candidates)
        if self._trial:
            self.current = self._trial[0]
        return self.current

    def record(self, images: int, seconds: float) -> None:
        """After each step: how many images it trained in how long."""
        if not self._trial:
            return
        totals = self._totals
        totals[0] += images
        totals[1] += seconds
        totals[2] += 1
        if totals[1] < self.trial_s or totals[2] < self.min_trial_steps:
            return
        self.rates[self._trial.pop(0)] = totals[0] / totals[1]
        self._totals = [0, 0.0, 0]
        if not self._trial:
            self.current = max(self.candidates, key=lambda n: self.rates[n])
            self._settled_at = self.clock()
