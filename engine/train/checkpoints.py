"""Checkpoints of runs as they train: copies of the weights and batch-norm statistics, to look
back at (a past frame, a past gallery) and to fork from.

When a run takes one (`Checkpoints.due`): at every step up to FIRST_STEPS, then whenever the
step has grown by SPACING (5%) since the last, so they are dense early and log-spaced later;
and at every step where a periodic test evaluation starts (`take(..., test=True)`), whose
result is attached when it ends (`add_test`), so every test point on the chart has the weights
that scored it.

Memory is bounded for all runs together: `max_bytes` (the server's --checkpoint-mb) and
`max_count`. Past either, checkpoints are thinned one at a time: in each run, the first and
the latest always stay; of the others, the one whose removal leaves the smallest gap in
log(step) between its neighbours goes (a test's checkpoint counts its gap TEST_WEIGHT times,
so plain ones go first), ties to the oldest. A run's checkpoints thus stay spread evenly over
log(step) however long it trains, and the oldest, densest stretch is thinned first.

The arrays are copies (the net's own arrays change every step) and are never changed after
they are taken: a reader in another thread may hold a Checkpoint while the worker thins.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FIRST_STEPS = 10
SPACING = 1.05
TEST_WEIGHT = 4.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_COUNT = 2000
_ids = itertools.count(1)


@dataclass(eq=False)
class Checkpoint:
    step: int
    examples: int
    seconds: float                       # the run's training seconds at this step
    params: tuple[np.ndarray, ...]       # as net.named_params() orders them
    buffers: tuple[np.ndarray, ...]      # as net.named_buffers() orders them
    test: dict[str, Any] | None = None   # the test evaluation that started here, when done
    tested: bool = False                 # a test evaluation started here
    spec: Any = None                     # the NetSpec these arrays fit
    schedule_t: int = 0                  # the learning-rate schedule's clock (optimizer.t)
    schedule_start: int = 0              # the step that schedule counts from
    id: int = field(default_factory=lambda: next(_ids))   # unique in this process

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.params) + sum(a.nbytes for a in self.buffers)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "examples": self.examples,
                "seconds": round(self.seconds, 3),
                "test_acc": None if self.test is None else self.test["accuracy"]}

    def load_into(self, net) -> None:
        """Copy these weights and statistics into `net` (same spec and dtype)."""
        if net.spec != self.spec:
            raise ValueError("this checkpoint belongs to another net")
        for (_, dst, _), src in zip(net.named_params(), self.params):
            np.copyto(dst, src)
        for (_, dst), src in zip(net.named_buffers(), self.buffers):
            np.copyto(dst, src)


def capture(trainer, tested: bool = False) -> Checkpoint:
    """A checkpoint of a Trainer (engine/train/trainer.py) as it is now."""
    net = trainer.net
    return Checkpoint(int(trainer.step_count), int(trainer.examples_seen),
                      float(trainer.wall_seconds),
                      tuple(a.copy() for _, a, _ in net.named_params()),
                      tuple(a.copy() for _, a in net.named_buffers()),
                      tested=tested, spec=net.spec, schedule_t=int(trainer.optimizer.t),
                      schedule_start=int(trainer.schedule_start))


def checkpoint_bytes(net) -> int:
    """What one checkpoint of `net` takes."""
    return (sum(a.nbytes for _, a, _ in net.named_params())
            + sum(a.nbytes for _, a in net.named_buffers()))


def _log_step(step: int) -> float:
    return math.log(step + 1)


@dataclass
class _Run:
    kept: list[Checkpoint] = field(default_factory=list)    # by step, ascending
    next_due: int = 0


class Checkpoints:
    """Every run's checkpoints (runs named by id), within one memory bound."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_count: int = DEFAULT_MAX_COUNT) -> None:
        self.max_bytes = int(max_bytes)
        self.max_count = int(max_count)
        self._runs: dict[str, _Run] = {}
        self.nbytes = 0
        self.count = 0
        self.thinned = 0                  # removed to stay in bounds, since the start

    # --- taking -----------------------------------------------------------------------------
    def due(self, run: str, step: int) -> bool:
        r = self._runs.get(run)
        return r is None or step >= r.next_due

    def take(self, run: str, trainer, tested: bool = False) -> Checkpoint:
        """A checkpoint of `trainer` at its step (starting the run's list over when it has
        one at that step or later: a reset or a loaded snapshot brings a run back)."""
        step = trainer.step_count
        r = self._runs.setdefault(run, _Run())
        if r.kept and r.kept[-1].step >= step:
            self.clear(run)
            r = self._runs.setdefault(run, _Run())
        checkpoint = capture(trainer, tested)
        r.kept.append(checkpoint)
        r.next_due = step + 1 if step < FIRST_STEPS else max(step + 1,
                                                               math.ceil(step * SPACING))
        self.nbytes += checkpoint.nbytes
        self.count += 1
        self._fit()
        return checkpoint

    def add_test(self, run: str, step: int, test: dict[str, Any]) -> bool:
        """Attach a finished test evaluation to the checkpoint where it started."""
        for checkpoint in reversed(self.list(run)):
            if checkpoint.step == step:
                checkpoint.test = test
                return True
            if checkpoint.step < step:
                return False
        return False

    # --- reading ----------------------------------------------------------------------------
    def list(self, run: str) -> list[Checkpoint]:
        r = self._runs.get(run)
        return [] if r is None else list(r.kept)

    def nearest(self, run: str, step: int) -> Checkpoint | None:
        """The checkpoint closest to `step` (on a tie, the earlier one)."""
        kept = self.list(run)
        return nearest_step(kept, step, lambda c: c.step) if kept else None

    def find(self, run: str, step: int) -> Checkpoint | None:
        return next((c for c in self.list(run) if c.step == step), None)

    def by_id(self, run: str, checkpoint_id: int) -> Checkpoint | None:
        return next((c for c in self.list(run) if c.id == checkpoint_id), None)

    def runs(self) -> list[str]:
        return list(self._runs)

    # --- forgetting -------------------------------------------------------------------------
    def clear(self, run: str) -> None:
        r = self._runs.pop(run, None)
        if r is not None:
            self.nbytes -= sum(c.nbytes for c in r.kept)
            self.count -= len(r.kept)

    def resize(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._fit()

    def _fit(self) -> None:
        while self.nbytes > self.max_bytes or self.count > self.max_count:
            best: tuple[float, int, str, int] | None = None
            for run, r in self._runs.items():
                kept = r.kept
                for i in range(1, len(kept) - 1):
                    gap = _log_step(kept[i + 1].step) - _log_step(kept[i - 1].step)
                    if kept[i].tested:
                        gap *= TEST_WEIGHT
                    candidate = (gap, kept[i].step, run, i)
                    if best is None or candidate[:2] < best[:2]:
                        best = candidate
            if best is None:                # only firsts and lasts left: nothing to thin
                return
            _, _, run, i = best
            removed = self._runs[run].kept.pop(i)
            self.nbytes -= removed.nbytes
            self.count -= 1
            self.thinned += 1


def nearest_step(items: Sequence, step: int, step_of: Callable[[Any], int]):
    """Of `items` (in step order, not empty), the one whose step is nearest `step`, the
    earlier on a tie: a binary search (a room of scrubbers asks this a hundred times a
    second, of the published lists too)."""
    after = bisect.bisect_left(items, step, key=step_of)
    return min(items[max(0, after - 1):after + 1],
               key=lambda c: (abs(step_of(c) - step), step_of(c)))
