"""Training metrics: moving windows and a bounded history (evaluation: engine.train.evaluation)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any


class Window:
    """Mean of the last `size` values (ConvNetJS's cnnutil.Window)."""

    def __init__(self, size: int = 50) -> None:
        self.values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self.values.append(value)

    def resize(self, size: int) -> None:
        """Keep the newest `size` values and average over that many from now on."""
        self.values = deque(self.values, maxlen=size)

    def mean(self) -> float | None:
        return math.fsum(self.values) / len(self.values) if self.values else None

    def sum(self) -> float:
        return math.fsum(self.values)

    def clear(self) -> None:
        self.values.clear()


class History:
    """Points over the whole run in bounded memory: when full, every other older point is
    dropped (halving the resolution of the past, like a zoomed-out chart); the latest point
    is always there, so a chart's right end is never stale.

    The n-th point offered (0-based) is kept while n % stride == 0; the latest is kept in any
    case until the next one arrives. Keeping the offer index of each point is what keeps the
    thinned past evenly spaced (thinning by list position drifts once an off-grid latest point
    has been kept).
    """

    def __init__(self, max_points: int = 1000) -> None:
        if max_points < 4:
            raise ValueError("a history keeps at least 4 points")
        self.max_points = max_points
        self.points: list[dict[str, Any]] = []
        self.markers: list[dict[str, Any]] = []   # moments the presenter changed something
        # Whole-test-set results, kept apart: thinning the points would drop them.
        self.tests: list[dict[str, Any]] = []
        self.tests_added = 0                      # ever, so a publisher can send the new ones
        self.generation = 0                       # clear() counts up: a publisher sees resets
        self.stride = 1                           # one point kept per `stride` offered
        self._index: list[int] = []               # offer index of each kept point
        self._offered = 0

    def add(self, point: dict[str, Any]) -> None:
        if self._index and self._index[-1] % self.stride:
            self.points.pop()                     # kept only for being the latest
            self._index.pop()
        self.points.append(point)
        self._index.append(self._offered)
        self._offered += 1
        self._thin()

    def resize(self, max_points: int) -> None:
        """A new bound (the presenter changed it): thins at once if now over it."""
        if max_points < 4:
            raise ValueError("a history keeps at least 4 points")
        self.max_points = max_points
        self._thin()

    def _thin(self) -> None:
        while len(self.points) > self.max_points:
            self.stride *= 2
            last = len(self._index) - 1
            keep = [i for i, n in enumerate(self._index) if n % self.stride == 0 or i == last]
            self.points = [self.points[i] for i in keep]
            self._index = [self._index[i] for i in keep]

    def add_test(self, point: dict[str, Any]) -> None:
        """A test result; when over max_points, every other older one goes (the latest stays)."""
        self.tests.append(point)
        self.tests_added += 1
        if len(self.tests) > self.max_points:
            self.tests = self.tests[-2::-2][::-1] + [self.tests[-1]]

    def mark(self, marker: dict[str, Any]) -> None:
        self.markers.append(marker)
        del self.markers[:-200]

    def clear(self) -> None:
        self.generation += 1
        self.points.clear()
        self.markers.clear()
        self.tests.clear()
        self._index.clear()
        self.stride = 1
        self._offered = 0


def point_from_test(step: int, examples: int, test: dict[str, Any]) -> dict[str, Any]:
    """A whole-test-set result as the history keeps it, at the step its weights were taken."""
    return {"step": step, "examples": examples, "test_acc": test["accuracy"],
            "test_loss": test.get("loss")}
