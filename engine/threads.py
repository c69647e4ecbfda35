"""Choosing the engine's thread count by measuring it, for every command that runs kernels.

Numba's parallel loops fork and join at every loop, hundreds of times per training step. When
another program keeps a core busy (the browser on the presenter's laptop, a video call), each
join waits for a descheduled thread, and two threads can run twenty times slower than one
(measured: `train --net convnetjs` at 95 images/s with two threads, 2,150 with one). No fixed
default is right for every machine, so `train`, `evaluate`, `classify`, `bench` and `serve`
all run a trial: a few steps at each candidate count, then the fastest is kept until the next
trial, `period_s` later, or sooner when the kept count slows to under half the speed its
trial measured (a busy program started meanwhile).

    tuner = ThreadTuner.for_machine(args.threads)    # --threads T: T only, no trials
    result = tuner.run(lambda: trainer.step(), images=batch)

Numba's thread count belongs to the calling thread, so `run` (or `apply`) must be called by
the thread that runs the kernels.
"""

from __future__ import annotations

import time
from typing import Any, Callable

# A step's speed falls under this fraction of its count's trial speed for SLOW_STEPS steps in
# a row: the machine changed, so the next step starts a trial at once. A step a periodic test
# evaluation rides on is slower by design, hence several steps, not one.
SLOWDOWN = 0.5
SLOW_STEPS = 20


def machine_threads() -> int:
    """The threads Numba's pool has (the cores it sees, or NUMBA_NUM_THREADS)."""
    import numba
    return int(numba.config.NUMBA_NUM_THREADS)


class ThreadTuner:
    def __init__(self, candidates: tuple[int, ...], *, period_s: float = 60.0,
                 trial_s: float = 1.0, min_trial_steps: int = 3, skip_first: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """candidates: thread counts, the first tried first; skip_first: steps not timed at
        the start (a first step that compiles or fills caches would count against the first
        candidate)."""
        if not candidates or min(candidates) < 1:
            raise ValueError("thread counts are positive")
        self.candidates = tuple(dict.fromkeys(candidates))
        self.period_s, self.trial_s, self.min_trial_steps = period_s, trial_s, min_trial_steps
        self.clock = clock
        self.current = self.candidates[0]
        self.rates: dict[int, float] = {}          # images/s of the last trial, per count
        self.trials = 0                             # trials finished
        self._trial: list[int] = list(self.candidates) if self.tuning else []
        self._settled_at = clock()
        self._totals = [0, 0.0, 0]                  # images, seconds, steps of this trial
        self._skip = skip_first
        self._slow = 0                              # slow steps in a row since settling

    @classmethod
    def for_machine(cls, threads: int | None = None, **options: Any) -> ThreadTuner:
        """`threads` alone when given (a fixed count never tries another); else all cores,
        then one."""
        cores = machine_threads()
        if threads is not None:
            if not 1 <= threads <= cores:
                raise ValueError(f"the thread count must be between 1 and {cores} (the cores "
                                 f"Numba sees), got {threads}")
            return cls((threads,), **options)
        return cls((cores, 1), **options)

    @property
    def tuning(self) -> bool:
        """Whether it chooses at all (more than one candidate)."""
        return len(self.candidates) > 1

    @property
    def trying(self) -> bool:
        return bool(self._trial)

    def threads_for_next_step(self) -> int:
        """The count to run the next step with (call before each step)."""
        if not self._trial and self.tuning and (
                self.clock() - self._settled_at >= self.period_s):
            self._trial = list(self.candidates)
        if self._trial:
            self.current = self._trial[0]
        return self.current

    def record(self, images: int, seconds: float) -> None:
        """After each step: how many images it worked through in how long."""
        if self._skip > 0:
            self._skip -= 1
            return
        if not self._trial:
            self._watch(images, seconds)
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
            self._slow = 0
            self.trials += 1

    def _watch(self, images: int, seconds: float) -> None:
        """Between trials: a kept count running far under its trial's speed for a while
        starts the next trial now."""
        expected = self.rates.get(self.current)
        if not self.tuning or expected is None or seconds <= 0:
            return
        self._slow = self._slow + 1 if images / seconds < SLOWDOWN * expected else 0
        if self._slow >= SLOW_STEPS:
            self._settled_at = -float("inf")

    # --- running work -----------------------------------------------------------------------
    def apply(self) -> int:
        """Set this thread's Numba count for the next step; returns it."""
        import numba
        threads = self.threads_for_next_step()
        if threads != numba.get_num_threads():
            numba.set_num_threads(threads)
        return threads

    def run(self, work: Callable[[], Any], images: int) -> Any:
        """work() with the count of the moment, timed and recorded as `images` images."""
        self.apply()
        started = time.perf_counter()
        result = work()
        self.record(images, time.perf_counter() - started)
        return result

    # --- what commands print ----------------------------------------------------------------
    def label(self) -> str:
        """The count now, for a progress line: "1 thread", "2 threads (trying)"."""
        word = "thread" if self.current == 1 else "threads"
        return f"{self.current} {word}" + (" (trying)" if self.trying else "")

    def summary(self) -> str:
        """The count and why: "1 thread (measured: 2 threads 95 img/s, 1 thread 2,150 img/s)",
        or "2 threads (fixed by --threads)" when there was no choice."""
        word = "thread" if self.current == 1 else "threads"
        if not self.tuning:
            return f"{self.current} {word} (fixed by --threads)"
        if not self.rates:
            return f"{self.current} {word} (not measured yet)"
        measured = ", ".join(f"{n} thread{'' if n == 1 else 's'} {rate:,.0f} img/s"
                             for n, rate in self.rates.items())
        return f"{self.current} {word} (measured: {measured})"
