"""Training metrics: moving windows, a bounded history, and whole-split evaluation."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from engine.layers.base import Context, Workspace


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
        self.points.clear()
        self.markers.clear()
        self.tests.clear()
        self._index.clear()
        self.stride = 1
        self._offered = 0


class Evaluation:
    """Accuracy, per-class accuracy and the confusion matrix of `net` on a data split, taken
    a few batches at a time: the server's worker interleaves it with training steps and
    requests instead of going silent for the whole test set. Runs in evaluation mode in its
    own workspace, so training buffers are untouched; the caller must not change the net's
    weights until it is done (the trainer hands it a frozen copy)."""

    def __init__(self, net, split, normalization, *, batch_size: int = 250,
                 limit: int | None = None, workspace: Workspace | None = None) -> None:
        self.net, self.split, self.normalization = net, split, normalization
        self.batch_size = batch_size
        self.ctx = Context(training=False, workspace=workspace or Workspace())
        self.images = len(split) if limit is None else min(limit, len(split))
        k = len(split.class_names)
        self.confusion = np.zeros((k, k), dtype=np.int64)
        self.total_loss = 0.0
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= self.images

    def advance(self, images: int | None = None) -> bool:
        """Evaluate about `images` more (whole batches; all that is left when None).
        Returns True once the whole split is done."""
        from engine.data.normalize import preprocess

        end = self.images if images is None else min(self.images, self.position + images)
        while self.position < end:
            positions = np.arange(self.position, min(end, self.position + self.batch_size))
            self.position = int(positions[-1]) + 1
            x = preprocess(self.split.take(positions), self.normalization).astype(
                self.net.dtype, copy=False)
            # A diverging net gives NaN: count it (argmax says class 0), do not warn about it.
            with np.errstate(all="ignore"):
                out = self.net.predict(x, self.ctx).reshape(len(positions), -1)
                labels = self.split.labels[positions]
                np.add.at(self.confusion, (labels, np.argmax(out, axis=1)), 1)
                if self.net.loss_layer.type == "softmax":
                    p = np.maximum(out[np.arange(len(labels)), labels], 1e-30)
                    self.total_loss += float(-np.log(p).sum())
        return self.done

    def result(self) -> dict[str, Any]:
        n, confusion = self.position, self.confusion
        mean_loss = self.total_loss / max(n, 1)
        per_class_total = confusion.sum(axis=1)
        per_class = np.where(per_class_total > 0,
                             np.diag(confusion) / np.maximum(per_class_total, 1), np.nan)
        softmax = self.net.loss_layer.type == "softmax"
        return {
            "split": self.split.name,
            "images": int(n),
            "accuracy": float(np.trace(confusion) / max(n, 1)),
            "loss": mean_loss if softmax and math.isfinite(mean_loss) else None,
            "per_class": {name: (None if np.isnan(a) else float(a))
                          for name, a in zip(self.split.class_names, per_class)},
            "confusion": confusion.tolist(),
            "classes": list(self.split.class_names),
        }


def evaluate(net, split, normalization, *, batch_size: int = 250, limit: int | None = None,
             workspace: Workspace | None = None) -> dict[str, Any]:
    """The whole `Evaluation` at once."""
    evaluation = Evaluation(net, split, normalization, batch_size=batch_size, limit=limit,
                            workspace=workspace)
    evaluation.advance()
    return evaluation.result()
